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


@pytest.mark.parametrize("fine", [False, True])
def test_mask_check_keeps_the_cheapest_output(dev_cut, fine: bool) -> None:
    """`EncoderTuning.mask_check`: whatever the per-patch mask, the frame gets the mask
    (of that one, no mask, motion only) whose *estimated output* is cheapest in J."""
    import torch

    from mcodec.codec import zoo
    from mcodec.codec.frame_encoder import FrameEncoder, _pad_to
    from mcodec.codec.masking import encode_mask
    from mcodec.codec.options import EncoderTuning
    from mcodec.codec.reconstruct import (
        add_residual,
        residual_planes,
        to_planes,
        to_tensor,
    )
    from mcodec.codec.video_io import open_video

    with open_video(str(dev_cut(3))) as r:
        frames = [f.crop(0, 0, 128, 96) for f in r]
    nets = zoo.load_encoders()
    enc = FrameEncoder(nets, 128, 96, "auto", EncoderTuning(), fine=fine)
    frame, pred = frames[2], frames[0].planes()   # the prediction: two frames back, no motion
    x, geometry = to_tensor(residual_planes(frame, pred), enc.nets)
    q, lam = 3, 1.0 / enc.nets.lambdas[3]
    est = enc.nets.inter.estimate(x, q)
    hy, wy = geometry_shape = est.position_bits.shape
    d_mask = _pad_to(enc.patch_distortion(frame, pred), geometry_shape)
    d_code = _pad_to(enc.patch_distortion(frame, add_residual(pred, to_planes(est.x_hat, geometry))),
                     geometry_shape)
    r_code = est.position_bits.numpy()

    def j(mask: np.ndarray) -> float:
        if mask.all():
            return float(d_mask.sum())
        e = enc.nets.inter.estimate(x, q, mask=torch.from_numpy(mask), analysis=est.analysis)
        out = add_residual(pred, to_planes(e.x_hat, geometry))
        map_bits = 8 * len(encode_mask(mask))   # EncoderTuning.mask_map_bits (0 for no mask)
        return float(_pad_to(enc.patch_distortion(frame, out), geometry_shape).sum()) + lam * (e.total_bits + map_bits)

    rng = np.random.default_rng(1)
    for start in (rng.random((hy, wy)) < 0.9, rng.random((hy, wy)) < 0.2):
        got = enc._check_mask(frame, pred, x, geometry, q, est, start.copy(), d_mask, d_code, r_code, lam)
        assert got.shape == (hy, wy) and got.dtype == bool
        candidates = [start, np.zeros_like(start), np.ones_like(start)]
        assert any(np.array_equal(got, c) for c in candidates)
        assert j(got) <= min(j(c) for c in candidates) + 1e-6


def test_coded_mask_choice_counts_the_map_and_lowers_the_real_j() -> None:
    from mcodec.codec.mask_decision import choose_mask_coded
    from mcodec.codec.masking import MaskCoder, encode_mask
    from mcodec.codec.rangecoder import RangeEncoder

    rng = np.random.default_rng(3)
    # Patches where masking and coding cost about the same: the per-patch rule
    # flips a coin on noise, the coded rule keeps the map cheap.
    d_code = rng.uniform(50, 150, (30, 40))
    r_code = rng.uniform(5, 15, (30, 40))
    lam = 10.0
    d_mask = d_code + lam * r_code + rng.normal(0, 20, (30, 40))

    def j(mask: np.ndarray) -> float:
        return float(np.where(mask, d_mask, d_code + lam * r_code).sum()) + lam * 8 * len(encode_mask(mask))

    plain = choose_mask(d_mask, d_code, r_code, lam)
    coded = choose_mask_coded(d_mask, d_code, r_code, lam)
    assert j(coded) < j(plain)
    assert len(encode_mask(coded)) < len(encode_mask(plain))
    # With lambda 0 the map is free: the same choice as per patch.
    assert np.array_equal(choose_mask_coded(d_mask, d_code, r_code, 0.0), choose_mask(d_mask, d_code, r_code, 0.0))
    # MaskCoder writes what write_mask writes.
    enc, coder = RangeEncoder(), MaskCoder(coded.shape)
    for r in range(coded.shape[0]):
        for c in range(coded.shape[1]):
            coder.write(enc, r, c, coded[r, c])
    assert enc.finish() == encode_mask(coded)
    with pytest.raises(ValueError):
        choose_mask_coded(d_mask, d_code, r_code, -1.0)
