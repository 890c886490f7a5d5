"""Metrics: exact definitions, streaming checks, and agreement with ffmpeg's psnr filter."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from mcodec.codec.frame import Frame, chroma_shape
from mcodec.errors import VideoIOError
from mcodec.eval.anchors import anchor_codec
from mcodec.eval.bench import synthetic_frames
from mcodec.eval.metrics import (PSNR_CAP_DB, SequenceMetrics, msssim_available, psnr_from_mse,
                                 sequence_metrics, vmaf_per_frame, yuv_weighted)

from .conftest import ffmpeg_psnr, frames_of, write_clip


def noisy(frames: list[Frame], sigma: float, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        planes = [np.clip(p.astype(np.float64) + rng.normal(0, sigma, p.shape), 0, 255)
                  .round().astype(np.uint8) for p in f.planes()]
        out.append(Frame(*planes))
    return out


def test_psnr_from_mse_values_and_cap():
    assert psnr_from_mse(1.0) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-12)
    assert psnr_from_mse(0.0) == PSNR_CAP_DB
    assert psnr_from_mse(1e-12) == PSNR_CAP_DB  # above the cap is clipped too
    arr = psnr_from_mse(np.array([0.0, 65025.0]))
    assert arr.tolist() == [PSNR_CAP_DB, 0.0]


def test_yuv_weighting_is_6_1_1():
    assert yuv_weighted(40.0, 48.0, 32.0) == pytest.approx((6 * 40 + 48 + 32) / 8)


def test_identical_frames_score_the_cap():
    frames = synthetic_frames(3, 256, 192)
    m = sequence_metrics(frames, [Frame(f.y.copy(), f.u.copy(), f.v.copy()) for f in frames])
    assert m.frames == 3 and (m.width, m.height) == (256, 192)
    for v in (m.psnr_y, m.psnr_u, m.psnr_v, m.psnr_yuv, m.psnr_y_mse, m.psnr_yuv_mse):
        assert v == PSNR_CAP_DB
    assert m.msssim_y == pytest.approx(1.0, abs=1e-6)
    assert math.isnan(m.vmaf)


def test_per_frame_definitions_and_two_averages():
    ref = synthetic_frames(4, 256, 192)
    # Different noise per frame, so mean-of-PSNR and PSNR-of-mean-MSE differ.
    dist = [noisy([f], sigma, seed=i)[0] for i, (f, sigma) in enumerate(zip(ref, (1, 3, 6, 12)))]
    m = sequence_metrics(ref, dist)
    for i, (r, d) in enumerate(zip(ref, dist)):
        mses = [np.mean((a.astype(float) - b) ** 2) for a, b in zip(r.planes(), d.planes())]
        p = [10 * math.log10(255 ** 2 / x) for x in mses]
        assert m.frame_psnr_y[i] == pytest.approx(p[0], abs=1e-9)
        assert m.frame_psnr_yuv[i] == pytest.approx((6 * p[0] + p[1] + p[2]) / 8, abs=1e-9)
    assert m.psnr_yuv == pytest.approx(np.mean(m.frame_psnr_yuv))
    assert m.psnr_y_mse == pytest.approx(10 * math.log10(255 ** 2 / np.mean(m.frame_mse_y)))
    assert m.psnr_yuv_mse == pytest.approx((6 * m.psnr_y_mse + m.psnr_u_mse + m.psnr_v_mse) / 8)
    assert m.psnr_y_mse < m.psnr_y  # Jensen: PSNR of the mean MSE is below the mean PSNR
    assert 0 < m.msssim_y < 1 and np.all(np.diff(m.frame_msssim_y) < 0)


def test_metrics_round_trip_through_dict():
    ref = synthetic_frames(2, 256, 192)
    m = sequence_metrics(ref, noisy(ref, 4))
    back = SequenceMetrics.from_dict(m.to_dict())
    assert back.summary() == pytest.approx(m.summary(), nan_ok=True)
    assert np.array_equal(back.frame_psnr_yuv, m.frame_psnr_yuv)


def test_msssim_is_nan_below_its_minimum_size():
    assert not msssim_available(160, 400) and msssim_available(161, 161)
    small = synthetic_frames(2, 160, 120)
    m = sequence_metrics(small, noisy(small, 3))
    assert math.isnan(m.msssim_y) and np.all(np.isnan(m.frame_msssim_y))
    assert math.isfinite(m.psnr_yuv)


def test_frame_count_and_size_mismatch_are_errors():
    ref = synthetic_frames(3, 256, 192)
    with pytest.raises(VideoIOError, match="frame count mismatch"):
        sequence_metrics(ref, ref[:2], msssim=False)
    with pytest.raises(VideoIOError, match="frame count mismatch"):
        sequence_metrics(ref[:1], ref, msssim=False)
    other = synthetic_frames(3, 128, 96)
    with pytest.raises(VideoIOError, match="size"):
        sequence_metrics(ref, other, msssim=False)
    with pytest.raises(VideoIOError, match="no frames"):
        sequence_metrics([], [], msssim=False)


def test_psnr_matches_ffmpeg_psnr_filter_on_x264(tmp_path, dev_cut):
    src = dev_cut(6)
    codec = anchor_codec("x264", "lowdelay", threads=1)
    enc = codec.encode(src, 32, 34, tmp_path)
    ref = frames_of(src)
    m = sequence_metrics(ref, codec.decode(enc.path, ref[0].width, ref[0].height), msssim=False)
    summary, per_frame = ffmpeg_psnr(enc.path, src, tmp_path / "psnr.log", demuxer="h264")
    assert len(per_frame) == m.frames == len(ref)
    # Summary (PSNR of the mean MSE per plane) printed with 6 decimals.
    assert m.psnr_y_mse == pytest.approx(summary["y"], abs=0.01)
    assert m.psnr_u_mse == pytest.approx(summary["u"], abs=0.01)
    assert m.psnr_v_mse == pytest.approx(summary["v"], abs=0.01)
    # Per frame (printed with 2 decimals, hence 0.01 dB).
    for i, fr in enumerate(per_frame):
        assert m.frame_psnr_y[i] == pytest.approx(fr["y"], abs=0.0051)
        assert m.frame_psnr_u[i] == pytest.approx(fr["u"], abs=0.0051)
        assert m.frame_psnr_v[i] == pytest.approx(fr["v"], abs=0.0051)
    assert 25 < m.psnr_yuv < 50


def test_vmaf_per_frame(tmp_path, dev_cut):
    src = dev_cut(4)
    ref = frames_of(src)
    dist_path = write_clip(tmp_path / "dist.y4m", noisy(ref, 4), Fraction(25))
    scores = vmaf_per_frame(str(src), str(dist_path), threads=1)
    assert scores.shape == (4,) and np.all((scores >= 0) & (scores <= 100))
    m = sequence_metrics(ref, noisy(ref, 4), msssim=False).with_vmaf(scores)
    assert m.vmaf == pytest.approx(scores.mean())
    with pytest.raises(VideoIOError):
        m.with_vmaf(scores[:2])
    with pytest.raises(VideoIOError, match="not found"):
        vmaf_per_frame(str(tmp_path / "missing.y4m"), str(dist_path))


def test_odd_sizes_work():
    h, w = 171, 165  # odd: chroma rounds up
    rng = np.random.default_rng(1)
    ch, cw = chroma_shape(h, w)
    f = Frame(rng.integers(0, 256, (h, w), dtype=np.uint8),
              rng.integers(0, 256, (ch, cw), dtype=np.uint8),
              rng.integers(0, 256, (ch, cw), dtype=np.uint8))
    m = sequence_metrics([f], noisy([f], 2))
    assert math.isfinite(m.psnr_yuv) and math.isfinite(m.msssim_y)
