"""The rate-distortion bench: code clips with every codec, score, report.

``run_bench(BenchConfig(...))`` is what ``mcodec bench`` runs. For each clip it
cuts the first ``frames`` frames once into an 8-bit 4:2:0 y4m file (hashing
them), then for each codec and rate point: encodes that file, decodes the
stream, checks the frame count, and scores the decoded frames against the cut
with :mod:`mcodec.eval.metrics` -- the same path for every codec. Results are
cached in ``<out>/cache/`` (see :func:`cache_key`), so a rerun only codes what
changed. Outputs are written by :mod:`mcodec.eval.report`.

Codecs are looked up by name in :func:`codec_factories`: the anchors of
:data:`mcodec.eval.anchors.ANCHORS`, plus mcodec itself (:mod:`mcodec.eval.learned`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from mcodec.codec import ffmpeg as ff
from mcodec.codec.video_io import Frame, open_video, open_writer
from mcodec.errors import McodecError, VideoIOError
from mcodec.eval import anchors, report
from mcodec.eval.anchors import Codec, Encoded
from mcodec.eval.metrics import SequenceMetrics, sequence_metrics, vmaf_per_frame

# Codecs of a full run when --codecs is not given, and of --quick. When
DEFAULT_CODECS = ("mcodec", "x264", "x265", "svtav1", "aom", "vvenc")
QUICK_CODECS = ("mcodec", "x264")
QUICK_FRAMES = 8
QUICK_POINTS = 4
QUICK_SIZE = (256, 192)  # synthetic clip of --quick without clips (MS-SSIM needs > 160)
VIDEO_EXTENSIONS = (".mkv", ".y4m", ".mp4", ".avi", ".webm", ".mov", ".ts", ".m4v")
CACHE_VERSION = 1

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


@dataclass(frozen=True)
class BenchConfig:
    """Settings of one bench run; fields mirror ``mcodec bench`` flags.

    Attributes:
        clips: clip files and/or folders (every video file directly inside).
            May be empty only with ``quick`` (a synthetic clip is used).
        codecs: codec names (``--codecs a,b``); None = DEFAULT_CODECS, or
            QUICK_CODECS with ``quick``.
        frames: frames per clip (``--frames``; fewer if the clip is shorter).
        gop: key-frame interval in frames (``--gop``).
        config: ``"lowdelay"`` or ``"randomaccess"`` (``--config``).
        out: output folder (``--out``); created if needed.
        quick: tiny run (``--quick``): QUICK_FRAMES frames, QUICK_POINTS
            points per codec, QUICK_CODECS unless codecs is given.
        vmaf: also compute VMAF (``--vmaf``).
        quiet: no progress bar on stderr.
        threads: encoder threads (x264/x265 output depends on it; cache key).
        use_cache: reuse results from ``<out>/cache``.
        points: at most this many rate points per codec (``--points``), spread
            evenly over its full list, ends included; None = all (QUICK_POINTS
            with ``quick``).
    """

    clips: tuple[str, ...] = ()
    codecs: tuple[str, ...] | None = None
    frames: int = 32
    gop: int = 32
    config: str = "lowdelay"
    out: str = "bench_out"
    quick: bool = False
    vmaf: bool = False
    quiet: bool = False
    threads: int = 2
    use_cache: bool = True
    points: int | None = None

    def run_points(self, points: tuple[float, ...]) -> tuple[float, ...]:
        """The rate points of a codec this run codes (see `points`)."""
        n = self.points if self.points is not None else (QUICK_POINTS if self.quick else None)
        return tuple(points) if n is None else select_points(tuple(points), n)


@dataclass(frozen=True)
class ClipInfo:
    """A source clip as used: the first `frames` frames, 8-bit 4:2:0.

    ``fps`` is frames per second (float; ``fps_text`` exact as num/den);
    ``sha256`` hashes the size and the raw frames actually coded.
    """

    name: str
    path: str
    width: int
    height: int
    fps: float
    fps_text: str
    frames: int
    sha256: str


@dataclass(frozen=True)
class CodecInfo:
    """A codec as run: name, configuration in words, points, versions."""

    name: str
    config: str
    description: str
    point_label: str
    points: tuple[float, ...]
    stream_format: str
    encoder_version: str


@dataclass(frozen=True, eq=False)
class PointResult:
    """One (clip, codec, rate point) result.

    Units: bytes counted for the rate (``bytes``; ``file_bytes`` on disk),
    ``kbps`` = bytes * 8 * fps / frames / 1000, ``bpp`` = bytes * 8 /
    (frames * width * height); times in seconds (decode time includes writing
    the decoded frames to a y4m); metrics as in :class:`SequenceMetrics`.
    """

    clip: str
    codec: str
    config: str
    point_label: str
    point: float
    frames: int
    width: int
    height: int
    fps: float
    bytes: int
    file_bytes: int
    kbps: float
    bpp: float
    metrics: SequenceMetrics
    encode_s: float
    decode_s: float
    metrics_s: float
    commands: tuple[str, ...]
    encoder_version: str
    stream_format: str
    cached: bool
    cache_key: str

    def row(self) -> dict[str, Any]:
        """Flat scalar dict (one CSV row)."""
        d = {k: getattr(self, k) for k in ("clip", "codec", "config", "point_label", "point",
                                            "frames", "width", "height", "fps", "bytes",
                                            "file_bytes", "kbps", "bpp")}
        d.update({k: v for k, v in self.metrics.summary().items()
                  if k not in ("frames", "width", "height")})
        d.update(encode_s=self.encode_s, decode_s=self.decode_s, metrics_s=self.metrics_s,
                 encoder_version=self.encoder_version, cached=self.cached,
                 command=" && ".join(self.commands))
        return d

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with per-frame metrics."""
        d = {k: getattr(self, k) for k in ("clip", "codec", "config", "point_label", "point",
                                            "frames", "width", "height", "fps", "bytes",
                                            "file_bytes", "kbps", "bpp", "encode_s", "decode_s",
                                            "metrics_s", "encoder_version", "stream_format",
                                            "cached", "cache_key")}
        d["commands"] = list(self.commands)
        d["metrics"] = self.metrics.to_dict()
        return d


@dataclass(frozen=True, eq=False)
class BenchResult:
    """Everything one run measured, plus where the outputs went.

    ``encoded`` counts points coded in this run, ``cached`` points taken from
    the cache; ``files`` maps output kinds (``json``, ``csv``, ``markdown``,
    ``plot:<clip>``, ``plot:average``) to paths.
    """

    config: BenchConfig
    frames: int
    clips: tuple[ClipInfo, ...]
    codecs: tuple[CodecInfo, ...]
    points: tuple[PointResult, ...]
    ffmpeg_path: str
    ffmpeg_version: str
    machine: Mapping[str, Any]
    started: str
    seconds: float
    encoded: int
    cached: int
    out_dir: str
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def report_path(self) -> str:
        """Path of report.md (empty before the reports are written)."""
        return self.files.get("markdown", "")


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


def select_points(points: tuple[float, ...], n: int) -> tuple[float, ...]:
    """`n` points spread evenly over `points` (ends included), order kept."""
    if n >= len(points):
        return tuple(points)
    idx = np.unique(np.round(np.linspace(0, len(points) - 1, n)).astype(int))
    return tuple(points[i] for i in idx)


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


def _load_cache(cache_dir: Path, key: str) -> dict[str, Any] | None:
    p = cache_dir / f"{key}.json"
    try:
        with open(p, encoding="utf-8") as fh:
            entry = json.load(fh)
        SequenceMetrics.from_dict(entry["metrics"])  # validates the shape of the entry
        return entry
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged entry is recomputed


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
    entry = _load_cache(cache_dir, key) if cache_dir is not None else None
    if entry is not None and (not vmaf or entry["metrics"].get("vmaf") is not None):
        return _result_from_entry(entry, cached=True), False

    bitstream: Path | None = None
    decoded = work / "decoded.y4m"
    encoded_now = False
    try:
        if entry is not None and cache_dir is not None and (cache_dir / entry["stream_file"]).is_file():
            # Only the metrics are missing (e.g. --vmaf added): decode the cached stream.
            bitstream = cache_dir / entry["stream_file"]
            enc = Encoded(bitstream, int(entry["bytes"]), int(entry["file_bytes"]),
                          tuple(entry["commands"]), entry["encoder_version"], float(entry["encode_s"]))
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
        stream_file = f"{key}{bitstream.suffix}"
        entry = {
            "clip": clip.name, "codec": codec.name, "config": codec.config,
            "point_label": codec.point_label, "point": float(point), "frames": clip.frames,
            "width": clip.width, "height": clip.height, "fps": clip.fps,
            "bytes": enc.bytes, "file_bytes": enc.file_bytes,
            "encode_s": enc.seconds, "decode_s": decode_s, "metrics_s": metrics_s,
            "commands": list(enc.commands), "encoder_version": enc.encoder_version,
            "stream_format": codec.stream_format, "stream_file": stream_file,
            "cache_key": key, "metrics": metrics.to_dict(),
        }
        if cache_dir is not None:
            if encoded_now:
                shutil.copyfile(bitstream, cache_dir / stream_file)
            report.atomic_write(cache_dir / f"{key}.json", json.dumps(entry))
        return _result_from_entry(entry, cached=False), encoded_now
    finally:
        for p in (decoded, bitstream if encoded_now else None):
            if p is not None and p.exists():
                p.unlink()


def _result_from_entry(entry: dict[str, Any], cached: bool) -> PointResult:
    frames, w, h, fps = int(entry["frames"]), int(entry["width"]), int(entry["height"]), float(entry["fps"])
    nbytes = int(entry["bytes"])
    return PointResult(
        clip=entry["clip"], codec=entry["codec"], config=entry["config"],
        point_label=entry["point_label"], point=float(entry["point"]), frames=frames,
        width=w, height=h, fps=fps, bytes=nbytes, file_bytes=int(entry["file_bytes"]),
        kbps=nbytes * 8 * fps / frames / 1000.0, bpp=nbytes * 8 / (frames * w * h),
        metrics=SequenceMetrics.from_dict(entry["metrics"]),
        encode_s=float(entry["encode_s"]), decode_s=float(entry["decode_s"]),
        metrics_s=float(entry["metrics_s"]), commands=tuple(entry["commands"]),
        encoder_version=entry["encoder_version"], stream_format=entry["stream_format"],
        cached=cached, cache_key=entry["cache_key"])


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


def config_dict(config: BenchConfig) -> dict[str, Any]:
    """BenchConfig as a JSON-ready dict."""
    d = asdict(config)
    d["clips"] = list(config.clips)
    d["codecs"] = None if config.codecs is None else list(config.codecs)
    return d

