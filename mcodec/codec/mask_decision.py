"""The encoder's mask decision: which patches of a predicted frame it leaves unsent.

The decoder never runs this: it reads the coded mask map (`mcodec.codec.masking`).
Distortions are per-patch maps in the training loss's units
(`mcodec.codec.distortion.loss_patch_sse`), rates in bits.
"""

from __future__ import annotations

import numpy as np


def choose_mask(d_mask: np.ndarray, d_code: np.ndarray, r_code: np.ndarray,
                lam: float) -> np.ndarray:
    """The encoder's per-patch rate-distortion decision.

    Args:
        d_mask: (Hp, Wp) distortion if the patch is masked (decoder uses the
            prediction), e.g. `patch_sse(source, prediction, patch)`.
        d_code: (Hp, Wp) distortion if the patch is coded, same units as d_mask.
        r_code: (Hp, Wp) bits spent coding the patch.
        lam: Lagrangian multiplier in distortion units per bit (for SSE on
            8-bit samples: squared sample units per bit).

    Returns:
        bool (Hp, Wp), True = masked: D_mask <= D_code + lam * R_code (masking
        costs no bits; the mask map's own few bits are shared by both choices
        and ignored). Arrays broadcast.
    """
    if lam < 0:
        raise ValueError(f"lambda {lam} must be >= 0")
    dm = np.asarray(d_mask, dtype=np.float64)
    return dm <= np.asarray(d_code, dtype=np.float64) + lam * np.asarray(r_code, dtype=np.float64)


def choose_mask_coded(d_mask: np.ndarray, d_code: np.ndarray, r_code: np.ndarray,
                      lam: float) -> np.ndarray:
    """`choose_mask` with the mask map's own bits: patch by patch in the map's coding
    order, the choice of least D + lam * (R + the bits of its flag in its real
    context, `masking.MaskCoder`). A lone patch whose choice barely pays for
    itself then follows its neighbours, and the map stays cheap to code (a noisy
    map of 1200 patches costs ~1000 bits, as much as the residual of a frame at
    the lowest qualities). Same arguments and result as `choose_mask`.
    """
    from mcodec.codec.masking import MaskCoder
    from mcodec.codec.rangecoder import BitCounter

    if lam < 0:
        raise ValueError(f"lambda {lam} must be >= 0")
    dm = np.asarray(d_mask, dtype=np.float64)
    dc = np.asarray(d_code, dtype=np.float64) + lam * np.asarray(r_code, dtype=np.float64)
    dm, dc = np.broadcast_arrays(dm, dc)
    hp, wp = dm.shape
    coder, commit = MaskCoder((hp, wp)), BitCounter(update=True)
    out = np.zeros((hp, wp), dtype=bool)
    dm_l, dc_l = dm.tolist(), dc.tolist()
    for r in range(hp):
        for c in range(wp):
            j = []
            for flag in (True, False):
                counter = BitCounter()
                coder.write(counter, r, c, flag)
                j.append((dm_l if flag else dc_l)[r][c] + lam * counter.bits)
            masked = j[0] <= j[1]
            coder.write(commit, r, c, masked)
            out[r, c] = masked
    return out


def mask_worst_kept(gain: np.ndarray, ratio: float) -> np.ndarray:
    """Mask round(ratio*N) of the N patches, those whose coding gains least distortion
    (`gain` = D_mask - D_code per patch; stable order among equal gains)."""
    n = gain.size
    k = int(round(ratio * n))
    order = np.argsort(gain, axis=None, kind="stable")[:k]
    mask = np.zeros(n, dtype=bool)
    mask[order] = True
    return mask.reshape(gain.shape)
