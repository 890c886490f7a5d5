"""Hostile and damaged input on the whole decode path (container + codec), --keep-going.

A real multi-GOP stream (8 frames, GOP 3: key frames 0, 3, 6) made by the tiny
bundle of tests/conftest.py is truncated at every offset and bit-flipped at sampled
offsets; each damaged stream must give a clean BitstreamError naming a unit,
and `--keep-going` must decode exactly the intact GOP prefixes.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcodec.codec import bitstream as bs
from mcodec.codec import codec, zoo
from mcodec.codec.options import EncodeOptions, EncoderTuning
from mcodec.codec.video_io import open_video
from mcodec.errors import BitstreamError

from .conftest import REPO, synthetic_frames, write_clip

FRAMES, GOP = 8, 3


@pytest.fixture(scope="module")
def stream(nets: zoo.CodecNetworks, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list]:
    """(stream bytes, the 8 reference reconstructions decoded from it)."""
    d = tmp_path_factory.mktemp("stream")
    src = write_clip(d / "src.y4m", synthetic_frames(48, 32, FRAMES, seed=3))
    out = d / "s.bin"
    # (the synthetic V planes are fresh noise each frame: no scene-cut test here)
    codec.encode(str(src), str(out), networks=nets,
                 options=EncodeOptions(quality=1, gop=GOP, tuning=EncoderTuning(scene_cut_psnr=0.0)))
    data = out.read_bytes()
    info, frames = codec.iter_decode(open(out, "rb"), networks=nets)
    return data, [f.planes() for f in frames]


def _frame_offsets(data: bytes) -> list[int]:
    return [off for off, u in bs.BitstreamReader(__import__("io").BytesIO(data)).units()
            if isinstance(u, bs.FrameUnit)]


def _decode_all(data: bytes, nets) -> None:
    import io

    _, frames = codec.iter_decode(io.BytesIO(data), networks=nets)
    for _ in frames:
        pass


def test_stream_has_several_gops(stream) -> None:
    data, ref = stream
    units = [u for _, u in bs.BitstreamReader(__import__("io").BytesIO(data)).units()
             if isinstance(u, bs.FrameUnit)]
    assert [u.frame_type == bs.FRAME_KEY for u in units] == [i % GOP == 0 for i in range(FRAMES)]
    assert len(ref) == FRAMES


def test_every_truncation_offset_is_a_clean_error(stream, nets) -> None:
    """The container stops at every cut; decoding the sampled cuts stops cleanly too."""
    import io

    data, _ = stream
    for n in range(len(data)):
        with pytest.raises(BitstreamError) as err:
            for _ in bs.BitstreamReader(io.BytesIO(data[:n])).units():
                pass
        assert "truncated" in str(err.value) or "unit" in str(err.value) or "header" in str(err.value)
    for n in range(0, len(data), 37):  # the full decoder on a sample of the cuts
        with pytest.raises(BitstreamError):
            _decode_all(data[:n], nets)


def test_bit_flips_are_clean_errors_naming_the_unit(stream, nets) -> None:
    data, _ = stream
    rng = random.Random(5)
    offsets = sorted(rng.sample(range(len(data)), 60))
    for off in offsets:
        bad = bytearray(data)
        bad[off] ^= 1 << rng.randrange(8)
        with pytest.raises(BitstreamError) as err:
            _decode_all(bytes(bad), nets)
        message = str(err.value)
        assert any(w in message for w in ("unit", "header", "signature", "stream")), message


def _lost_after_damage(data: bytes, damaged_unit: int) -> list[int]:
    """Frames lost when FRAME unit `damaged_unit` is unusable: the rest of its GOP."""
    next_key = (damaged_unit // GOP + 1) * GOP
    return list(range(damaged_unit, min(next_key, FRAMES)))


@pytest.mark.parametrize("damaged", [0, 1, 4, 7])
def test_keep_going_decodes_intact_gops(stream, nets, damaged: int) -> None:
    """A CRC-damaged frame loses the rest of its GOP only; other frames are exact."""
    data, ref = stream
    off = _frame_offsets(data)[damaged]
    bad = bytearray(data)
    bad[off + 40] ^= 0x10  # inside the frame's payload: its CRC fails
    info, frames, report = codec.salvage_decode(bytes(bad), networks=nets)
    out = [f.planes() for f in frames]
    assert len(out) == FRAMES
    assert report.lost == _lost_after_damage(data, damaged)
    assert any("CRC mismatch" in d for d in report.damage)
    for i in range(FRAMES):
        if i not in report.lost:
            assert all(np.array_equal(a, b) for a, b in zip(out[i], ref[i])), i
    # a lost frame repeats the previous output frame (grey before the first)
    first = report.lost[0]
    expect = out[first - 1] if first else tuple(np.full_like(p, 128) for p in ref[0])
    assert all(np.array_equal(a, b) for a, b in zip(out[first], expect))


def test_keep_going_on_truncation_knows_the_frame_count(stream, nets) -> None:
    import io

    data, ref = stream
    cut = _frame_offsets(data)[5] + 10  # inside frame unit 5 (decode order)
    info, frames, report = codec.salvage_decode(data[:cut], networks=nets)
    out = list(frames)
    assert len(out) == FRAMES  # the header's frame_count says 8
    units = [u for _, u in bs.BitstreamReader(io.BytesIO(data)).units() if isinstance(u, bs.FrameUnit)]
    # every frame from unit 5 on is lost, by display index (B-frames: display order differs)
    assert report.lost == sorted(u.display for u in units[5:])
    assert any("truncated" in d or "runs past the end" in d for d in report.damage)


def test_keep_going_on_every_truncation_offset(stream) -> None:
    """salvage() never fails on a cut after the header and keeps exactly the whole frame units."""
    import io

    data, _ = stream
    units = list(bs.BitstreamReader(io.BytesIO(data)).units())
    ends = [units[i + 1][0] for i, (_, u) in enumerate(units) if isinstance(u, bs.FrameUnit)]
    for n in range(units[0][0], len(data)):
        found = bs.salvage(data[:n])
        assert [u.index for _, u in found.frames] == [i for i, e in enumerate(ends) if e <= n], n
        assert found.damage and found.frame_count == FRAMES


@pytest.fixture(scope="module")
def shipped_stream(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Like `stream`, coded with the shipped model, which `mcodec decode` finds in the
    model table by itself (the CLI runs as users run it: nothing patched)."""
    d = tmp_path_factory.mktemp("shipped")
    src = write_clip(d / "src.y4m", synthetic_frames(48, 32, FRAMES, seed=3))
    out = d / "s.bin"
    codec.encode(str(src), str(out), options=EncodeOptions(quality=1, gop=GOP))
    return out.read_bytes()


def test_keep_going_cli_exit_codes(shipped_stream, tmp_path: Path) -> None:
    """Without --keep-going a damaged stream exits 2 with one line; with it, 0 and a lost-frame list."""
    data = shipped_stream
    offsets = _frame_offsets(data)
    bad = bytearray(data)
    bad[(offsets[4] + offsets[5]) // 2] ^= 0x10            # inside frame unit 4's payload
    src = tmp_path / "bad.bin"
    src.write_bytes(bytes(bad))
    run = [sys.executable, "-m", "mcodec.cli.main", "-q", "decode", str(src)]
    r = subprocess.run(run + [str(tmp_path / "a.y4m")], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "frame unit 4: CRC mismatch" in r.stderr
    assert not (tmp_path / "a.y4m").exists()
    r = subprocess.run(run + [str(tmp_path / "b.y4m"), "--keep-going"], capture_output=True, text=True,
                       cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "2 lost frames concealed (4-5)" in r.stdout
    # Format version 4: after the damage, frame unit 5 (not a key frame) cannot be placed.
    assert r.stderr.strip().splitlines() == [
        f"mcodec: warning: damaged stream: frame unit: CRC mismatch (at byte offset "
        f"{offsets[5] - 4})",
        f"mcodec: warning: damaged stream: frame unit: not a key frame, cannot be placed after damage "
        f"(at byte offset {offsets[5]})"]
    with open_video(str(tmp_path / "b.y4m")) as reader:
        assert sum(1 for _ in reader) == FRAMES


def test_decoder_refuses_frames_over_its_pixel_limit(stream, nets) -> None:
    import io

    data, _ = stream
    with pytest.raises(BitstreamError, match="exceeds this decoder's limit of 1000 pixels"):
        codec.iter_decode(io.BytesIO(data), networks=nets, max_pixels=1000)


def test_pixel_limit_counts_the_2x_coded_size(tmp_path) -> None:
    """A header allowing 2x frames is checked at 4x the pixels (the decoder works at 2x)."""
    from mcodec.codec import bitstream as bs

    def header(flags: int) -> bs.SequenceHeader:
        return bs.SequenceHeader(width=64, height=48, fps_num=25, fps_den=1, frame_count=0,
                                 coding=bs.CodingParams(gop=1, quality=0, patch_size=16,
                                                        search_range=16, flags=flags),
                                 model_sha256=bytes(32), model_name="x")
    codec._check_decode_size(header(bs.CODING_FLAG_OBMC), 64 * 48)          # 1x: fits exactly
    with pytest.raises(BitstreamError, match=r"64x48 \(coded at 2x: 128x96\) exceeds"):
        codec._check_decode_size(header(bs.CODING_FLAG_SCALE2), 64 * 48 * 4 - 1)
    codec._check_decode_size(header(bs.CODING_FLAG_SCALE2), 64 * 48 * 4)


def test_a_different_platform_is_caught_by_the_frame_hash(stream, bundle) -> None:
    """Decoding networks that compute slightly differently (as another platform could) give
    an error naming the platform, never silently different frames."""
    import io

    import torch

    data, _ = stream
    other = zoo.networks_from_file(str(bundle), model_id="tiny")
    with torch.no_grad():
        other.intra.g_s[-1].bias.add_(2e-3)  # a last-bit-level change in the synthesis
    with pytest.raises(BitstreamError, match="incompatible platform"):
        _, frames = codec.iter_decode(io.BytesIO(data), networks=other)
        next(frames)


def test_outputs_get_ordinary_permissions(nets, tmp_path: Path) -> None:
    """Atomic outputs (written via mkstemp, which makes 0600 files) end up 0666 & ~umask."""
    import os

    umask = os.umask(0o022)
    try:
        src = write_clip(tmp_path / "in.y4m", synthetic_frames(32, 16, 2))
        codec.encode(str(src), str(tmp_path / "o.bin"), options=EncodeOptions(quality=1),
                     networks=nets)
        codec.decode(str(tmp_path / "o.bin"), str(tmp_path / "d.y4m"), networks=nets)
        codec.decode(str(tmp_path / "o.bin"), str(tmp_path / "d.mkv"), networks=nets)
    finally:
        os.umask(umask)
    for name in ("o.bin", "d.y4m", "d.mkv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
