"""2x resampling: the decoder's downsampling is exactly the documented 2x2 mean; the
encoder's upsampling is the documented centre-aligned cubic; both handle odd sizes."""

from __future__ import annotations

import numpy as np
import pytest

from mcodec.codec.resample import downsample_frame, downsample_plane, upsample_frame, upsample_plane
from mcodec.codec.frame import Frame

from .conftest import textured


def _up_reference(p: np.ndarray) -> np.ndarray:
    """Per sample: output i sits at source position i/2 - 1/4 (Catmull-Rom, x128 taps)."""
    h, w = p.shape
    taps = {0: (-3, 29, 111, -9), 1: (-9, 111, 29, -3)}   # even outputs: sources k-2..k+1; odd: k-1..k+2

    def at(r: int, c: int) -> int:
        return int(p[min(max(r, 0), h - 1), min(max(c, 0), w - 1)])

    def src(i: int) -> list[int]:
        k = i // 2
        return list(range(k - 2, k + 2)) if i % 2 == 0 else list(range(k - 1, k + 3))

    out = np.zeros((2 * h, 2 * w), np.uint8)
    for i in range(2 * h):
        for j in range(2 * w):
            acc = sum(ty * tx * at(r, c) for ty, r in zip(taps[i % 2], src(i))
                      for tx, c in zip(taps[j % 2], src(j)))
            out[i, j] = min(max((acc + 8192) >> 14, 0), 255)
    return out


@pytest.mark.parametrize("shape", [(5, 7), (1, 1), (4, 9)])
def test_upsample_matches_the_documented_filter(shape: tuple[int, int]) -> None:
    p = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    assert np.array_equal(upsample_plane(p), _up_reference(p))


def test_downsample_is_the_rounded_2x2_mean_with_replicated_odd_edges() -> None:
    p = np.array([[0, 1, 2], [3, 5, 255], [7, 8, 9]], np.uint8)
    # blocks: [0,1,3,5] -> (9+2)>>2 = 2; [2,2,255,255] -> 129; [7,8,7,8] -> 8; [9,9,9,9] -> 9
    assert downsample_plane(p, 2, 2).tolist() == [[2, 129], [8, 9]]
    with pytest.raises(ValueError):
        downsample_plane(p, 3, 2)


def test_flat_planes_stay_flat_and_smooth_content_survives_a_round_trip() -> None:
    assert np.unique(upsample_plane(np.full((6, 5), 77, np.uint8))).tolist() == [77]
    y = textured(48, 64, seed=2, smooth=6)
    back = downsample_plane(upsample_plane(y), 48, 64)
    assert np.abs(back.astype(int) - y).mean() < 1.0


@pytest.mark.parametrize("size", [(33, 17), (16, 16), (1, 3)])
def test_frames_keep_420_geometry(size: tuple[int, int]) -> None:
    w, h = size
    rng = np.random.default_rng(3)
    f = Frame(rng.integers(0, 256, (h, w), dtype=np.uint8),
              rng.integers(0, 256, ((h + 1) // 2, (w + 1) // 2), dtype=np.uint8),
              rng.integers(0, 256, ((h + 1) // 2, (w + 1) // 2), dtype=np.uint8))
    up = upsample_frame(f)
    assert (up.width, up.height) == (2 * w, 2 * h) and up.u.shape == (h, w)
    down = downsample_frame(up, w, h)
    assert down.y.shape == f.y.shape and down.u.shape == f.u.shape and down.v.shape == f.v.shape
