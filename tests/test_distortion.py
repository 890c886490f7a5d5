"""The one distortion module: PSNR, the 6:1:1 weighting, per-plane MSE and per-patch SSE."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcodec.codec.distortion import (LOSS_CHROMA_WEIGHT, LUMA_SHARE, PSNR_CAP_DB, frame_mse, frame_psnr_yuv,
                                     loss_patch_sse, patch_sse, plane_mse, plane_patch_sse, psnr_from_mse,
                                     yuv_weighted)
from mcodec.codec.frame import Frame


def test_psnr_from_mse_peaks_caps_and_types() -> None:
    import torch

    assert psnr_from_mse(1.0) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-12)
    assert psnr_from_mse(0.0) == PSNR_CAP_DB
    assert psnr_from_mse(1e-4, peak=1.0) == pytest.approx(40.0, abs=1e-9)   # [0, 1]-range tensors
    assert psnr_from_mse(torch.tensor(1e-4), peak=1.0) == pytest.approx(40.0, abs=1e-6)
    assert psnr_from_mse(0.0, cap=60.0) == 60.0
    assert psnr_from_mse(np.array([0.0, 65025.0])).tolist() == [PSNR_CAP_DB, 0.0]


def test_yuv_weighting_with_and_without_chroma_weight() -> None:
    import torch

    assert yuv_weighted(40.0, 48.0, 32.0) == pytest.approx((6 * 40 + 48 + 32) / 8)
    assert yuv_weighted(1.0, 2.0, 3.0, chroma_weight=6.0) == pytest.approx((6 + 12 + 18) / 8)
    t = yuv_weighted(torch.ones(2), torch.zeros(2), torch.zeros(2))
    assert t.tolist() == [0.75, 0.75]


def test_frame_mse_and_psnr_yuv() -> None:
    y = np.zeros((4, 6), np.uint8)
    c = np.zeros((2, 3), np.uint8)
    a = Frame(y, c, c)
    b = Frame(y + 2, c, c + 4)
    assert frame_mse(a, b) == (4.0, 0.0, 16.0)
    assert frame_psnr_yuv(a, b) == pytest.approx(
        (6 * psnr_from_mse(4.0) + PSNR_CAP_DB + psnr_from_mse(16.0)) / 8)
    with pytest.raises(ValueError):
        plane_mse(y, c)


def test_plane_patch_sse_partial_patches() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (17, 33), dtype=np.uint8)
    b = rng.integers(0, 256, (17, 33), dtype=np.uint8)
    s = plane_patch_sse(a, b, 8)
    assert s.shape == (3, 5) and s.dtype == np.int64
    d = (a.astype(np.int64) - b) ** 2
    for i in range(3):
        for j in range(5):
            assert s[i, j] == d[8 * i:8 * i + 8, 8 * j:8 * j + 8].sum()
    assert s.sum() == d.sum()


def test_patch_sse_yuv420() -> None:
    rng = np.random.default_rng(6)

    def frame() -> Frame:
        return Frame(rng.integers(0, 256, (17, 33), dtype=np.uint8),
                     rng.integers(0, 256, (9, 17), dtype=np.uint8),
                     rng.integers(0, 256, (9, 17), dtype=np.uint8))

    a, b = frame(), frame()
    s = patch_sse(a, b, 16)                                  # luma 16, chroma 8
    expected = (plane_patch_sse(a.y, b.y, 16) + plane_patch_sse(a.u, b.u, 8)
                + plane_patch_sse(a.v, b.v, 8))
    assert s.shape == (2, 3) and np.array_equal(s, expected)
    assert np.array_equal(patch_sse(a.planes(), b.planes(), 16), s)
    w = patch_sse(a, b, 16, chroma_weight=0.5)
    assert np.allclose(w, plane_patch_sse(a.y, b.y, 16) + 0.5 * (expected - plane_patch_sse(a.y, b.y, 16)))
    assert not patch_sse(a, a, 16).any()
    with pytest.raises(ValueError):
        patch_sse(a, b, 15)


def test_loss_patch_sse_is_the_training_losss_weighting() -> None:
    """6:1:1 on MSE over a 4:2:0 patch = 0.75 (SSE_y + 2/3 (SSE_u + SSE_v)) in SSE."""
    rng = np.random.default_rng(7)
    a, b = (Frame(rng.integers(0, 256, (16, 16), dtype=np.uint8), rng.integers(0, 256, (8, 8), dtype=np.uint8),
                  rng.integers(0, 256, (8, 8), dtype=np.uint8)) for _ in range(2))
    mse = frame_mse(a, b)
    assert float(loss_patch_sse(a, b, 16)[0, 0]) == pytest.approx(256 * yuv_weighted(*mse))
    assert LUMA_SHARE == 0.75 and LOSS_CHROMA_WEIGHT == pytest.approx(2 / 3)
    assert float(loss_patch_sse(a, b, 16, chroma_weight=0.0)[0, 0]) == pytest.approx(0.75 * 256 * mse[0])
