"""Synthetic damage for evaluating `mcodec restore`: which pixels of a clean clip go missing,
the damaged input and mask video that restore is given, a temporal-copy baseline, and the
one error measure over the missing pixels that scores every method.

Three kinds, each deterministic from (kind, clip length, frame size, seed):

* ``boxes``: a few damage events (about one per 8 frames), each 1-2 rectangles of 5-20 %
  of the frame area over a run of 3-8 consecutive frames. Rectangles are 4:2:0 aligned
  (even x, y, w, h), keep a 2-pixel margin to the frame edge and a 2-pixel gap between the
  rectangles of one event (so ffmpeg's ``delogo`` has a clean one-pixel ring around each, in
  luma and chroma), and events sit in disjoint runs of frames, away from the first and
  last frame when the clip is long enough. Given to restore as box specs.
* ``rows``: lost slices: one band of 8-32 consecutive full-width luma rows (even start and
  height) missing over 1-4 frames, about one event per 8 frames. Given to restore as a
  mask video (luma 255 = missing, 0 = visible), so that path is exercised.
* ``drop``: isolated dropped frames, about one in 6: never the first or last frame, never
  two adjacent. Given to restore as ``--drop-frames``.

Conventions (as `mcodec.codec.fill`): a hidden mask is (H, W) bool at luma resolution,
True = missing; a chroma sample is missing when any of its 2x2 luma samples is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from mcodec.codec.distortion import psnr_from_mse, yuv_weighted
from mcodec.codec.fill import chroma_mask
from mcodec.codec.frame import Frame, chroma_shape

KINDS = ("boxes", "rows", "drop")
BOX_AREA = (0.05, 0.20)       # share of the frame area of one box
BOX_RUN = (3, 8)              # frames of one box event
BOX_MARGIN = 2                # luma pixels between a box and the frame edge / another box
ROW_HEIGHT = (8, 32)          # luma rows of one lost band
ROW_RUN = (1, 4)              # frames of one lost band
FRAMES_PER_EVENT = 8          # about one box / row event per this many frames
FRAMES_PER_DROP = 6           # about one dropped frame per this many frames
FILLS = ("noise", "green")    # what a damaged input shows in its missing pixels


@dataclass(frozen=True)
class Region:
    """A missing rectangle: luma pixels [x, x+w) x [y, y+h) on frames first..last (0-based, inclusive)."""

    x: int
    y: int
    w: int
    h: int
    first: int
    last: int

    def covers(self, frame: int) -> bool:
        """True when the region is missing on frame `frame`."""
        return self.first <= frame <= self.last

    def area_fraction(self, width: int, height: int) -> float:
        """Share (0..1) of a `width` x `height` frame that the region covers."""
        return self.w * self.h / (width * height)

    def spec(self) -> str:
        """The `mcodec restore --mask` box text `x,y,w,h@first-last` (``@k`` for one frame)."""
        rng = f"@{self.first}" if self.first == self.last else f"@{self.first}-{self.last}"
        return f"{self.x},{self.y},{self.w},{self.h}{rng}"


@dataclass(frozen=True)
class RestoreArgs:
    """What `mcodec restore` is given for one damage: `--mask` values and `--drop-frames` ("" = none)."""

    masks: tuple[str, ...]
    drop_frames: str

    def cli(self) -> list[str]:
        """The command-line options, e.g. ``["--mask", "10,20,50,40@3-8", "--drop-frames", "3,7"]``."""
        out: list[str] = []
        for m in self.masks:
            out += ["--mask", m]
        if self.drop_frames:
            out += ["--drop-frames", self.drop_frames]
        return out


@dataclass(frozen=True)
class Damage:
    """One synthetic damage of a clip of `frames` frames of `width` x `height` luma pixels.

    Attributes:
        kind: one of KINDS.
        regions: missing rectangles (``boxes``; ``rows`` as full-width rectangles).
        dropped: frames missing entirely (``drop``), increasing.
    """

    kind: str
    width: int
    height: int
    frames: int
    seed: int
    regions: tuple[Region, ...] = ()
    dropped: tuple[int, ...] = ()

    def hidden(self, frame_index: int, height: int | None = None, width: int | None = None) -> np.ndarray:
        """(H, W) bool of frame `frame_index`'s missing luma pixels (True = missing).

        `height`/`width` default to the damage's size and must equal it when given.
        """
        h = self.height if height is None else height
        w = self.width if width is None else width
        if (h, w) != (self.height, self.width):
            raise ValueError(f"damage made for {self.width}x{self.height}, asked for {w}x{h}")
        if frame_index in self.dropped:
            return np.ones((h, w), bool)
        m = np.zeros((h, w), bool)
        for r in self.regions:
            if r.covers(frame_index):
                m[r.y:r.y + r.h, r.x:r.x + r.w] = True
        return m

    def hidden_pixels(self) -> int:
        """Missing luma pixels over the whole clip."""
        return sum(int(np.count_nonzero(self.hidden(t))) for t in range(self.frames))

    def hit_frames(self) -> tuple[int, ...]:
        """Frames with at least one missing pixel, increasing."""
        hit = set(self.dropped)
        for r in self.regions:
            hit.update(range(r.first, r.last + 1))
        return tuple(sorted(t for t in hit if 0 <= t < self.frames))

    def restore_args(self, mask_path: str | None = None) -> RestoreArgs:
        """The restore arguments for this damage: box specs (``boxes``), the mask video at
        `mask_path` (``rows``; write it with `write_mask_video`), ``--drop-frames`` (``drop``)."""
        if self.kind == "rows":
            if mask_path is None:
                raise ValueError("rows damage is given to restore as a mask video: pass mask_path")
            masks: tuple[str, ...] = (mask_path,)
        else:
            masks = tuple(r.spec() for r in self.regions)
        return RestoreArgs(masks, frame_list_spec(self.dropped))

    def to_dict(self) -> dict:
        """JSON-ready description (box specs and dropped frames as restore's strings)."""
        return {"kind": self.kind, "width": self.width, "height": self.height, "frames": self.frames,
                "seed": self.seed, "regions": [r.spec() for r in self.regions],
                "dropped": frame_list_spec(self.dropped), "hidden_luma_pixels": self.hidden_pixels()}


def frame_list_spec(indices: Iterable[int]) -> str:
    """``[3, 7, 10, 11, 12]`` -> ``"3,7,10-12"`` (restore's --drop-frames syntax; "" when empty)."""
    out, run = [], []
    for i in sorted(set(int(i) for i in indices)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


# ----------------------------------------------------------------------------- generation


def _rng(kind: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) % 2**32, KINDS.index(kind)])


def _event_runs(frames: int, run: tuple[int, int], rng: np.random.Generator) -> list[tuple[int, int]]:
    """(first, last) of each event: about one per FRAMES_PER_EVENT frames, in disjoint slots of
    the interior frames 1..frames-2 (the whole clip when the interior is shorter than a run)."""
    lo, hi = (1, frames - 2) if frames - 2 >= run[0] else (0, frames - 1)
    span = hi - lo + 1
    if span < run[0]:
        raise ValueError(f"a clip of {frames} frames is too short for a {run[0]}-frame event")
    n = max(1, min(int(frames / FRAMES_PER_EVENT + 0.5), span // run[0]))
    edges = [lo + (span * k) // n for k in range(n + 1)]
    out = []
    for a, b in zip(edges[:-1], edges[1:]):          # slot [a, b)
        length = int(rng.integers(run[0], run[1] + 1))
        length = min(length, b - a)
        start = a + int(rng.integers(0, b - a - length + 1))
        out.append((start, start + length - 1))
    return out


def _box_size(width: int, height: int, rng: np.random.Generator) -> tuple[int, int]:
    """(w, h), both even, with w*h within BOX_AREA of the frame and a BOX_MARGIN to each edge."""
    area = width * height
    max_w, max_h = width - 2 * BOX_MARGIN, height - 2 * BOX_MARGIN
    for _ in range(1000):
        f = rng.uniform(*BOX_AREA)
        aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))   # w / h
        w = 2 * round(math.sqrt(f * area * aspect) / 2)
        h = 2 * round(f * area / max(w, 1) / 2)
        if 2 <= w <= max_w and 2 <= h <= max_h and BOX_AREA[0] <= w * h / area <= BOX_AREA[1]:
            return w, h
    raise ValueError(f"no box of {BOX_AREA[0]:.0%}-{BOX_AREA[1]:.0%} fits a {width}x{height} frame")


def _apart(a: Region, b: Region) -> bool:
    """True when two rectangles are at least BOX_MARGIN pixels apart (either axis)."""
    g = BOX_MARGIN
    return (a.x + a.w + g <= b.x or b.x + b.w + g <= a.x
            or a.y + a.h + g <= b.y or b.y + b.h + g <= a.y)


def _even_offset(free: int, rng: np.random.Generator) -> int:
    """An even offset in [BOX_MARGIN, BOX_MARGIN + free]."""
    return BOX_MARGIN + 2 * int(rng.integers(0, free // 2 + 1))


def box_damage(frames: int, width: int, height: int, seed: int) -> Damage:
    """``boxes`` damage (see the module docstring)."""
    rng = _rng("boxes", seed)
    regions: list[Region] = []
    for first, last in _event_runs(frames, BOX_RUN, rng):
        event: list[Region] = []
        for _ in range(int(rng.integers(1, 3))):
            for _try in range(100):
                w, h = _box_size(width, height, rng)
                r = Region(_even_offset(width - 2 * BOX_MARGIN - w, rng),
                           _even_offset(height - 2 * BOX_MARGIN - h, rng), w, h, first, last)
                if all(_apart(r, o) for o in event):
                    event.append(r)
                    break
        regions += event
    return Damage("boxes", width, height, frames, seed, regions=tuple(regions))


def row_damage(frames: int, width: int, height: int, seed: int) -> Damage:
    """``rows`` damage (see the module docstring)."""
    rng = _rng("rows", seed)
    top = min(ROW_HEIGHT[1], height // 4) // 2 * 2
    if top < 2:
        raise ValueError(f"a {width}x{height} frame is too small for lost rows")
    bottom = min(ROW_HEIGHT[0], top)
    regions = []
    for first, last in _event_runs(frames, ROW_RUN, rng):
        h = 2 * int(rng.integers(bottom // 2, top // 2 + 1))
        y = 2 * int(rng.integers(0, (height - h) // 2 + 1))
        regions.append(Region(0, y, width, h, first, last))
    return Damage("rows", width, height, frames, seed, regions=tuple(regions))


def drop_damage(frames: int, width: int, height: int, seed: int) -> Damage:
    """``drop`` damage (see the module docstring)."""
    if frames < 3:
        raise ValueError(f"a clip of {frames} frames has no frame to drop (never the first or last)")
    rng = _rng("drop", seed)
    want = max(1, int(frames / FRAMES_PER_DROP + 0.5))
    chosen: set[int] = set()
    for t in rng.permutation(np.arange(1, frames - 1)):
        t = int(t)
        if len(chosen) == want:
            break
        if t - 1 not in chosen and t + 1 not in chosen:
            chosen.add(t)
    return Damage("drop", width, height, frames, seed, dropped=tuple(sorted(chosen)))


def make_damage(kind: str, frames: int, width: int, height: int, seed: int = 0) -> Damage:
    """The `kind` damage (one of KINDS) of a clip of `frames` frames, `width` x `height` luma
    pixels; the same arguments always give the same damage.

    Raises:
        ValueError: unknown kind, or a clip too short / a frame too small for it.
    """
    makers = {"boxes": box_damage, "rows": row_damage, "drop": drop_damage}
    if kind not in makers:
        raise ValueError(f"unknown damage kind {kind!r}: one of {', '.join(KINDS)}")
    return makers[kind](frames, width, height, seed)


# ----------------------------------------------------------------------------- damaged inputs


def damage_frame(frame: Frame, hidden: np.ndarray, *, fill: str = "noise", seed: int = 0) -> Frame:
    """`frame` with its `hidden` pixels (and their chroma) overwritten, so nothing of the
    clean picture is left there: uniform noise (deterministic from `seed`) or flat green
    (Y = U = V = 0)."""
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}: one of {', '.join(FILLS)}")
    hc = chroma_mask(hidden)
    rng = np.random.default_rng(seed % 2**32)
    planes = []
    for plane, m in zip(frame.planes(), (hidden, hc, hc)):
        junk = rng.integers(0, 256, plane.shape, dtype=np.uint8) if fill == "noise" else \
            np.zeros(plane.shape, np.uint8)
        planes.append(np.where(m, junk, plane))
    return Frame(*planes)


def damaged_frames(frames: Iterable[Frame], damage: Damage, *, fill: str = "noise") -> Iterator[Frame]:
    """The damaged version of each clean frame (frame t's noise comes from (seed, t))."""
    for t, f in enumerate(frames):
        yield damage_frame(f, damage.hidden(t, f.height, f.width), fill=fill,
                           seed=damage.seed * 1_000_003 + t)


def write_damaged_video(src: str, dst: str, damage: Damage, *, fill: str = "noise",
                        overwrite: bool = False) -> int:
    """Write the damaged version of clean video `src` (first `damage.frames` frames) to `dst`
    (.y4m or .mkv for an exact copy of the visible pixels); returns the frames written.

    Raises:
        ValueError: `src` is not the damage's size or has fewer frames.
    """
    from mcodec.codec.video_io import open_video, open_writer

    with open_video(src, max_frames=damage.frames) as reader:
        info = reader.info
        if (info.width, info.height) != (damage.width, damage.height):
            raise ValueError(f"{src} is {info.width}x{info.height}, the damage {damage.width}x{damage.height}")
        with open_writer(dst, info.width, info.height, info.fps, overwrite=overwrite) as w:
            for f in damaged_frames(reader, damage, fill=fill):
                w.write(f)
            n = w.frames_written
            if n != damage.frames:      # raised inside: the writer removes its partial output
                raise ValueError(f"{src} has {n} frames, the damage is for {damage.frames}")
    return n


def mask_frame(hidden: np.ndarray) -> Frame:
    """A mask picture for restore: luma 255 where `hidden`, 0 elsewhere; chroma 128."""
    ch, cw = chroma_shape(*hidden.shape)
    grey = np.full((ch, cw), 128, np.uint8)
    return Frame(np.where(hidden, 255, 0).astype(np.uint8), grey, grey.copy())


def write_mask_video(damage: Damage, dst: str, fps: Fraction, *, overwrite: bool = False) -> int:
    """Write the damage as a mask video (frame t masks frame t) to `dst` (.mkv lossless FFV1 or
    .y4m); returns the frames written."""
    from mcodec.codec.video_io import open_writer

    with open_writer(dst, damage.width, damage.height, fps, overwrite=overwrite) as w:
        for t in range(damage.frames):
            w.write(mask_frame(damage.hidden(t)))
        return w.frames_written


# ----------------------------------------------------------------------------- baseline and score


def temporal_copy(frames: Sequence[Frame], damage: Damage) -> list[Frame]:
    """The temporal-copy baseline: each missing sample takes its value from the nearest earlier
    frame in which it was visible, else from the nearest later one, else 128 (never visible);
    a dropped frame thus repeats the previous frame. Chroma uses the chroma mask. Visible
    samples are untouched; `frames` are the damaged (or clean) frames, only visible samples read."""
    n = len(frames)
    hid_y = [damage.hidden(t, f.height, f.width) for t, f in enumerate(frames)]
    out: list[list[np.ndarray]] = [[], [], []]
    for p in range(3):
        planes = [f.planes()[p] for f in frames]
        hid = hid_y if p == 0 else [chroma_mask(h) for h in hid_y]
        filled = [None] * n
        found = [None] * n
        value = np.full_like(planes[0], 128) if n else None
        seen = np.zeros(planes[0].shape, bool) if n else None
        for t in range(n):                          # forward: the nearest earlier visible value
            vis = ~hid[t]
            filled[t] = np.where(vis, planes[t], value)
            found[t] = vis | seen
            value = filled[t]
            seen = found[t]
        value = np.full_like(planes[0], 128) if n else None
        for t in reversed(range(n)):                # backward, for samples hidden since frame 0
            filled[t] = np.where(found[t], filled[t], value)
            value = np.where(hid[t], value, planes[t])
        out[p] = filled
    return [Frame(*(out[p][t] for p in range(3))) for t in range(n)]


@dataclass(frozen=True)
class HiddenError:
    """Squared error summed over missing samples, per plane (Y, U, V), and their counts.

    Add them up over frames and clips, then read the pooled MSE / PSNR (dB, peak 255).
    """

    sse: tuple[int, int, int] = (0, 0, 0)
    count: tuple[int, int, int] = (0, 0, 0)

    def __add__(self, other: HiddenError) -> HiddenError:
        return HiddenError(tuple(a + b for a, b in zip(self.sse, other.sse)),
                           tuple(a + b for a, b in zip(self.count, other.count)))

    def mse(self, plane: int) -> float:
        """Mean squared error of plane 0/1/2 over its missing samples (NaN when none)."""
        return self.sse[plane] / self.count[plane] if self.count[plane] else float("nan")

    def psnr(self, plane: int) -> float:
        """PSNR (dB) of plane 0/1/2 over its missing samples (NaN when none)."""
        m = self.mse(plane)
        return float("nan") if math.isnan(m) else float(psnr_from_mse(m))

    @property
    def psnr_y(self) -> float:
        return self.psnr(0)

    @property
    def psnr_yuv(self) -> float:
        """The 6:1:1 weighting of the three planes' pooled PSNR."""
        return float(yuv_weighted(self.psnr(0), self.psnr(1), self.psnr(2)))


def hidden_error(clean: Frame, out: Frame, hidden: np.ndarray) -> HiddenError:
    """The squared error of `out` against `clean` over the `hidden` luma pixels and their chroma."""
    hc = chroma_mask(hidden)
    sse, count = [], []
    for a, b, m in zip(clean.planes(), out.planes(), (hidden, hc, hc)):
        d = a[m].astype(np.int64) - b[m].astype(np.int64)
        sse.append(int(np.dot(d, d)))
        count.append(int(np.count_nonzero(m)))
    return HiddenError(tuple(sse), tuple(count))


def visible_changes(damaged: Frame, out: Frame, hidden: np.ndarray) -> int:
    """How many visible samples (all planes) differ between `damaged` and `out` (restore's
    contract: 0)."""
    hc = chroma_mask(hidden)
    return sum(int(np.count_nonzero((a != b) & ~m))
               for a, b, m in zip(damaged.planes(), out.planes(), (hidden, hc, hc)))
