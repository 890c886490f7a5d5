"""Anchor codecs: the table, real encodes and decodes, VVenC's 10-bit output, byte counting."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from mcodec.codec import ffmpeg as ff
from mcodec.errors import FFmpegError, McodecError
from mcodec.eval.anchors import (ANCHORS, CONFIGS, FFmpegAnchor, anchor_codec, anchor_names,
                                 anchor_spec, decode_stream, ten_to_eight_bit, x264_info_sei_bytes)
from mcodec.eval.codecs import Codec
from mcodec.eval.metrics import sequence_metrics

from .conftest import ffmpeg_psnr, frames_of

MAIN = ("x264", "x265", "svtav1", "aom", "vvenc")


def test_table_has_every_codec_in_both_configurations():
    assert set(MAIN) <= set(anchor_names())
    assert {"x264-veryslow", "x265-veryslow"} <= set(anchor_names())
    for name in anchor_names():
        for config in CONFIGS:
            spec = anchor_spec(name, config)
            assert len(spec.points) >= 4
            assert list(spec.points) == sorted(spec.points)
            assert any("{gop}" in a for a in spec.args), "key-frame interval must follow --gop"
    assert len({(s.name, s.config) for s in ANCHORS}) == len(ANCHORS)
    with pytest.raises(KeyError):
        anchor_spec("nope", "lowdelay")


def test_lowdelay_rows_forbid_reordering():
    assert "bframes=0" in " ".join(anchor_spec("x264", "lowdelay").args)
    assert "bframes=0" in " ".join(anchor_spec("x265", "lowdelay").args)
    assert "pred-struct=1" in " ".join(anchor_spec("svtav1", "lowdelay").args)
    aom = anchor_spec("aom", "lowdelay").args
    assert aom[aom.index("-lag-in-frames") + 1] == "0"
    assert "picreordering=0" in " ".join(anchor_spec("vvenc", "lowdelay").args)
    for name in MAIN:
        assert "bframes=0" not in " ".join(anchor_spec(name, "randomaccess").args)


def test_command_substitutes_gop_and_threads(tmp_path):
    codec = anchor_codec("x265", "lowdelay", threads=1)
    cmd = codec.command(tmp_path / "a.y4m", 16, 30, tmp_path / "a.265")
    joined = " ".join(cmd)
    assert "keyint=16:min-keyint=16" in joined and "-threads 1" in joined
    assert cmd[cmd.index("-crf") + 1] == "30" and "{" not in joined
    assert isinstance(codec, Codec)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name", MAIN)
def test_every_anchor_encodes_and_decodes(tmp_path, name, config, dev_cut):
    src = dev_cut(5)
    ref = frames_of(src)
    codec = anchor_codec(name, config, threads=2)
    point = codec.points[1]  # a high-rate point: quality must be high
    enc = codec.encode(src, 4, point, tmp_path)
    assert enc.path.suffix == codec.spec.extension and enc.path.stat().st_size == enc.file_bytes
    assert 0 < enc.bytes <= enc.file_bytes
    assert enc.encoder_version, "the encoder's own version string should be recorded"
    assert "-fps_mode" not in enc.commands[0] and str(src) in enc.commands[0]
    decoded = list(codec.decode(enc.path, ref[0].width, ref[0].height))
    assert len(decoded) == len(ref)
    m = sequence_metrics(ref, decoded, msssim=False)
    assert m.psnr_yuv > 33, f"{name} {config}: {m.psnr_yuv:.2f} dB"


def test_x264_info_sei_is_excluded(tmp_path, dev_cut):
    src = dev_cut(3)
    enc = anchor_codec("x264", "lowdelay").encode(src, 32, 30, tmp_path)
    data = enc.path.read_bytes()
    sei = x264_info_sei_bytes(data)
    assert 200 < sei < 2000 and b"x264 - core" in data
    assert enc.bytes == enc.file_bytes - sei
    assert enc.encoder_version.startswith("x264 core")


def test_ten_to_eight_bit_is_exact_rounding_like_ffmpeg_without_dither():
    w, h = 1024, 4
    y = np.tile(np.arange(1024, dtype=np.uint16), (h, 1))
    c = np.full((h // 2, w // 2), 512, dtype=np.uint16)
    raw = y.tobytes() + c.tobytes() + c.tobytes()

    def ffmpeg_8bit(extra: list[str]) -> np.ndarray:
        args = ff.base_args() + ["-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-video_size",
                                 f"{w}x{h}", "-i", "pipe:0", *extra, "-pix_fmt", "yuv420p",
                                 "-f", "rawvideo", "pipe:1"]
        out = subprocess.run(args, input=raw, capture_output=True, check=True).stdout
        return np.frombuffer(out, np.uint8)[:w * h].reshape(h, w)

    ours = ten_to_eight_bit(y)
    assert np.array_equal(ours[0], np.minimum((np.arange(1024) + 2) >> 2, 255))
    assert np.array_equal(ours, ffmpeg_8bit(["-sws_dither", "none"]))
    # Why we convert ourselves: ffmpeg's default 10->8-bit conversion dithers.
    assert not np.array_equal(ours, ffmpeg_8bit([]))


def test_vvenc_ten_bit_output_scores_correctly(tmp_path, dev_cut):
    src = dev_cut(5)
    ref = frames_of(src)
    codec = anchor_codec("vvenc", "lowdelay")
    assert codec.spec.decode_bits == 10
    enc = codec.encode(src, 32, codec.points[0], tmp_path)
    decoded = list(codec.decode(enc.path, ref[0].width, ref[0].height))
    assert len(decoded) == len(ref)
    m = sequence_metrics(ref, decoded, msssim=False)
    assert m.psnr_yuv > 30
    # ffmpeg's own decode + 8-bit conversion without dithering + psnr filter.
    summary, per_frame = ffmpeg_psnr(enc.path, src, tmp_path / "psnr.log", demuxer="vvc",
                                     convert="scale=sws_dither=none,format=yuv420p,")
    assert len(per_frame) == len(ref)
    assert m.psnr_y_mse == pytest.approx(summary["y"], abs=0.01)
    assert m.psnr_u_mse == pytest.approx(summary["u"], abs=0.01)
    assert m.psnr_v_mse == pytest.approx(summary["v"], abs=0.01)


def test_decoding_garbage_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.264"
    bad.write_bytes(b"\x00\x00\x01\x09garbage" * 10)
    with pytest.raises(McodecError):
        list(decode_stream(bad, "h264", 64, 48))


def test_encode_failure_carries_ffmpeg_stderr(tmp_path):
    src = tmp_path / "not_video.y4m"
    src.write_bytes(b"not a y4m")
    with pytest.raises(FFmpegError, match="encode"):
        anchor_codec("x264", "lowdelay").encode(src, 32, 30, tmp_path)


def test_anchor_has_the_codec_interface():
    codec = anchor_codec("aom", "randomaccess", threads=1)
    assert isinstance(codec, FFmpegAnchor) and isinstance(codec, Codec)
    assert codec.point_label == "crf" and codec.config == "randomaccess"
    assert "threads=1" in codec.cache_token
    assert anchor_codec("aom", "randomaccess", threads=2).cache_token != codec.cache_token
