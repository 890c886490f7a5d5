"""The codec end to end: real video in, real bitstream files, exact decoding.

Most tests use a tiny randomly initialised bundle (the dataflow and exactness do
not depend on training); the rate tests use the shipped model.
"""

from __future__ import annotations

from fractions import Fraction
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mcodec.codec import bitstream as bs
from mcodec.codec import codec
from mcodec.codec.options import EncodeOptions, EncoderTuning
from mcodec.codec.reconstruct import FrameDecoder
from mcodec.codec.zoo import CodecNetworks, load_networks, networks_from_file
from mcodec.codec.video_io import open_video
from mcodec.errors import BitstreamError, McodecError, ModelError

from .conftest import decode_in_child, read_frames, synthetic_frames, tiny_bundle, write_clip



def test_round_trip_in_separate_process_is_exact(nets, bundle, cars_cut, tmp_path) -> None:
    out = tmp_path / "cars.bin"
    options = EncodeOptions(quality=2, gop=4, mask="auto", structure="lowdelay")
    summary = codec.encode(str(cars_cut), str(out), options=options, networks=nets)
    assert summary.frames == 6 and summary.bytes == out.stat().st_size
    stream = bs.read_bitstream(str(out))
    assert [f.frame_type for f in stream.frames][0] == bs.FRAME_KEY
    assert stream.frames[4].frame_type == bs.FRAME_KEY          # GOP of 4
    assert all(f.frame_type != bs.FRAME_KEY for i, f in enumerate(stream.frames) if i % 4)
    dec = tmp_path / "dec.y4m"
    assert decode_in_child(bundle, out, dec) == 6
    decoded = read_frames(dec)
    # Hashes were verified during decoding; check them again against the stream
    # (low delay: decode order is display order; version 5 keeps 3 bytes per frame).
    for unit, frame in zip(stream.frames, decoded):
        assert unit.display == unit.index
        assert bs.frame_hash(*frame.planes())[:3] == unit.frame_hash
    src = read_frames(cars_cut)
    from mcodec.codec.distortion import frame_psnr_yuv

    psnr = np.mean([frame_psnr_yuv(a, b) for a, b in zip(src, decoded)])
    assert abs(psnr - summary.psnr_yuv) < 1e-9


def test_quality_ladder_offers_both_scales_at_equal_slope() -> None:
    from mcodec.codec.ladder import LEVEL_SHIFT_2X

    lad = EncoderTuning().quality_ladder(4)
    assert LEVEL_SHIFT_2X == 2 == EncoderTuning().level_shift_2x
    assert lad == (((1, 0),), ((1, 1),), ((1, 2), (2, 0)), ((1, 3), (2, 1)), ((2, 2),), ((2, 3),))
    lad = EncoderTuning().quality_ladder(8)
    assert len(lad) == 10 and lad[5] == ((1, 5), (2, 3)) and lad[9] == ((2, 7),)


def test_scale_bias_moves_the_gop_crossover(nets) -> None:
    """EncoderTuning.scale_j_bias scales the 1x side of the key-frame J test: a huge bias sends the GOP
    to 2x from the first value offering both scales, zero keeps it at 1x, and the
    crossover never rises as the bias grows."""
    frame = synthetic_frames(64, 48, 1, seed=3)[0]
    ladder = EncoderTuning().quality_ladder(nets.levels)
    first_both = min(i for i, c in enumerate(ladder) if len(c) == 2)
    found = []
    for bias in (0.0, 1.0, 1.15, 1e12):
        found.append(codec._scale_crossover(nets, frame, replace(EncoderTuning(), scale_j_bias=bias)))
    assert found[0] == len(ladder) and found[-1] == first_both
    assert found == sorted(found, reverse=True)


def test_2x_levels_code_at_twice_the_size_and_decode_exactly(nets, bundle, tmp_path) -> None:
    import dataclasses

    only_2x = EncoderTuning(coding_scales=(2,))              # the tiny networks: force 2x
    frames = synthetic_frames(33, 17, 3)                     # odd size
    src = write_clip(tmp_path / "in.y4m", frames)
    out = tmp_path / "2x.bin"
    q = 3                                                    # (1, 3) or (2, 1)
    ladder = {2: 1}
    summary = codec.encode(str(src), str(out), options=EncodeOptions(quality=q, gop=2, tuning=only_2x),
                           networks=nets)
    stream = bs.read_bitstream(str(out))
    assert stream.header.coding.flags & bs.CODING_FLAG_SCALE2
    assert [f.flags & bs.FRAME_FLAG_SCALE2 for f in stream.frames] == [bs.FRAME_FLAG_SCALE2] * 3
    assert [f.quality for f in stream.frames][1] == ladder[2]
    dec = tmp_path / "dec.y4m"
    assert decode_in_child(bundle, out, dec) == 3
    back = read_frames(dec)
    assert [(f.width, f.height) for f in back] == [(33, 17)] * 3
    from mcodec.codec.distortion import frame_psnr_yuv

    assert abs(np.mean([frame_psnr_yuv(a, b) for a, b in zip(frames, back)]) - summary.psnr_yuv) < 1e-9
    # 1x levels set neither flag.
    codec.encode(str(src), str(tmp_path / "1x.bin"), options=EncodeOptions(quality=0, gop=2),
                 networks=nets)
    one = bs.read_bitstream(str(tmp_path / "1x.bin"))
    assert not one.header.coding.flags & bs.CODING_FLAG_SCALE2
    assert not any(f.flags & bs.FRAME_FLAG_SCALE2 for f in one.frames)
    # The decoder checks the scale syntax before decoding anything.
    key, pred = stream.frames[0], stream.frames[1]
    with pytest.raises(BitstreamError, match="does not allow"):
        FrameDecoder(nets, 33, 17, scale2=False, loopfilter=True).decode(key)
    dec2 = FrameDecoder(nets, 33, 17, scale2=True, loopfilter=True)
    with pytest.raises(BitstreamError, match="unknown frame flags 0x81"):
        dec2.decode(dataclasses.replace(key, flags=0x81))
    dec2.decode(key)
    with pytest.raises(BitstreamError, match="different coding layers"):
        dec2.decode(dataclasses.replace(pred, flags=pred.flags & ~bs.FRAME_FLAG_SCALE2))


@pytest.mark.parametrize("structure", ["lowdelay", "randomaccess"])
def test_fine_layer_codes_at_native_size_on_an_8x8_grid_and_decodes_exactly(fine_bundle, nets, tmp_path,
                                                                              structure) -> None:
    """A model with fine networks codes its upper layer with them at native size: the header
    says CODING_FLAG_FINE (not SCALE2), upper-layer frames carry the layer bit, their mask maps
    and latents are on the 8x8 grid, and a fresh process decodes them hash-verified."""
    import dataclasses

    from mcodec.codec.distortion import frame_psnr_yuv
    from mcodec.codec.syntax import FINE_PATCH, FrameSyntax

    fine_nets = networks_from_file(str(fine_bundle), model_id="tiny-fine")
    assert fine_nets.fine is not None and fine_nets.fine.intra.config.latent_stride == 8
    assert fine_nets.decoders().fine is not None and fine_nets.fine.tensor_stride == 4
    upper = EncoderTuning(coding_scales=(2,), scene_cut_psnr=0)   # the tiny networks: force the upper layer
    frames = synthetic_frames(40, 24, 5)                     # 40x24: 3x2 patches of 16, 5x3 of 8
    src = write_clip(tmp_path / "in.y4m", frames)
    out = tmp_path / "fine.bin"
    summary = codec.encode(str(src), str(out), options=EncodeOptions(
        quality=3, gop=5, tuning=upper, structure=structure, mask="off"), networks=fine_nets)
    stream = bs.read_bitstream(str(out))
    flags = stream.header.coding.flags
    assert flags & bs.CODING_FLAG_FINE and not flags & bs.CODING_FLAG_SCALE2
    assert all(f.flags & bs.FRAME_FLAG_SCALE2 for f in stream.frames)
    # value 3 -> fine level 1: key frames + key_quality_offset 2, the others 1 or the cascade's 0
    assert {f.quality for f in stream.frames if f.frame_type == bs.FRAME_KEY} == {3}
    assert {f.quality for f in stream.frames if f.frame_type != bs.FRAME_KEY} <= {0, 1}
    dec = FrameDecoder.for_stream(fine_nets.decoders(), stream.header, stream.format_version)
    geo = dec.geometry(1, fine=True)
    assert geo.patch == FINE_PATCH and geo.latent_shape == (3, 5)
    inter = [u for u in stream.frames if u.frame_type in (bs.FRAME_INTER, bs.FRAME_BI_INTER)]
    assert inter
    for unit in stream.frames:
        dec.decode(unit)                                              # hash-checked in process
        if unit in inter:
            syntax = FrameSyntax.from_segments(unit, fine_nets.fine.inter.strings_per_frame(True),
                                               stream.format_version, geo, (1, 1), None) \
                if unit.frame_type == bs.FRAME_INTER else None
            if syntax is not None:
                assert syntax.mask.shape == (3, 5)
    back_path = tmp_path / "dec.y4m"
    assert decode_in_child(fine_bundle, out, back_path) == 5
    back = read_frames(back_path)
    assert abs(np.mean([frame_psnr_yuv(a, b) for a, b in zip(frames, back)]) - summary.psnr_yuv) < 1e-9
    # A decoder without fine networks refuses the layer before decoding anything.
    with pytest.raises(BitstreamError, match="fine networks"):
        FrameDecoder.for_stream(nets.decoders(), stream.header, stream.format_version)
    # An upper-layer frame predicted from a picture of the other layer is refused.
    dec2 = FrameDecoder.for_stream(fine_nets.decoders(), stream.header, stream.format_version)
    key, pred = stream.frames[0], stream.frames[1]
    dec2.decode(key)
    with pytest.raises(BitstreamError, match="different coding layers"):
        dec2.decode(dataclasses.replace(pred, flags=pred.flags & ~bs.FRAME_FLAG_SCALE2))


@pytest.mark.parametrize("size,count,gop", [((33, 17), 3, 2), ((16, 16), 1, 32), ((50, 30), 4, 1)])
def test_odd_sizes_single_frames_and_gop_edges(nets, tmp_path, size, count, gop) -> None:
    frames = synthetic_frames(size[0], size[1], count)
    src = write_clip(tmp_path / "in.y4m", frames)
    out = tmp_path / "o.bin"
    summary = codec.encode(str(src), str(out), options=EncodeOptions(quality=1, gop=gop),
                           networks=nets)
    assert summary.frames == count
    dec = tmp_path / "d.y4m"
    codec.decode(str(out), str(dec), networks=nets)
    back = read_frames(dec)
    assert len(back) == count and (back[0].width, back[0].height) == size
    keys = [f.frame_type == bs.FRAME_KEY for f in bs.read_bitstream(str(out)).frames]
    assert keys == [i % gop == 0 for i in range(count)]


def test_mask_modes(nets, cars_cut, tmp_path) -> None:
    # The tiny random networks predict so badly that coding frames as key frames
    # (scene cuts) can win; this test is about the masks of predicted frames.
    no_cuts = EncoderTuning(scene_cut_psnr=0.0)
    sizes = {}
    for mode in ("off", 0.5, 1.0):
        out = tmp_path / f"m{mode}.bin"
        s = codec.encode(str(cars_cut), str(out), options=EncodeOptions(quality=2, gop=6, mask=mode,
                                                                               tuning=no_cuts),
                         networks=nets)
        codec.decode(str(out), str(tmp_path / f"m{mode}.y4m"), networks=nets)
        sizes[mode] = s.bytes
        types = [f.frame_type for f in bs.read_bitstream(str(out)).frames]
        if mode == 1.0:  # random access: the anchor is rebuilt, the frames between bi-rebuilt
            assert set(types[1:]) <= {bs.FRAME_REBUILT, bs.FRAME_BI_REBUILT} and s.masked_fraction == 1.0
        if mode == "off":
            assert s.masked_fraction == 0.0
    assert sizes[1.0] < sizes[0.5] < sizes["off"]


def test_wrong_model_and_damage_are_clean_errors(nets, bundle, cars_cut, tmp_path) -> None:
    out = tmp_path / "c.bin"
    codec.encode(str(cars_cut), str(out), options=EncodeOptions(quality=1, gop=3, frames=3),
                 networks=nets)
    other = networks_from_file(str(tiny_bundle(tmp_path / "other.safetensors", seed=1)),
                                     model_id="other")
    with pytest.raises(ModelError, match="tiny"):
        codec.decode(str(out), str(tmp_path / "x.y4m"), networks=other)
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x10
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(BitstreamError):
        codec.decode(str(bad), str(tmp_path / "y.y4m"), networks=nets)
    assert not (tmp_path / "y.y4m").exists()  # no partial output


def test_bad_options_are_user_errors(nets, cars_cut, tmp_path) -> None:
    for kwargs in ({"gop": 0}, {"mask": "sometimes"}, {"mask": 1.5}, {"bitrate": -1.0}):
        with pytest.raises(McodecError):
            codec.encode(str(cars_cut), str(tmp_path / "o.bin"),
                         options=EncodeOptions(**kwargs), networks=nets)
    with pytest.raises(McodecError, match="quality"):
        codec.encode(str(cars_cut), str(tmp_path / "o.bin"),
                     options=EncodeOptions(quality=9), networks=nets)
    assert not (tmp_path / "o.bin").exists()


# ----------------------------------------------------------------------------- shipped model


@pytest.fixture(scope="module")
def shipped() -> CodecNetworks:
    return load_networks()


def test_obmc_flag_selects_the_decoders_motion_compensation(shipped, cars_cut, tmp_path) -> None:
    """Streams say whether they use OBMC; the decoder follows the header, and
    streams without it (the version-1 tools) stay decodable."""
    streams = {}
    for obmc in (True, False):
        # (no loop filter: this test is about the OBMC flag alone)
        tuning = EncoderTuning(obmc=obmc, loop_filter=False)
        out = tmp_path / f"obmc{int(obmc)}.bin"
        codec.encode(str(cars_cut), str(out), options=EncodeOptions(quality=1, gop=6, mask="off", tuning=tuning),
                     networks=shipped)
        streams[obmc] = bs.read_bitstream(str(out))
        assert streams[obmc].header.coding.flags == (bs.CODING_FLAG_OBMC if obmc else 0)
        assert streams[obmc].min_reader_version == 5           # version-5 units
    # The decoder has no encoder settings at all: it follows each stream's header.
    for obmc, stream in streams.items():
        dec = tmp_path / f"d{int(obmc)}.y4m"
        codec.decode(str(tmp_path / f"obmc{int(obmc)}.bin"), str(dec), networks=shipped)  # hashes verified
        assert len(read_frames(dec)) == 6
    # The two tools give different predicted frames (cars moves), so the flag matters:
    # decoding the OBMC stream with plain compensation fails its frame hashes.
    assert [f.frame_hash for f in streams[True].frames[1:]] != [f.frame_hash for f in streams[False].frames[1:]]
    plain = FrameDecoder(shipped, stream.header.width, stream.header.height, obmc=False)
    with pytest.raises(BitstreamError, match="hash mismatch"):
        for unit in streams[True].frames:
            plain.decode(unit)


def test_loop_filter_frames_decode_exactly_and_are_checked(shipped, cars_cut, tmp_path) -> None:
    import dataclasses

    streams = {}
    for on in (True, False):
        out = tmp_path / f"lf{int(on)}.bin"
        codec.encode(str(cars_cut), str(out), options=EncodeOptions(quality=3, gop=6, tuning=EncoderTuning(loop_filter=on)),
                     networks=shipped)
        streams[on] = bs.read_bitstream(str(out))
        assert bool(streams[on].header.coding.flags & bs.CODING_FLAG_LOOPFILTER) == on
        assert streams[on].min_reader_version == 5
        codec.decode(str(out), str(tmp_path / f"d{int(on)}.y4m"), networks=shipped)  # hashes verified
    filtered = [f for f in streams[True].frames if f.flags & bs.FRAME_FLAG_FILTER]
    assert filtered and not any(f.flags & bs.FRAME_FLAG_FILTER for f in streams[False].frames)
    # The decoder checks the syntax: the header must allow the filter, the segment must be
    # there, and the filter must be applied (without it the frame hash fails).
    h = streams[True].header
    key = streams[True].frames[0]
    assert key.flags & bs.FRAME_FLAG_FILTER  # cars: the key frame's filter pays
    layers = {"scale2": bool(h.coding.flags & bs.CODING_FLAG_SCALE2),   # the default model's
              "fine": bool(h.coding.flags & bs.CODING_FLAG_FINE)}       # upper layer, whichever
    with pytest.raises(BitstreamError, match="loop filter in a stream whose header does not allow it"):
        FrameDecoder(shipped, h.width, h.height, obmc=True, **layers).decode(key)
    dec = FrameDecoder(shipped, h.width, h.height, obmc=True, loopfilter=True, **layers)
    # Version 4: a filtered key frame is (side information = its filter, latents).
    assert len(key.segments) == 2
    with pytest.raises(BitstreamError, match="1 segments, expected 2 for its frame type and its loop filter"):
        dec.decode(dataclasses.replace(key, segments=key.segments[1:]))
    with pytest.raises(BitstreamError, match="hash mismatch"):
        dec.decode(dataclasses.replace(key, flags=key.flags & ~bs.FRAME_FLAG_FILTER,
                                       segments=key.segments[1:]))
    with pytest.raises(BitstreamError):
        dec.decode(dataclasses.replace(key, segments=(b"\xff" * 9, *key.segments[1:])))
    dec.decode(key)


@pytest.fixture(scope="module")
def cut_clip(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 frames 320x240 with a scene cut at frame 4: cars, then a crop of city."""
    from mcodec.codec.frame import Frame

    with open_video(str(clips_dir / "cars_320x240.mkv"), max_frames=4) as r:
        frames = list(r)
    with open_video(str(clips_dir / "city_704x576.mkv"), max_frames=4) as r:
        frames += [Frame(f.y[100:340, 200:520].copy(), f.u[50:170, 100:260].copy(),
                         f.v[50:170, 100:260].copy()) for f in r]
    return write_clip(tmp_path_factory.mktemp("cut") / "cut.y4m", frames)


@pytest.mark.parametrize("mask,structure", [("auto", "lowdelay"), ("off", "lowdelay"),
                                            ("auto", "randomaccess")])
def test_scene_cut_is_coded_as_a_key_frame(shipped, cut_clip, tmp_path, mask, structure) -> None:
    # Low delay: the frame encoder's J test; random access: the GOP is split at the cut.
    out = tmp_path / "cut.bin"
    opts = EncodeOptions(quality=1, gop=32, mask=mask, structure=structure)
    s = codec.encode(str(cut_clip), str(out), options=opts, networks=shipped)
    stream = bs.read_bitstream(str(out))
    assert [f.frame_type == bs.FRAME_KEY for f in stream.frames] == [i in (0, 4) for i in range(8)]
    assert s.scene_cuts == 1 and "1 scene cut(s)" in s.line()
    assert stream.frames[4].quality == stream.frames[0].quality  # a new GOP's key-frame level
    assert [i for i, _ in stream.index.entries] == [0, 4]       # and a random-access point
    dec = tmp_path / "cut.y4m"
    codec.decode(str(out), str(dec), networks=shipped)           # hash-verified
    assert len(read_frames(dec)) == 8
    # Without the test the cut frame is predicted from cars: over 1 dB worse (worth
    # well over 20 % rate) at about the same size.
    s0 = codec.encode(str(cut_clip), str(tmp_path / "nocut.bin"),
                      options=replace(opts, tuning=EncoderTuning(scene_cut_psnr=0.0)), networks=shipped)
    assert s0.scene_cuts == 0
    # (Random access: without the cut the new scene is bi-predicted across it, cheaply and
    # badly: measured +3.4 dB for +20 % bytes with the cut; since the exact-bits motion
    # decisions made the uncut stream cheaper, +3.5 dB for +31 %, still far better than
    # the ~15-20 % a dB costs on the RD curve.)
    limit = 1.1 if structure == "lowdelay" else 1.4
    assert s.psnr_yuv > s0.psnr_yuv + 1.0 and s.bytes < limit * s0.bytes, (s.line(), s0.line())


@pytest.fixture(scope="module")
def cars12(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with open_video(str(clips_dir / "cars_320x240.mkv"), max_frames=12) as r:
        frames = list(r)
    return write_clip(tmp_path_factory.mktemp("clip") / "cars12.y4m", frames, Fraction(30))


def test_shipped_model_quality_levels_are_monotonic_in_rate(shipped, cars12, tmp_path) -> None:
    sizes, psnrs = [], []
    for q in range(len(EncoderTuning().quality_ladder(shipped.levels))):  # 1x levels, then 2x
        s = codec.encode(str(cars12), str(tmp_path / f"q{q}.bin"),
                         options=EncodeOptions(quality=q, gop=32, frames=4), networks=shipped)
        sizes.append(s.bytes)
        psnrs.append(s.psnr_yuv)
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes
    assert psnrs[-1] > psnrs[0], psnrs


def test_bitrate_lands_within_ten_percent(shipped, cars12, tmp_path) -> None:
    # A target between two levels, over 3 GOPs (per-GOP quality choice).
    rates = []
    for q in (2, 4):
        s = codec.encode(str(cars12), str(tmp_path / f"r{q}.bin"),
                         options=EncodeOptions(quality=q, gop=4), networks=shipped)
        rates.append(s.kbps)
    target = (rates[0] * rates[1]) ** 0.5
    out = tmp_path / "br.bin"
    s = codec.encode(str(cars12), str(out), options=EncodeOptions(bitrate=target, gop=4),
                     networks=shipped)
    real_kbps = out.stat().st_size * 8 / 1000 / (12 / 30)
    assert abs(real_kbps - target) <= 0.10 * target, (real_kbps, target, s.qualities)
    assert bs.read_bitstream(str(out)).header.coding.quality == bs.QUALITY_PER_FRAME
