"""Frame: cropping keeps the 4:2:0 planes aligned; bad windows are refused."""

from __future__ import annotations

import numpy as np
import pytest

from mcodec.codec.frame import Frame


def test_crop_takes_matching_luma_and_chroma_windows() -> None:
    rng = np.random.default_rng(0)
    f = Frame(rng.integers(0, 256, (12, 16), np.uint8), rng.integers(0, 256, (6, 8), np.uint8),
              rng.integers(0, 256, (6, 8), np.uint8))
    c = f.crop(4, 2, 8, 6)
    assert (c.width, c.height) == (8, 6)
    assert np.array_equal(c.y, f.y[2:8, 4:12])
    assert np.array_equal(c.u, f.u[1:4, 2:6]) and np.array_equal(c.v, f.v[1:4, 2:6])
    c.y[0, 0] ^= 1
    assert c.y[0, 0] != f.y[2, 4]  # a copy, not a view
    assert f.crop(0, 0, 16, 12).equals(f)


@pytest.mark.parametrize("window", [(1, 0, 8, 6), (0, 0, 7, 6), (10, 0, 8, 6), (0, 8, 8, 6), (0, 0, 0, 6)])
def test_crop_refuses_odd_or_outside_windows(window) -> None:
    with pytest.raises(ValueError, match="bad crop"):
        Frame.grey(16, 12).crop(*window)
