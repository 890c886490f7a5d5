"""Which pixels of a video are missing: the three mask forms of `mcodec restore`.

    --mask x,y,w,h[@first-last]   a box in luma pixels, on frames first..last (0-based,
                                  inclusive; `@k` one frame; no `@`: every frame); repeatable
    --mask FILE                   a video (frame i masks frame i) or an image (every frame)
                                  of the input's size: luma > 127 = missing
    --drop-frames 3,7,10-12       whole frames missing (0-based)

All forms combine (their union is missing). `DamageMask.hidden(i)` gives frame
i's (H, W) bool mask, True = missing, streaming the mask video alongside the
input so memory stays bounded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcodec.errors import McodecError

_BOX = re.compile(r"^\s*(\d+),(\d+),(\d+),(\d+)(?:@(\d+)(?:-(\d+))?)?\s*$")
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm")


class MaskError(McodecError):
    """A mask that cannot be used with the input (bad syntax, size or frame count)."""


@dataclass(frozen=True)
class Box:
    """A missing rectangle: luma pixels [x, x+w) x [y, y+h) on frames first..last (None: to the end)."""

    x: int
    y: int
    w: int
    h: int
    first: int = 0
    last: int | None = None

    def covers(self, frame: int) -> bool:
        return frame >= self.first and (self.last is None or frame <= self.last)

    def spec(self) -> str:
        """The `--mask` text that parses back to this box."""
        rng = "" if (self.first, self.last) == (0, None) else (
            f"@{self.first}" if self.last == self.first else f"@{self.first}-{self.last}")
        if self.last is None and self.first:
            raise ValueError("a box that starts after frame 0 needs a last frame to have a spec")
        return f"{self.x},{self.y},{self.w},{self.h}{rng}"


def is_box_spec(text: str) -> bool:
    """True when `text` has the box syntax `x,y,w,h[@first[-last]]`."""
    return _BOX.match(text) is not None


def parse_box(text: str) -> Box:
    """A `Box` from `x,y,w,h[@first[-last]]`. Raises MaskError on bad syntax or an empty box."""
    m = _BOX.match(text)
    if m is None:
        raise MaskError(f"bad box {text!r}: expected x,y,w,h[@first-last] in pixels and frames")
    x, y, w, h = (int(g) for g in m.groups()[:4])
    if w == 0 or h == 0:
        raise MaskError(f"box {text!r} is empty")
    first = int(m.group(5)) if m.group(5) else 0
    last = int(m.group(6)) if m.group(6) else (first if m.group(5) else None)
    if last is not None and last < first:
        raise MaskError(f"box {text!r}: last frame {last} is before first frame {first}")
    return Box(x, y, w, h, first, last)


def parse_frame_list(text: str) -> frozenset[int]:
    """Frame indices from `3,7,10-12` (0-based, ranges inclusive). Raises MaskError."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise MaskError(f"bad frame list {text!r}: expected numbers and ranges like 3,7,10-12")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        if b < a:
            raise MaskError(f"bad frame range {part!r} in {text!r}")
        out.update(range(a, b + 1))
    return frozenset(out)


class DamageMask:
    """The union of boxes, one mask file and dropped frames; see the module docstring.

    Use as a context manager after `open(width, height)`: the mask video, if any,
    is read frame by frame as `hidden(i)` is asked in increasing order.
    """

    def __init__(self, masks: Sequence[str] = (), drop_frames: str | Sequence[int] = ()) -> None:
        self.boxes: list[Box] = []
        self.path: str | None = None
        for item in masks:
            if is_box_spec(item):
                self.boxes.append(parse_box(item))
            elif self.path is None:
                self.path = item
            else:
                raise MaskError(f"more than one mask file: {self.path} and {item}")
        if isinstance(drop_frames, str):
            self.dropped = parse_frame_list(drop_frames) if drop_frames.strip() else frozenset()
        else:
            self.dropped = frozenset(int(i) for i in drop_frames)
        if any(i < 0 for i in self.dropped):
            raise MaskError("dropped frame numbers must be >= 0")
        if not self.boxes and self.path is None and not self.dropped:
            raise MaskError("nothing to restore: give --mask (a file or x,y,w,h boxes) or --drop-frames")
        self._reader = None
        self._still: np.ndarray | None = None
        self._next = 0
        self._size: tuple[int, int] | None = None

    def open(self, width: int, height: int) -> DamageMask:
        """Check the mask against a `width` x `height` input and start reading the mask file."""
        from mcodec.codec.video_io import open_video

        self._size = (width, height)
        for b in self.boxes:
            if b.x + b.w > width or b.y + b.h > height:
                raise MaskError(f"box {b.spec()} reaches outside the {width}x{height} frame")
        if self.path is not None:
            if not os.path.exists(self.path):
                raise MaskError(f"mask not found: {self.path}")
            reader = open_video(self.path)
            info = reader.info
            if (info.width, info.height) != (width, height):
                reader.close()
                raise MaskError(f"mask {self.path} is {info.width}x{info.height}, the input is {width}x{height}")
            if self.path.lower().endswith(_IMAGE_EXTENSIONS):
                try:
                    self._still = next(iter(reader)).y > 127
                except StopIteration:
                    raise MaskError(f"mask image {self.path} has no picture") from None
                finally:
                    reader.close()
            else:
                self._reader = reader
        return self

    def hidden(self, index: int) -> np.ndarray:
        """(H, W) bool of frame `index`'s missing pixels; indices must come in increasing order."""
        if self._size is None:
            raise RuntimeError("DamageMask.open() first")
        width, height = self._size
        if index in self.dropped:
            m = np.ones((height, width), bool)
        else:
            m = np.zeros((height, width), bool)
            for b in self.boxes:
                if b.covers(index):
                    m[b.y:b.y + b.h, b.x:b.x + b.w] = True
            if self._still is not None:
                m |= self._still
        if self._reader is not None:
            if index < self._next:
                raise RuntimeError("mask frames must be read in order")
            frame = None
            while self._next <= index:
                try:
                    frame = next(self._reader)
                except StopIteration:
                    raise MaskError(f"mask video {self.path} ends at frame {self._next}, the input "
                                    f"goes on") from None
                self._next += 1
            m |= frame.y > 127
        return m

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> DamageMask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
