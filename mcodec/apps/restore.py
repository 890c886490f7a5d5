"""`mcodec restore`: rebuild the missing pixels of a video from the visible ones and the
neighbouring frames on both sides, as the decoder rebuilds masked patches.

    input frames ──> window: HISTORY restored frames behind, LOOKAHEAD input frames ahead
    frame t, hidden H_t:  past   = newest restored frame in which H_t was visible (else the newest)
                          future = nearest input frame ahead in which H_t is visible (else none)
                          prediction = fill.predict_between(past, future, t's visible pixels)
                          (no reference at all: fill.fill_spatial, push-pull from t alone)
    output t = t with H_t taken from the prediction; every visible pixel untouched

Memory holds at most HISTORY + LOOKAHEAD + 1 frames whatever the clip's length.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from mcodec.codec import fill
from mcodec.codec.frame import Frame

LOOKAHEAD = 16          # input frames read ahead for a future reference
HISTORY = 16            # restored frames kept for a past reference
VISIBLE_ENOUGH = 0.02   # a reference may hide at most this share of the frame's missing pixels


@dataclass(frozen=True)
class RestoreSummary:
    """What `restore` did: frames written, frames with missing pixels, missing luma pixels, wall time (s)."""

    frames: int
    restored_frames: int
    hidden_pixels: int
    seconds: float

    def line(self) -> str:
        return (f"restored {self.restored_frames} of {self.frames} frames "
                f"({self.hidden_pixels} missing luma pixels) in {self.seconds:.1f} s")


def _shows(hidden_ref: np.ndarray | None, hidden: np.ndarray, count: int) -> bool:
    """True when a reference with missing pixels `hidden_ref` shows (almost) all of `hidden`."""
    if hidden_ref is None:
        return True
    return int(np.count_nonzero(hidden_ref & hidden)) <= VISIBLE_ENOUGH * count


def restore_frames(frames: Iterable[Frame], hidden: Callable[[int], np.ndarray], *,
                   lookahead: int = LOOKAHEAD, history: int = HISTORY) -> Iterator[tuple[Frame, np.ndarray]]:
    """Yield (restored frame, its hidden mask) for each input frame, in order.

    Args:
        frames: the input, display order.
        hidden: frame index -> (H, W) bool, True = missing (asked in increasing order).
        lookahead, history: context window on each side, in frames.

    A region that no frame in the window shows is filled spatially by push-pull: the
    intra network's masked-latent fill-in did not beat it on training photos
    (`benchmarks/spatial_fill.py`: 16.58 dB at its top level, 16.81 dB push-pull).
    """
    source = iter(frames)
    ahead: deque[tuple[Frame, np.ndarray]] = deque()
    behind: deque[tuple[Frame, np.ndarray, int]] = deque(maxlen=history)
    index = 0

    def refill() -> None:
        while len(ahead) <= lookahead:
            try:
                frame = next(source)
            except StopIteration:
                return
            ahead.append((frame, hidden(index + len(ahead))))

    refill()
    while ahead:
        frame, h = ahead.popleft()
        count = int(np.count_nonzero(h))
        if count == 0:
            out = frame
        else:
            past = next(((f, index - i) for f, hm, i in reversed(behind) if _shows(hm, h, count)), None)
            if past is None and behind:
                past = (behind[-1][0], index - behind[-1][2])
            future = next(((f, hm, k + 1) for k, (f, hm) in enumerate(ahead) if _shows(hm, h, count)), None)
            visible = ~h
            if past is None and future is None:
                out = fill.fill_spatial(frame, h)
            else:
                pred = fill.predict_between(
                    None if past is None else fill.Reference(past[0], past[1]),
                    None if future is None else fill.Reference(future[0], future[2], future[1]),
                    target=frame, visible=visible)
                out = fill.composite(frame, pred, h)
        # The restored frame is a complete picture; its original mask says what was rebuilt.
        behind.append((out, h, index))
        yield out, h
        index += 1
        refill()


def restore(src: str, dst: str, masks: Sequence[str] = (), drop_frames: str | Sequence[int] = (), *,
            overwrite: bool = False, progress: bool = False, size: str | None = None,
            fps: str | None = None, pix_fmt: str | None = None, max_frames: int | None = None,
            warn: Callable[[str], None] | None = None) -> RestoreSummary:
    """Restore video `src` (any ffmpeg-readable file, raw .yuv with `size`, or ``-``) into `dst`
    (every output `mcodec decode` writes: .y4m, .yuv, .mkv, .mp4, %05d.png, ``-``).

    Args:
        masks: box specs `x,y,w,h[@first-last]` and at most one mask video/image path
            (`mcodec.apps.masks`).
        drop_frames: whole frames missing, `"3,7,10-12"` or indices (0-based).

    Raises:
        MaskError: a mask that does not fit the input; VideoIOError: unreadable input,
        unwritable output.
    """
    from tqdm import tqdm

    from mcodec.apps.masks import DamageMask
    from mcodec.codec.video_io import open_video, open_writer

    start = time.perf_counter()
    damage = DamageMask(masks, drop_frames)
    restored = hidden_px = written = 0
    with open_video(src, size=size, fps=Fraction(fps) if fps else None, pix_fmt=pix_fmt,
                    max_frames=max_frames, warn=warn) as reader, \
            damage.open(reader.info.width, reader.info.height), \
            open_writer(dst, reader.info.width, reader.info.height, reader.info.fps,
                        overwrite=overwrite) as writer, \
            tqdm(desc="restore", unit="frame", disable=not progress, file=sys.stderr) as bar:
        for frame, h in restore_frames(reader, damage.hidden):
            writer.write(frame)
            written += 1
            n = int(np.count_nonzero(h))
            restored += n > 0
            hidden_px += n
            bar.update(1)
    if written and damage.dropped and max(damage.dropped) >= written and warn is not None:
        warn(f"--drop-frames names frames past the end of the input ({written} frames)")
    return RestoreSummary(frames=written, restored_frames=restored, hidden_pixels=hidden_px,
                          seconds=time.perf_counter() - start)
