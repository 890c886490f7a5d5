"""The encoder's mask decision: the per-patch J rule and the fixed-ratio choice."""

from __future__ import annotations

import numpy as np
import pytest

from mcodec.codec.mask_decision import choose_mask, mask_worst_kept


def test_choose_mask_rule() -> None:
    d_mask = np.array([[10.0, 50.0], [100.0, 30.0]])
    d_code = np.array([[5.0, 5.0], [5.0, 30.0]])
    r_code = np.array([[10.0, 10.0], [10.0, 0.0]])
    # masked iff D_mask <= D_code + lam * R_code; ties mask (no bits spent).
    assert choose_mask(d_mask, d_code, r_code, 1.0).tolist() == [[True, False], [False, True]]
    assert choose_mask(d_mask, d_code, r_code, 4.5).tolist() == [[True, True], [False, True]]
    assert choose_mask(d_mask, d_code, r_code, 0.0).tolist() == [[False, False], [False, True]]
    with pytest.raises(ValueError):
        choose_mask(d_mask, d_code, r_code, -1.0)


def test_mask_worst_kept_masks_the_least_gaining_patches() -> None:
    gain = np.array([[5.0, -1.0, 3.0], [0.0, 9.0, 3.0]])
    assert mask_worst_kept(gain, 0.5).tolist() == [[False, True, True], [True, False, False]]
    assert not mask_worst_kept(gain, 0.0).any() and mask_worst_kept(gain, 1.0).all()
    # Ties keep raster order (stable), so encoder and tests agree on which one is masked.
    assert mask_worst_kept(np.zeros((1, 4)), 0.25).tolist() == [[True, False, False, False]]
