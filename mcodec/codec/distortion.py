"""Distortion measures shared by the model, the codec and the evaluator (one definition each).

Definitions (8-bit samples unless a peak is given):

* Per plane: ``MSE = mean((ref - dist)^2)``, ``PSNR = 10 log10(peak^2 / MSE)``,
  capped at :data:`PSNR_CAP_DB` (identical planes would give +inf; any value
  above the cap is clipped too, so averages stay finite and comparable).
* The 6:1:1 weighting ``(6 y + w u + w v) / 8`` (w = 1: PSNR-YUV of the DCVC
  papers; the training loss may weight chroma by another w).
* Per-patch SSE over YUV 4:2:0 (a luma patch and the co-located chroma
  half-patches), the unit of every encoder decision; :data:`LUMA_SHARE` turns
  a sum ``SSE_y + c (SSE_u + SSE_v)`` into the training loss's weighted SSE.

numpy only (no torch): `yuv_weighted` is plain arithmetic, so it also works on tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mcodec.codec.frame import Frame

PEAK = 255.0
PSNR_CAP_DB = 100.0
# PSNR-YUV weights (Y, U, V), normalised by their sum (8).
YUV_WEIGHTS = (6.0, 1.0, 1.0)
# The training loss lambda * (6 MSE_y + MSE_u + MSE_v) / 8 + bits, written in SSE
# over one 4:2:0 patch (chroma has a quarter of the samples): lambda/N *
# (6 SSE_y + 4 SSE_u + 4 SSE_v) / 8 = lambda/N * 0.75 * (SSE_y + 2/3 (SSE_u + SSE_v)).
LUMA_SHARE = 0.75
LOSS_CHROMA_WEIGHT = 2.0 / 3.0


def psnr_from_mse(mse: Any, peak: float = PEAK, cap: float = PSNR_CAP_DB) -> float | np.ndarray:
    """PSNR in dB of a mean squared error in units of peak^2 (float, array or tensor),
    capped at `cap` (MSE 0 -> `cap`). Returns a float for a scalar, else an array."""
    if hasattr(mse, "detach"):          # a torch tensor, without importing torch
        mse = mse.detach().cpu().double().numpy()
    m = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = np.where(m > 0, 10.0 * np.log10(peak * peak / np.where(m > 0, m, 1.0)), np.inf)
    out = np.minimum(out, cap)
    return float(out) if out.ndim == 0 else out


def yuv_weighted(y: Any, u: Any, v: Any, chroma_weight: float = 1.0) -> Any:
    """The weighted combination ``(6 y + w u + w v) / 8`` of per-plane values (w = `chroma_weight`;
    1 gives PSNR-YUV's 6:1:1). Plain arithmetic: floats, numpy arrays and tensors alike."""
    wy, wu, wv = YUV_WEIGHTS
    if chroma_weight == 1.0:
        return (wy * y + wu * u + wv * v) / (wy + wu + wv)
    return (wy * y + chroma_weight * (u + v)) / (wy + wu + wv)


def plane_mse(ref: np.ndarray, dist: np.ndarray) -> float:
    """Mean squared error of two uint8 planes of equal shape (exact integer sum)."""
    if ref.shape != dist.shape:
        raise ValueError(f"plane shapes differ: {ref.shape} vs {dist.shape}")
    d = ref.astype(np.int32) - dist.astype(np.int32)
    return float(np.sum(d * d, dtype=np.int64)) / d.size


def frame_mse(ref: Frame, dist: Frame) -> tuple[float, float, float]:
    """(MSE-Y, MSE-U, MSE-V) of one frame pair."""
    return (plane_mse(ref.y, dist.y), plane_mse(ref.u, dist.u), plane_mse(ref.v, dist.v))


def frame_psnr_yuv(ref: Frame, dist: Frame) -> float:
    """PSNR-YUV of one frame pair: (6*PSNR_Y + PSNR_U + PSNR_V)/8 in dB, planes capped."""
    return float(yuv_weighted(*(psnr_from_mse(m) for m in frame_mse(ref, dist))))


def plane_patch_sse(a: np.ndarray, b: np.ndarray, patch: int) -> np.ndarray:
    """Per-patch sum of squared differences of two (H, W) planes.

    Returns int64 (ceil(H / patch), ceil(W / patch)); partial edge patches sum
    only their real pixels.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"planes {a.shape} and {b.shape} must be equal 2-D shapes")
    if patch < 1:
        raise ValueError(f"patch {patch} must be >= 1")
    h, w = a.shape
    hp, wp = -(-h // patch), -(-w // patch)
    d = a.astype(np.int64) - b.astype(np.int64)
    # Zero padding to whole patches: partial edge patches sum only real pixels.
    sq = np.zeros((hp * patch, wp * patch), np.int64)                    # (Hp*p, Wp*p)
    sq[:h, :w] = d * d
    return sq.reshape(hp, patch, wp, patch).sum(axis=(1, 3))


def _planes(x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, u, v) of a Frame-like object (attributes y, u, v) or a 3-sequence."""
    if hasattr(x, "y") and hasattr(x, "u") and hasattr(x, "v"):
        return x.y, x.u, x.v
    y, u, v = x
    return y, u, v


def patch_sse(a: Any, b: Any, patch: int, chroma_weight: float | None = None) -> np.ndarray:
    """Per-patch SSE over YUV 4:2:0: luma patch x patch plus both chroma patch/2 x patch/2.

    Args:
        a, b: frames (objects with y, u, v) or (y, u, v) tuples of uint8 planes.
        patch: luma patch size (even).
        chroma_weight: None -> plain sum Y + U + V as int64 (in squared 8-bit
            sample units); a float w -> Y + w * (U + V) as float64.

    Returns:
        (ceil(H / patch), ceil(W / patch)) SSE per patch.
    """
    if patch < 2 or patch % 2:
        raise ValueError(f"patch {patch} must be even and >= 2")
    ay, au, av = _planes(a)
    by, bu, bv = _planes(b)
    sy = plane_patch_sse(ay, by, patch)
    sc = plane_patch_sse(au, bu, patch // 2) + plane_patch_sse(av, bv, patch // 2)
    if sc.shape != sy.shape:
        raise ValueError(f"chroma planes {au.shape} do not match luma {ay.shape} for 4:2:0")
    if chroma_weight is None:
        return sy + sc
    return sy + float(chroma_weight) * sc


def loss_patch_sse(a: Any, b: Any, patch: int, chroma_weight: float = LOSS_CHROMA_WEIGHT) -> np.ndarray:
    """(rows, cols) per-patch distortion in the training loss's units: LUMA_SHARE *
    (SSE_y + w (SSE_u + SSE_v)), w = 2/3 for the loss itself (an encoder may tune it)."""
    return LUMA_SHARE * patch_sse(a, b, patch, chroma_weight=chroma_weight)
