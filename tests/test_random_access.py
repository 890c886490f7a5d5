"""Random access: hierarchical bi frames, decode order vs display order, old streams.

The codec tests use the tiny random bundle (exactness and ordering do not depend
on training); the rate test uses the shipped model.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mcodec.codec import bitstream as bs
from mcodec.codec import codec
from mcodec.codec.codec import coding_order
from mcodec.codec.options import EncodeOptions, EncoderTuning
from mcodec.codec.video_io import open_video
from mcodec.errors import BitstreamError

from .conftest import decode_in_child, read_frames, synthetic_frames, write_clip

DATA = Path(__file__).resolve().parent / "data"
# The synthetic clips' V planes are fresh noise every frame: the scene-cut test would
# (rightly) start a GOP at every frame; these tests are about the GOP structure.
NO_CUTS = EncoderTuning(scene_cut_psnr=0.0, bi_group=8)   # (8: a deeper hierarchy than the default)


# ----------------------------------------------------------------------------- coding order


@pytest.mark.parametrize("n", [1, 2, 3, 8, 9, 10, 11, 17, 32, 33])
@pytest.mark.parametrize("group", [1, 2, 4, 8, 16])
def test_random_access_order_is_a_valid_permutation(n: int, group: int) -> None:
    order = coding_order(n, "randomaccess", group)
    assert sorted(cf.display for cf in order) == list(range(n))
    assert order[0].display == 0 and not order[0].bi
    done: set[int] = set()
    for cf in order:
        if cf.display:
            assert any(d < cf.display for d in done)            # a past reference exists
        if cf.bi:
            assert any(d > cf.display for d in done)            # and a future one
            assert cf.level >= 1
            # Its references are the nearest coded frames, at most a group apart.
            before = max(d for d in done if d < cf.display)
            after = min(d for d in done if d > cf.display)
            assert after - before <= group
        else:
            assert cf.level == 0
        assert abs(cf.display - len(done)) <= bs.MAX_REORDER
        done.add(cf.display)
    assert all(not cf.bi for cf in coding_order(n, "lowdelay", group))
    assert [cf.display for cf in coding_order(n, "lowdelay", group)] == list(range(n))


def test_random_access_order_of_one_group() -> None:
    order = coding_order(9, "randomaccess", 8)
    assert [cf.display for cf in order] == [0, 8, 4, 2, 1, 3, 6, 5, 7]
    assert [cf.level for cf in order] == [0, 0, 1, 2, 3, 3, 2, 3, 3]


# ----------------------------------------------------------------------------- round trips



def _display_hashes(path: Path) -> dict[int, bytes]:
    return {f.display: f.frame_hash for f in bs.read_bitstream(str(path)).frames}


@pytest.fixture(scope="module")
def moving11(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """11 textured frames panning right: a GOP of 11 = anchors 0, 8, 10 and bi frames (NO_CUTS)."""
    return write_clip(tmp_path_factory.mktemp("clip") / "pan11.y4m", synthetic_frames(64, 48, 11, seed=3))


def test_random_access_round_trip_in_separate_process_is_exact(nets, bundle, moving11, tmp_path) -> None:
    out = tmp_path / "ra.bin"
    summary = codec.encode(str(moving11), str(out), networks=nets,
                           options=EncodeOptions(quality=2, gop=11, structure="randomaccess", tuning=NO_CUTS))
    stream = bs.read_bitstream(str(out))
    order = coding_order(11, "randomaccess", 8)
    assert [f.display for f in stream.frames] == [c.display for c in order]
    bi_types = {bs.FRAME_BI_INTER, bs.FRAME_BI_REBUILT}
    assert all((f.frame_type in bi_types) == c.bi for f, c in zip(stream.frames, order))
    dec = tmp_path / "dec.y4m"
    assert decode_in_child(bundle, out, dec) == 11
    decoded = read_frames(dec)
    hashes = _display_hashes(out)
    # Output in display order: frame i is the picture the encoder reconstructed for display i.
    for i, frame in enumerate(decoded):
        assert bs.frame_hash(*frame.planes())[:3] == hashes[i]
    from mcodec.codec.distortion import frame_psnr_yuv

    src = read_frames(moving11)
    assert abs(np.mean([frame_psnr_yuv(a, b) for a, b in zip(src, decoded)]) - summary.psnr_yuv) < 1e-9
    # The END digest is over the 16-byte hashes in decode order.
    full = {i: bs.frame_hash(*f.planes()) for i, f in enumerate(decoded)}
    digest = hashlib.blake2b(b"".join(full[f.display] for f in stream.frames), digest_size=16).digest()
    assert stream.end.digest == digest


@pytest.mark.parametrize("count,gop", [(1, 32), (2, 32), (7, 5), (10, 4), (13, 32)])
def test_reordering_with_odd_frame_counts_and_gop_edges(nets, tmp_path, count, gop) -> None:
    src = write_clip(tmp_path / "in.y4m", synthetic_frames(40, 24, count, seed=count))
    out = tmp_path / "x.bin"
    codec.encode(str(src), str(out), networks=nets, options=EncodeOptions(quality=1, gop=gop, tuning=NO_CUTS))
    stream = bs.read_bitstream(str(out))
    keys = [f.index for f in stream.frames if f.frame_type == bs.FRAME_KEY]
    assert keys == list(range(0, count, gop))
    for k in keys:
        assert stream.frames[k].display == k                    # closed GOPs
    with open(out, "rb") as f:
        info, frames = codec.iter_decode(f, networks=nets)
        decoded = list(frames)
    assert len(decoded) == count
    hashes = _display_hashes(out)
    assert all(bs.frame_hash(*fr.planes())[:3] == hashes[i] for i, fr in enumerate(decoded))


def test_structures_share_key_frames_and_lowdelay_is_in_order(nets, moving11, tmp_path) -> None:
    ld, ra = tmp_path / "ld.bin", tmp_path / "ra.bin"
    for path, structure in ((ld, "lowdelay"), (ra, "randomaccess")):
        codec.encode(str(moving11), str(path), networks=nets,
                     options=EncodeOptions(quality=1, gop=11, structure=structure, tuning=NO_CUTS))
    s_ld, s_ra = bs.read_bitstream(str(ld)), bs.read_bitstream(str(ra))
    assert [f.display for f in s_ld.frames] == list(range(11))
    assert not {f.frame_type for f in s_ld.frames} & {bs.FRAME_BI_INTER, bs.FRAME_BI_REBUILT}
    assert s_ld.frames[0].frame_hash == s_ra.frames[0].frame_hash  # the same key frame


# ----------------------------------------------------------------------------- damage


def test_truncated_random_access_stream_fails_cleanly_and_keep_going_conceals(nets, moving11, tmp_path) -> None:
    out = tmp_path / "ra.bin"
    codec.encode(str(moving11), str(out), networks=nets,
                 options=EncodeOptions(quality=1, gop=6, structure="randomaccess", tuning=NO_CUTS))
    data = out.read_bytes()
    stream = bs.read_bitstream(data)
    # Cut inside decode unit 3 of the first GOP (displays 0, 5, 2, 1, 3, 4 | 6, ...).
    cut = stream.unit_summaries[3].offset + 5
    (tmp_path / "cut.bin").write_bytes(data[:cut])
    with pytest.raises(BitstreamError):
        with open(tmp_path / "cut.bin", "rb") as f:
            list(codec.iter_decode(f, networks=nets)[1])
    info, frames, report = codec.salvage_decode(data[:cut], networks=nets)
    out_frames = list(frames)
    decoded_displays = {f.display for f in stream.frames[:3]}          # 0, 5, 3
    assert len(out_frames) == 11                                       # the header's count
    assert sorted(report.lost) == [d for d in range(11) if d not in decoded_displays]
    hashes = _display_hashes(out)
    for d in decoded_displays:
        assert bs.frame_hash(*out_frames[d].planes())[:3] == hashes[d]
    # Concealment repeats the previous output frame in display order.
    assert np.array_equal(out_frames[1].y, out_frames[0].y)
    assert np.array_equal(out_frames[4].y, out_frames[3].y)


def test_keep_going_loses_only_frames_that_reference_a_damaged_one(nets, moving11, tmp_path) -> None:
    out = tmp_path / "ra.bin"
    codec.encode(str(moving11), str(out), networks=nets,
                 options=EncodeOptions(quality=1, gop=11, structure="randomaccess", tuning=NO_CUTS))
    data = bytearray(out.read_bytes())
    stream = bs.read_bitstream(bytes(data))
    assert [f.display for f in stream.frames][:5] == [0, 8, 4, 2, 1]
    # Damage the unit of display 2 (decode index 3): 1 and 3 reference it; 4's
    # references are 0 and 8, so 4 still decodes, but the v4 container cannot
    # place frames after a damaged unit until the next key frame.
    unit = stream.unit_summaries[3]
    data[unit.offset + unit.size - 6] ^= 0xFF
    info, frames, report = codec.salvage_decode(bytes(data), networks=nets)
    out_frames = list(frames)
    assert len(out_frames) == 11
    assert 0 not in report.lost and 8 not in report.lost and 4 not in report.lost
    assert {1, 2, 3} <= set(report.lost)
    assert report.damage


def test_cli_keep_going_on_a_damaged_random_access_stream(nets, bundle, moving11, tmp_path) -> None:
    out = tmp_path / "ra.bin"
    codec.encode(str(moving11), str(out), networks=nets, options=EncodeOptions(quality=1, gop=11, tuning=NO_CUTS))
    data = out.read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[:len(data) // 2])
    summary = codec.decode(str(tmp_path / "cut.bin"), str(tmp_path / "o.y4m"), networks=nets,
                           keep_going=True)
    assert summary.frames == 11 and summary.lost_frames and summary.damage
    assert len(read_frames(tmp_path / "o.y4m")) == 11


# ----------------------------------------------------------------------------- old streams


def test_version_3_stream_still_decodes_exactly(tmp_path) -> None:
    """tests/data/v3_cars_6f.bin: 6 frames of cars_320x240 written by mcodec 0.1.0
    (format version 3, commit 3e177a4: `mcodec encode ... --frames 6 --gop 4 --quality 1`),
    decoded then to y4m with sha256 e7bf74de...."""
    path = DATA / "v3_cars_6f.bin"
    stream = bs.read_bitstream(str(path))
    assert stream.format_version == 3 and len(stream.frames) == 6
    out = tmp_path / "v3.y4m"
    summary = codec.decode(str(path), str(out))
    assert summary.frames == 6
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == "e7bf74de1930d43c8972c9b5a1aa4e1a7669f01cc3d742feba140f0e06785538"


# ----------------------------------------------------------------------------- rate


@pytest.fixture(scope="module")
def cars9(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with open_video(str(clips_dir / "cars_320x240.mkv"), max_frames=9) as r:
        frames = list(r)
    return write_clip(tmp_path_factory.mktemp("clip") / "cars9.y4m", frames, Fraction(30))


def test_random_access_rate_is_monotonic_in_quality(cars9, tmp_path) -> None:
    from mcodec.codec.zoo import load_networks

    shipped = load_networks()
    sizes, psnrs = [], []
    levels = len(EncoderTuning().quality_ladder(shipped.levels))
    for q in range(0, levels, 3):
        s = codec.encode(str(cars9), str(tmp_path / f"q{q}.bin"), networks=shipped,
                         options=EncodeOptions(quality=q, gop=32, frames=5, structure="randomaccess"))
        sizes.append(s.bytes)
        psnrs.append(s.psnr_yuv)
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes
    assert psnrs == sorted(psnrs), psnrs


def test_version_4_stream_still_decodes_exactly(tmp_path) -> None:
    """tests/data/v4_cars_ra_6f.bin: 6 frames of cars_320x240 in random access written by
    format version 4 (4-byte frame checks; commit b69e2c9: `mcodec encode ... --frames 6
    --gop 4 --quality 3 --structure randomaccess`), with B-frames, the fine layer's model and
    the loop filter; decoded then to y4m with sha256 b7a2b5d6...."""
    path = DATA / "v4_cars_ra_6f.bin"
    stream = bs.read_bitstream(str(path))
    assert (stream.format_version, stream.min_reader_version) == (4, 4)
    assert [f.display for f in stream.frames] == [0, 3, 1, 2, 4, 5]
    assert all(len(f.frame_hash) == 4 for f in stream.frames)
    out = tmp_path / "v4.y4m"
    summary = codec.decode(str(path), str(out))  # every frame_check and the END digest verified
    assert summary.frames == 6
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == "b7a2b5d6091e595ebb7500530a560f53763a4a9e3be5fde596c2a81718b6104f"
