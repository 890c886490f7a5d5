"""The rate-distortion bench: code clips with every codec, score, report.

``run_bench(BenchConfig(...))`` is what ``mcodec bench`` runs. For each clip it
cuts the first ``frames`` frames once into an 8-bit 4:2:0 y4m file (hashing
them), then for each codec and rate point: encodes that file, decodes the
stream, checks the frame count, and scores the decoded frames against the cut
with :mod:`mcodec.eval.metrics` -- the same path for every codec. Results
(:mod:`mcodec.eval.results`) are cached in ``<out>/cache/`` (see :func:`cache_key`;
an entry is the point's ``to_dict()``), so a rerun only codes what changed.
Outputs are written by :mod:`mcodec.eval.report`.

Codecs are looked up by name in :func:`codec_factories`: the anchors of
:data:`mcodec.eval.anchors.ANCHORS`, plus mcodec itself (:mod:`mcodec.eval.learned`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from mcodec.atomic import atomic_path, atomic_write
from mcodec.codec import ffmpeg as ff
from mcodec.codec.frame import Frame
from mcodec.codec.video_io import open_video, open_writer
from mcodec.errors import McodecError, VideoIOError
from mcodec.eval import anchors, report
from mcodec.eval.codecs import Codec, Encoded
from mcodec.eval.metrics import sequence_metrics, vmaf_per_frame
from mcodec.eval.results import (DEFAULT_CODECS, QUICK_CODECS, QUICK_FRAMES,  # noqa: F401 - re-exported
                                 QUICK_POINTS, BenchConfig, BenchResult, ClipInfo, CodecInfo,
                                 PointResult, select_points)

QUICK_SIZE = (256, 192)  # synthetic clip of --quick without clips (MS-SSIM needs > 160)
VIDEO_EXTENSIONS = (".mkv", ".y4m", ".mp4", ".avi", ".webm", ".mov", ".ts", ".m4v")
# 2: an entry is {"result": PointResult.to_dict(), "stream_file": name}.
CACHE_VERSION = 2

CodecFactory = Callable[[str, int], Codec]
"""``factory(config, threads) -> Codec``."""


class BenchError(McodecError):
    """A bench request that cannot run: missing clip, unknown codec, bad setting."""


def codec_factories() -> dict[str, CodecFactory]:
    """Every codec the bench knows: name -> ``factory(config, threads)``.

    The anchors come from the anchor table; mcodec's adapter (the shipped model
    through the public encode/decode API) is one more entry.
    """
    from mcodec.eval.learned import McodecBenchCodec

    table: dict[str, CodecFactory] = {
        "mcodec": McodecBenchCodec,
        # the same model with masking off: measures the rate masking saves
        "mcodec-nomask": functools.partial(McodecBenchCodec, mask="off", name="mcodec-nomask"),
    }
    for name in anchors.anchor_names():
        table[name] = functools.partial(anchors.anchor_codec, name)
    return table


# --------------------------------------------------------------------- inputs


def resolve_clips(items: tuple[str, ...] | list[str]) -> list[Path]:
    """Expand clip files and folders (video files directly inside, sorted).

    Raises:
        BenchError: a path does not exist, or a folder holds no video file.
    """
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir()
                           if q.is_file() and q.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                raise BenchError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in folder {p}")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise BenchError(f"clip not found: {item}")
    return out


def _effective(config: BenchConfig) -> tuple[tuple[str, ...], int]:
    """(codec names, frames) after --quick defaults; validates settings."""
    if config.config not in anchors.CONFIGS:
        raise BenchError(f"unknown configuration {config.config!r}; use one of "
                         f"{', '.join(anchors.CONFIGS)}")
    for name, val in (("frames", config.frames), ("gop", config.gop), ("threads", config.threads)):
        if not isinstance(val, int) or val < 1:
            raise BenchError(f"--{name} must be a positive integer, got {val!r}")
    if config.points is not None and (not isinstance(config.points, int) or config.points < 2):
        raise BenchError(f"--points must be an integer >= 2, got {config.points!r}")
    names = config.codecs if config.codecs is not None else (
        QUICK_CODECS if config.quick else DEFAULT_CODECS)
    names = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise BenchError("no codecs given")
    known = codec_factories()
    for n in names:
        if n not in known:
            raise BenchError(f"unknown codec {n!r}; available: {', '.join(known)}")
    frames = min(config.frames, QUICK_FRAMES) if config.quick else config.frames
    return names, frames


def cut_clip(path: Path, frames: int, dest: Path, name: str) -> ClipInfo:
    """Write the first `frames` frames of `path` to `dest` (.y4m) and describe them.

    Raises:
        VideoIOError: the clip cannot be decoded.
    """
    digest = hashlib.sha256()
    with open_video(str(path), max_frames=frames) as reader:
        info = reader.info
        digest.update(f"{info.width}x{info.height}\n".encode())
        count = 0
        with open_writer(str(dest), info.width, info.height, info.fps, overwrite=True) as w:
            for frame in reader:
                digest.update(frame.tobytes())
                w.write(frame)
                count += 1
    if count == 0:
        raise VideoIOError(f"{path}: no frames")
    fps = Fraction(info.fps)
    return ClipInfo(name, str(path), info.width, info.height, float(fps),
                    f"{fps.numerator}/{fps.denominator}", count, digest.hexdigest())


def synthetic_frames(frames: int, width: int, height: int) -> list[Frame]:
    """A deterministic moving test pattern (smooth waves, texture, an edge) for --quick."""
    rng = np.random.default_rng(20240607)  # local generator: no global random state
    yy, xx = np.mgrid[0:2 * height, 0:2 * width].astype(np.float32)
    base = (110 + 50 * np.sin(xx / 23.0) * np.cos(yy / 17.0) + 30 * np.sin((xx + yy) / 41.0))
    texture = rng.normal(0, 12, size=base.shape).astype(np.float32)
    block = ((xx // 16 + yy // 16) % 2) * 40.0
    luma_big = base + texture * (xx > width) + block * (yy > height)
    out = []
    for t in range(frames):
        dy, dx = t, 2 * t  # slow pan
        y = np.clip(luma_big[dy:dy + height, dx:dx + width], 16, 235).astype(np.uint8)
        cy = np.clip(128 + 40 * np.sin((xx[:height:2, :width:2] + 2 * dx) / 37.0), 16, 240)
        cv = np.clip(128 + 40 * np.cos((yy[:height:2, :width:2] + 2 * dy) / 29.0), 16, 240)
        out.append(Frame(y, cy[: (height + 1) // 2, : (width + 1) // 2].astype(np.uint8),
                         cv[: (height + 1) // 2, : (width + 1) // 2].astype(np.uint8)))
    return out


def _synthetic_clip(dest: Path, frames: int) -> ClipInfo:
    w, h = QUICK_SIZE
    digest = hashlib.sha256(f"{w}x{h}\n".encode())
    with open_writer(str(dest), w, h, Fraction(25), overwrite=True) as writer:
        for f in synthetic_frames(frames, w, h):
            digest.update(f.tobytes())
            writer.write(f)
    return ClipInfo(f"synthetic_{w}x{h}", "(synthetic)", w, h, 25.0, "25/1", frames,
                    digest.hexdigest())


# --------------------------------------------------------------------- cache


def cache_key(clip: ClipInfo, codec: Codec, point: float, gop: int, ffmpeg_version: str) -> str:
    """SHA-256 naming a result: source frames, codec + its cache token, config, point,
    frame count, gop and the ffmpeg version."""
    blob = json.dumps({"v": CACHE_VERSION, "src": clip.sha256, "codec": codec.name,
                       "config": codec.config, "point": float(point), "frames": clip.frames,
                       "gop": int(gop), "ffmpeg": ffmpeg_version, "token": codec.cache_token},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _load_cache(cache_dir: Path, key: str) -> tuple[PointResult, str] | None:
    """(the cached point, its stream's file name in `cache_dir`), or None when there is
    no entry or it is damaged or of another shape (it is then recomputed)."""
    p = cache_dir / f"{key}.json"
    try:
        with open(p, encoding="utf-8") as fh:
            entry = json.load(fh)
        return replace(PointResult.from_dict(entry["result"]), cached=True), str(entry["stream_file"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------- running


def _machine_info() -> dict[str, Any]:
    from importlib import metadata  # cheap; versions for the report

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for pkg in ("mcodec", "numpy", "torch", "pytorch-msssim", "bjontegaard", "imageio-ffmpeg"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "packages": versions}


def _decode_to_file(codec: Codec, bitstream: Path, clip: ClipInfo, dest: Path) -> tuple[int, float]:
    """Decode `bitstream` into `dest` (.y4m); return (frames, seconds)."""
    t0 = time.perf_counter()
    count = 0
    frames_iter = codec.decode(bitstream, clip.width, clip.height)
    try:
        with open_writer(str(dest), clip.width, clip.height,
                         Fraction(clip.fps_text), overwrite=True) as w:
            for frame in frames_iter:
                w.write(frame)
                count += 1
    finally:
        close = getattr(frames_iter, "close", None)
        if close is not None:
            close()  # ends the decoder process if we stopped early
    return count, time.perf_counter() - t0


def _run_point(codec: Codec, clip: ClipInfo, src: Path, point: float, gop: int,
               vmaf: bool, ffmpeg_version: str, cache_dir: Path | None, work: Path,
               threads: int) -> tuple[PointResult, bool]:
    """Code, decode and score one point (or take it from the cache).

    Returns (result, encoded_now).
    """
    key = cache_key(clip, codec, point, gop, ffmpeg_version)
    hit = _load_cache(cache_dir, key) if cache_dir is not None else None
    if hit is not None and (not vmaf or math.isfinite(hit[0].metrics.vmaf)):
        return hit[0], False

    bitstream: Path | None = None
    decoded = work / "decoded.y4m"
    encoded_now = False
    try:
        if hit is not None and cache_dir is not None and (cache_dir / hit[1]).is_file():
            # Only the metrics are missing (e.g. --vmaf added): decode the cached stream.
            old = hit[0]
            bitstream = cache_dir / hit[1]
            enc = Encoded(bitstream, old.bytes, old.file_bytes, old.commands, old.encoder_version,
                          old.encode_s)
        else:
            enc = codec.encode(src, gop, point, work)
            bitstream = enc.path
            encoded_now = True
        count, decode_s = _decode_to_file(codec, bitstream, clip, decoded)
        if count != clip.frames:
            raise VideoIOError(f"{codec.name} at {codec.point_label} {point:g} on {clip.name}: "
                               f"decoded {count} frames, the source has {clip.frames}")
        t0 = time.perf_counter()
        with open_video(str(src)) as ref, open_video(str(decoded)) as dist:
            metrics = sequence_metrics(ref, dist)
        if vmaf:
            metrics = metrics.with_vmaf(vmaf_per_frame(str(src), str(decoded), threads=threads))
        metrics_s = time.perf_counter() - t0
        result = PointResult(
            clip=clip.name, codec=codec.name, config=codec.config, point_label=codec.point_label,
            point=float(point), frames=clip.frames, width=clip.width, height=clip.height,
            fps=clip.fps, bytes=enc.bytes, file_bytes=enc.file_bytes, metrics=metrics,
            encode_s=enc.seconds, decode_s=decode_s, metrics_s=metrics_s,
            encoder_version=enc.encoder_version, stream_format=codec.stream_format,
            cached=False, cache_key=key, commands=tuple(enc.commands))
        if cache_dir is not None:
            stream_file = f"{key}{bitstream.suffix}"
            if encoded_now:
                with atomic_path(cache_dir / stream_file) as tmp:
                    shutil.copyfile(bitstream, tmp)
            atomic_write(cache_dir / f"{key}.json",
                         json.dumps({"result": result.to_dict(), "stream_file": stream_file}))
        return result, encoded_now
    finally:
        for p in (decoded, bitstream if encoded_now else None):
            if p is not None and p.exists():
                p.unlink()


def _unique_names(paths: list[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        base, n = p.stem, 2
        name = base
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names.append(name)
    return names


def run_bench(config: BenchConfig) -> BenchResult:
    """Run the bench described by `config`; write the outputs into ``config.out``.

    Raises:
        BenchError: unknown codec or configuration, missing clip, bad numbers.
        VideoIOError, FFmpegError: a clip cannot be read, an encoder or decoder
            failed, or a decoded frame count differs from the source.
    """
    from tqdm import tqdm  # lazy: only runs need it

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t_start = time.perf_counter()
    names, frames = _effective(config)
    clip_paths = resolve_clips(config.clips)
    if not clip_paths and not config.quick:
        raise BenchError("no clips given (give clip files or a folder; --quick runs without)")
    factories = codec_factories()
    codecs = [factories[n](config.config, config.threads) for n in names]
    exe = ff.find_ffmpeg()
    ffver = ff.ffmpeg_version(exe)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir: Path | None = None
    if config.use_cache:
        cache_dir = out / "cache"
        cache_dir.mkdir(exist_ok=True)

    results: list[PointResult] = []
    clips: list[ClipInfo] = []
    encoded = cached = 0
    with tempfile.TemporaryDirectory(prefix="mcodec-bench-") as tmp_name:
        tmp = Path(tmp_name)
        sources: list[tuple[ClipInfo, Path]] = []
        if clip_paths:
            for i, (p, name) in enumerate(zip(clip_paths, _unique_names(clip_paths))):
                src = tmp / f"src{i}.y4m"
                sources.append((cut_clip(p, frames, src, name), src))
        else:
            src = tmp / "synthetic.y4m"
            sources.append((_synthetic_clip(src, frames), src))
        jobs = [(clip, src, codec, pt) for clip, src in sources for codec in codecs
                for pt in config.run_points(codec.points)]
        work = tmp / "work"
        work.mkdir()
        bar = tqdm(total=len(jobs), file=sys.stderr, disable=config.quiet, unit="point",
                   desc="bench")
        try:
            for clip, src, codec, pt in jobs:
                bar.set_postfix_str(f"{clip.name} {codec.name} {codec.point_label}={pt:g}")
                res, now = _run_point(codec, clip, src, pt, config.gop, config.vmaf, ffver,
                                      cache_dir, work, config.threads)
                results.append(res)
                encoded += now
                cached += res.cached
                bar.update(1)
        finally:
            bar.close()
        clips = [c for c, _ in sources]

    infos = []
    for codec in codecs:
        versions = [r.encoder_version for r in results if r.codec == codec.name and r.encoder_version]
        infos.append(CodecInfo(codec.name, codec.config, codec.description, codec.point_label,
                               config.run_points(codec.points),
                               codec.stream_format, versions[0] if versions else ""))
    result = BenchResult(config=config, frames=frames, clips=tuple(clips), codecs=tuple(infos),
                         points=tuple(results), ffmpeg_path=exe, ffmpeg_version=ffver,
                         machine=_machine_info(), started=started,
                         seconds=time.perf_counter() - t_start, encoded=encoded, cached=cached,
                         out_dir=str(out))
    files = report.write_reports(result, out)
    return replace(result, files=files)

