"""The bench end to end (quick mode), its cache, outputs and input errors."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcodec.codec.frame import Frame
from mcodec.codec.options import EncoderTuning
from mcodec.errors import McodecError, VideoIOError
from mcodec.eval import anchors, bench
from mcodec.eval.bench import (QUICK_CODECS, QUICK_FRAMES, QUICK_POINTS, BenchConfig, BenchError,
                               run_bench, select_points)
from mcodec.eval.codecs import Encoded
from mcodec.eval.results import PointResult

from .conftest import synthetic_frames, write_clip

# The columns of results.csv and the keys of a point in results.json (a file format:
# changing them is a decision, not a side effect of a new field).
CSV_COLUMNS = ["clip", "codec", "config", "point_label", "point", "frames", "width", "height", "fps",
               "bytes", "file_bytes", "kbps", "bpp", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv",
               "psnr_y_mse", "psnr_u_mse", "psnr_v_mse", "psnr_yuv_mse", "msssim_y", "vmaf",
               "encode_s", "decode_s", "metrics_s", "encoder_version", "cached", "command"]
JSON_POINT_KEYS = {"clip", "codec", "config", "point_label", "point", "frames", "width", "height",
                   "fps", "bytes", "file_bytes", "kbps", "bpp", "encode_s", "decode_s", "metrics_s",
                   "encoder_version", "stream_format", "cached", "cache_key", "commands", "metrics"}


def test_quick_run_writes_everything_and_the_cache_skips_encoding(tmp_path, monkeypatch):
    out = tmp_path / "out"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # to check it is cleaned up
    res = run_bench(BenchConfig(quick=True, out=str(out), quiet=True))
    n = len(QUICK_CODECS) * QUICK_POINTS
    assert (res.encoded, res.cached, len(res.points)) == (n, 0, n)
    assert res.frames == QUICK_FRAMES and res.clips[0].frames == QUICK_FRAMES
    assert res.report_path == str(out / "report.md")
    for name in ("results.json", "results.csv", "report.md", "rd_average.png",
                 f"rd_{res.clips[0].name}.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    data = json.loads((out / "results.json").read_text())
    assert len(data["points"]) == n and data["machine"]["cpu_count"]
    p = data["points"][0]
    assert set(p) == JSON_POINT_KEYS
    assert len(p["metrics"]["frame_psnr_yuv"]) == QUICK_FRAMES
    assert {c["name"] for c in data["codecs"]} == set(QUICK_CODECS)
    assert all(c["encoder_version"] for c in data["codecs"])
    matrix = data["bd_rate"]["psnr_yuv_pchip_mean_of_clips"]
    assert len(matrix) == len(QUICK_CODECS) ** 2
    assert all(abs(c["bd_rate_percent"]) < 1e-9 for c in matrix if c["anchor"] == c["test"])
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n and float(rows[0]["psnr_yuv"]) > 20
    assert list(rows[0]) == CSV_COLUMNS
    # results.json, results.csv and the cache hold the same point (one serialisation).
    for point, row, jp in zip(res.points, rows, data["points"]):
        assert PointResult.from_dict(jp).row() == pytest.approx(point.row(), nan_ok=True)
        assert row["command"] == " && ".join(jp["commands"]) and float(row["kbps"]) == jp["kbps"]
        entry = json.loads((out / "cache" / f"{point.cache_key}.json").read_text())
        assert entry["result"]["cache_key"] == point.cache_key
        assert (out / "cache" / entry["stream_file"]).is_file()
    md = (out / "report.md").read_text()
    assert "BD-rate matrix" in md and "6·PSNR-Y" in md and "elementary stream" in md
    # The bench's own temporaries are gone (torch may leave its inductor cache folder).
    leftovers = [p for p in scratch.iterdir() if not p.name.startswith("torchinductor")]
    assert list((out / "cache").glob("*.json")) and not leftovers

    # Second run: everything from the cache, no encoder is called.
    def no_encode(*a, **k):
        raise AssertionError("encode called on a cached point")

    from mcodec.eval.learned import McodecBenchCodec

    monkeypatch.setattr(anchors.FFmpegAnchor, "encode", no_encode)
    monkeypatch.setattr(McodecBenchCodec, "encode", no_encode)
    again = run_bench(BenchConfig(quick=True, out=str(out), quiet=True))
    assert (again.encoded, again.cached) == (0, n)
    assert [p.bytes for p in again.points] == [p.bytes for p in res.points]
    assert [p.metrics.psnr_yuv for p in again.points] == [p.metrics.psnr_yuv for p in res.points]


def test_quick_on_a_real_clip_and_vmaf_reuses_cached_streams(tmp_path, monkeypatch, dev_clip):
    clip = dev_clip("ciscovt2people_320x192.mkv")
    out = tmp_path / "o"
    cfg = BenchConfig(clips=(str(clip),), codecs=("x264",), quick=True, out=str(out), quiet=True)
    first = run_bench(cfg)
    assert first.encoded == QUICK_POINTS and first.clips[0].name == "ciscovt2people_320x192"
    assert (first.clips[0].width, first.clips[0].height) == (320, 192)
    kbps = [p.kbps for p in first.points]
    assert kbps == sorted(kbps, reverse=True)  # CRF rises, rate falls
    monkeypatch.setattr(anchors.FFmpegAnchor, "encode",
                        lambda *a, **k: pytest.fail("re-encoded for --vmaf"))
    second = run_bench(BenchConfig(clips=(str(clip),), codecs=("x264",), quick=True,
                                   out=str(out), quiet=True, vmaf=True))
    assert second.encoded == 0 and all(0 <= p.metrics.vmaf <= 100 for p in second.points)
    # A changed setting (gop) is a different cache key: coded again.
    monkeypatch.undo()
    third = run_bench(BenchConfig(clips=(str(clip),), codecs=("x264",), quick=True, gop=4,
                                  out=str(out), quiet=True))
    assert third.encoded == QUICK_POINTS


class DroppingCodec:
    """A fake codec (the Codec interface, as mcodec's adapter will be) that loses a frame."""

    name, config, point_label = "dropper", "lowdelay", "q"
    points = (1.0, 2.0, 3.0, 4.0)
    stream_format, description, cache_token = "raw frames", "test codec", "v1"

    def encode(self, src: Path, gop: int, point: float, workdir: Path) -> Encoded:
        out = Path(workdir) / "s.bin"
        out.write_bytes(Path(src).read_bytes())
        return Encoded(out, out.stat().st_size, out.stat().st_size, ("copy",), "1.0", 0.0)

    def decode(self, bitstream: Path, width: int, height: int) -> Iterator[Frame]:
        from mcodec.codec.video_io import open_video

        with open_video(str(bitstream)) as r:
            frames = list(r)
        yield from frames[:-1]


def test_a_wrong_decoded_frame_count_is_an_error(tmp_path, monkeypatch):
    table = bench.codec_factories()
    table["dropper"] = lambda config, threads: DroppingCodec()
    monkeypatch.setattr(bench, "codec_factories", lambda: table)
    with pytest.raises(VideoIOError, match="decoded 7 frames, the source has 8"):
        run_bench(BenchConfig(codecs=("dropper",), quick=True, out=str(tmp_path), quiet=True))


@pytest.mark.parametrize("kwargs, match", [
    (dict(clips=("/nonexistent/clip.mkv",)), "clip not found"),
    (dict(codecs=("x264", "h267")), "unknown codec 'h267'.*available: mcodec, mcodec-nomask, x264"),
    (dict(config="allintra"), "unknown configuration"),
    (dict(frames=0), "--frames"),
    (dict(gop=-1), "--gop"),
    (dict(codecs=()), "no codecs"),
])
def test_bad_requests_raise_bench_errors(tmp_path, kwargs, match):
    with pytest.raises(BenchError, match=match) as info:
        run_bench(BenchConfig(out=str(tmp_path / "o"), quiet=True, quick=True, **kwargs))
    assert isinstance(info.value, McodecError)


def test_no_clips_without_quick_and_empty_folder(tmp_path):
    with pytest.raises(BenchError, match="no clips"):
        run_bench(BenchConfig(out=str(tmp_path / "o"), quiet=True))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no video files"):
        run_bench(BenchConfig(clips=(str(tmp_path / "empty"),), out=str(tmp_path / "o"), quiet=True))


def test_select_points():
    assert select_points((22, 26, 30, 34, 38, 42), 4) == (22, 30, 34, 42)
    assert select_points((1, 2, 3), 4) == (1, 2, 3)
    assert select_points((1, 2, 3, 4, 5), 2) == (1, 5)


def test_points_option_spreads_points_and_validates() -> None:
    from mcodec.eval.bench import BenchConfig, BenchError, _effective

    assert BenchConfig(points=3).run_points((22, 26, 30, 34, 38, 42, 46, 51)) == (22, 38, 51)
    assert BenchConfig().run_points((1.0, 2.0)) == (1.0, 2.0)
    assert BenchConfig(quick=True).run_points(tuple(range(8))) == (0, 2, 5, 7)
    with pytest.raises(BenchError, match="--points"):
        _effective(BenchConfig(points=1))


def test_mcodec_nomask_is_a_bench_codec() -> None:
    from mcodec.eval.bench import codec_factories

    assert "mcodec-nomask" in codec_factories()


def _changed(value):
    """A different valid value of an EncoderTuning field."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 1
    if isinstance(value, tuple) and len(value) > 1:
        return value[:1]
    if isinstance(value, tuple) and value:
        return value + value
    raise AssertionError(f"no changed value for {value!r}: extend _changed for the new field type")


def test_mcodec_cache_token_follows_weights_mask_and_every_tuning_field(nets):
    """A cached mcodec point is reused only for the same weights, masking mode and tuned
    encoder constants: changing any field of EncoderTuning must re-code, not report
    stale streams."""
    from mcodec.eval.learned import McodecBenchCodec

    base = McodecBenchCodec("lowdelay", networks=nets).cache_token
    assert McodecBenchCodec("lowdelay", networks=nets, tuning=EncoderTuning()).cache_token == base
    assert nets.digest.hex() in base
    assert McodecBenchCodec("lowdelay", networks=nets, mask="off").cache_token != base
    default = EncoderTuning()
    tokens = {base}
    for f in dataclasses.fields(EncoderTuning):
        tuning = dataclasses.replace(default, **{f.name: _changed(getattr(default, f.name))})
        token = McodecBenchCodec("lowdelay", networks=nets, tuning=tuning).cache_token
        assert token not in tokens, f"changing EncoderTuning.{f.name} keeps the cache token"
        tokens.add(token)


def test_mcodec_bench_codec_codes_with_its_tuning(nets, tmp_path):
    """The tuning given to the bench codec is the one the encoder uses (seen in the
    stream's header flags), and its points follow the tuning's quality ladder."""
    from mcodec.codec import bitstream as bs
    from mcodec.eval.learned import McodecBenchCodec

    src = write_clip(tmp_path / "s.y4m", synthetic_frames(32, 32, 2, seed=1))
    flags = {}
    for loop_filter in (True, False):
        mc = McodecBenchCodec("lowdelay", networks=nets,
                              tuning=EncoderTuning(loop_filter=loop_filter, coding_scales=(1,)))
        assert len(mc.points) == len(mc.tuning.quality_ladder(nets.levels))
        work = tmp_path / str(loop_filter)
        work.mkdir()
        enc = mc.encode(src, 2, 1.0, work)
        flags[loop_filter] = bs.read_bitstream(str(enc.path)).header.coding.flags
        assert len(list(mc.decode(enc.path, 32, 32))) == 2
    assert flags[True] & bs.CODING_FLAG_LOOPFILTER and not flags[False] & bs.CODING_FLAG_LOOPFILTER


def test_point_serialisation_round_trips_and_derives_rates():
    from mcodec.eval.metrics import sequence_metrics

    frames = synthetic_frames(32, 16, 2)
    p = PointResult(clip="c", codec="x", config="lowdelay", point_label="crf", point=30.0,
                    frames=2, width=32, height=16, fps=25.0, bytes=1000, file_bytes=1010,
                    metrics=sequence_metrics(frames, frames, msssim=False), encode_s=1.5,
                    decode_s=0.5, metrics_s=0.1, encoder_version="v1", stream_format="raw",
                    cached=False, cache_key="k", commands=("a b", "c"))
    assert p.kbps == 1000 * 8 * 25.0 / 2 / 1000 and p.bpp == 1000 * 8 / (2 * 32 * 16)
    d = p.to_dict()
    assert set(d) == JSON_POINT_KEYS and d["commands"] == ["a b", "c"]
    back = PointResult.from_dict(json.loads(json.dumps(d)))
    assert json.dumps(back.to_dict()) == json.dumps(d)
    assert list(p.row()) == CSV_COLUMNS and p.row()["command"] == "a b && c"
    assert p.value("psnr_yuv") == p.metrics.psnr_yuv and p.value("kbps") == p.kbps
    assert math.isnan(p.value("vmaf"))
    with pytest.raises(KeyError):
        p.value("nope")
    with pytest.raises((KeyError, TypeError)):
        PointResult.from_dict({k: v for k, v in d.items() if k != "bytes"})
