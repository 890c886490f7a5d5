"""The frame type every part of mcodec passes around: one YUV 4:2:0 8-bit picture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def chroma_shape(height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of a 4:2:0 chroma plane for a luma plane of `height` x `width`."""
    return (height + 1) // 2, (width + 1) // 2


def frame_bytes(width: int, height: int) -> int:
    """Bytes of one raw yuv420p frame of `width` x `height` (odd sizes round chroma up)."""
    ch, cw = chroma_shape(height, width)
    return width * height + 2 * ch * cw


@dataclass(frozen=True, eq=False)
class Frame:
    """One YUV 4:2:0 8-bit frame.

    Attributes:
        y: (H, W) uint8 luma.
        u, v: (ceil(H/2), ceil(W/2)) uint8 chroma.
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        h, w = self.y.shape
        for name, plane in (("u", self.u), ("v", self.v)):
            if plane.shape != chroma_shape(h, w) or plane.dtype != np.uint8:
                raise ValueError(f"{name} plane {plane.shape} {plane.dtype} does not match "
                                 f"luma {self.y.shape} for yuv420p uint8")
        if self.y.dtype != np.uint8:
            raise ValueError(f"luma dtype {self.y.dtype}, expected uint8")

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.y, self.u, self.v

    def tobytes(self) -> bytes:
        """Raw yuv420p bytes (Y, then U, then V)."""
        return self.y.tobytes() + self.u.tobytes() + self.v.tobytes()

    @classmethod
    def frombuffer(cls, buf: bytes | memoryview, width: int, height: int) -> Frame:
        """Frame from raw yuv420p bytes (copies, so the planes are writable and own their memory)."""
        ch, cw = chroma_shape(height, width)
        n_y, n_c = width * height, ch * cw
        arr = np.frombuffer(buf, dtype=np.uint8, count=n_y + 2 * n_c)
        return cls(arr[:n_y].reshape(height, width).copy(),
                   arr[n_y:n_y + n_c].reshape(ch, cw).copy(),
                   arr[n_y + n_c:].reshape(ch, cw).copy())

    @classmethod
    def grey(cls, width: int, height: int) -> Frame:
        """A mid-grey (128) frame."""
        ch, cw = chroma_shape(height, width)
        return cls(np.full((height, width), 128, np.uint8), np.full((ch, cw), 128, np.uint8),
                   np.full((ch, cw), 128, np.uint8))

    def crop(self, x: int, y: int, width: int, height: int) -> Frame:
        """The (width x height) window at luma (x, y); x, y, width, height even (4:2:0)."""
        if (x | y | width | height) % 2 or x < 0 or y < 0 or x + width > self.width or \
                y + height > self.height or width < 2 or height < 2:
            raise ValueError(f"bad crop {width}x{height} at ({x}, {y}) of {self.width}x{self.height}")
        return Frame(self.y[y:y + height, x:x + width].copy(),
                     self.u[y // 2:(y + height) // 2, x // 2:(x + width) // 2].copy(),
                     self.v[y // 2:(y + height) // 2, x // 2:(x + width) // 2].copy())

    def equals(self, other: Frame) -> bool:
        """True when all three planes are identical."""
        return all(np.array_equal(a, b) for a, b in zip(self.planes(), other.planes()))
