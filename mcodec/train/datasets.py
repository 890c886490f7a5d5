"""Streaming training samples from folder trees of videos and stills (`ClipDataset`).

A sample is K consecutive frames of one source, the same random crop (crop x crop
luma, crop/2 x crop/2 chroma, even offsets) in each, optionally mirrored (the same
for all K), packed per frame in the networks' space-to-depth layout
(`data.planes_to_s2d`): a (K, 6, crop/2, crop/2) uint8 array.

Sources (`SourceSpec`), mixed by weight:

* ``video``: a video file or a folder tree of them (mp4, mkv, avi, webm, mov,
  y4m, ..., and raw H.264 / HEVC streams ``.264 .h264 .265 .hevc``, which have
  no timestamps). ffmpeg decodes; every pixel format is converted to yuv420p.
* ``images``: a folder tree of stills (jpg, jpeg, png, bmp, tif, tiff, webp),
  K = 1 only (for the intra network). Large photos (short side > `data.BIG_PHOTO`)
  are downscaled by an integer factor 2-4 (Lanczos, as `data.load_photo`) so that
  their JPEG artefacts are not what the model learns; RGB -> YUV is
  `data.rgb_to_yuv420` (ffmpeg's BT.601 limited range, like the evaluation clips).
* ``synthetic``: stills seen by a moving camera: K views of one photo along one
  random smooth trajectory (`synth.sample_camera_motion` for the start and end
  velocity of a pan with zoom, rotation and brightness drift; `synth.render_view`).

Determinism: item i is a pure function of (seed, i). Its generator is
``np.random.default_rng([seed, i])``; it draws the source (probability
proportional to weight), the file (uniform within the source), then everything
else. Nothing depends on the process, the worker or the order of fetching, so
a sampler that hands out indices (the trainer's `step_indices`) makes training
resumable and DDP-shardable.

Streaming: the constructor only lists the files (``os.walk``, sorted; names and
folders starting with ``.`` are ignored; files are not opened). The path list is
packed into two numpy arrays (one byte buffer and its offsets) rather than a
Python list, so forked DataLoader workers do not copy it page by page through
reference counting. Frame counts and sizes are probed lazily, on first use in
each process, and kept in a bounded per-process cache.

Video decoding: the probe is one ``ffmpeg -c copy -f null -`` pass (no decoding:
fast, also on raw .264 streams whose frame count no container states): the frame
count is the last ``frame=`` of its stderr, the size comes from the input's stream
line. A sample decodes only frames 0 .. start+K-1: ``trim=start_frame=S`` and
``crop=`` run inside ffmpeg (with ``-fps_mode passthrough``, ``-noautorotate``,
one decoding thread: the DataLoader's workers are the parallelism), so only the
K crops cross the pipe. Decoding runs from the file's first frame (raw streams have
no timestamps to seek by), so a sample's cost grows with its start frame: long
videos are best cut into short clips, as Vimeo-90k is (measured on the 300-frame
720p flower stream: 0.06 s at frame 0, 1.0 s at frame 298).

Bad files. A file is *bad* when its probe says so: ffmpeg or PIL cannot read it,
it has no frames, its frames are smaller than the crop (no upscaling: upscaled
video would teach the model blur), or it has fewer than K frames. A bad file is
reported once per process through `warn` and never retried, and the item draws
another file of the same source from its own generator (so the result is still
a pure function of (seed, i): whether a file is bad depends on the file only).
A failure that may depend on the draw (a video that fails to decode, or gives
fewer frames than its probe counted, at one start frame) is reported once too and
the item draws again, but the file is not blacklisted, since blacklisting it would
make later items depend on what was fetched before. After `MAX_DRAWS` failed
draws every file of the source is tried in a random order; when none gives a
sample, ValueError names the source.

Warnings go to `warn` (a callable taking one line); the default prints
``mcodec: warning: <message>`` to stderr, as the command line does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from mcodec.codec import ffmpeg as ff
from mcodec.errors import FFmpegError, FFmpegNotFoundError
from mcodec.train.config import SourceSpec
from mcodec.train.data import (BIG_PHOTO, PHOTO_EXT, check_training_path, default_data_root,
                               planes_to_s2d, rgb_to_yuv420)

VIDEO_EXT = (".mp4", ".m4v", ".mkv", ".avi", ".webm", ".mov", ".y4m", ".mpg", ".mpeg", ".ts",
             ".m2ts", ".mts", ".flv", ".ivf", ".ogv", ".wmv", ".3gp",
             ".264", ".h264", ".265", ".h265", ".hevc")
IMAGE_EXT = tuple(PHOTO_EXT) + (".webp",)
VIRTUAL_LENGTH = 2 ** 40
# Random draws of a file before every file of the source is tried in turn.
MAX_DRAWS = 16
# Entries of the per-process probe cache (a FIFO: evicting only costs a new probe).
META_CACHE = 1 << 17
# How a synthetic view is reduced from its 2x render, and how often (as synth's pairs).
_SAMPLINGS = (("lanczos", "box", "nearest"), (0.5, 0.25, 0.25))


def _warn_stderr(message: str) -> None:
    print(f"mcodec: warning: {message}", file=sys.stderr, flush=True)


class _Paths:
    """An immutable list of paths packed into two numpy arrays (fork-friendly)."""

    def __init__(self, paths: Sequence[str]) -> None:
        encoded = [os.fsencode(p) for p in paths]
        self._offsets = np.cumsum([0] + [len(b) for b in encoded], dtype=np.int64)
        self._blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        a, b = int(self._offsets[i]), int(self._offsets[i + 1])
        return os.fsdecode(self._blob[a:b].tobytes())


def _resolve(path: str) -> Path:
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else default_data_root() / p


def _list_files(root: Path, exts: tuple[str, ...]) -> list[str]:
    """Files under `root` (or `root` itself) ending in `exts`, sorted, hidden ones left out;
    a file whose path (or link target) lies in evaluation data is refused."""
    if root.is_file():
        return [str(root)]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(exts):
                continue
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                check_training_path(full)        # resolves the link
            out.append(full)
    return out


class _Source:
    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        root = _resolve(spec.path)
        if not root.exists():
            raise ValueError(f"{spec.kind} source {spec.path!r}: {root} does not exist")
        check_training_path(str(root))
        self.root = str(root)
        exts = VIDEO_EXT if spec.kind == "video" else IMAGE_EXT
        files = _list_files(root, exts)
        if not files:
            raise ValueError(f"{spec.kind} source {spec.path!r}: no {spec.kind} files "
                             f"({', '.join(exts)}) under {root}")
        self.paths = _Paths(files)

    def describe(self) -> str:
        return f"{self.spec.kind} source {self.spec.path!r} ({self.root})"


class _DrawFailed(Exception):
    """This draw gave no sample (the file may give one at another draw)."""


class ClipDataset(torch.utils.data.Dataset):
    """Map-style, deterministic by index: item i is a pure function of (seed, i).

    Args:
        sources: the sources, mixed by weight.
        frames: K >= 1 consecutive frames per sample ("images" sources need K = 1).
        crop: luma crop side, a positive multiple of 16.
        seed: with the index, determines every sample.
        flip: mirror half of the samples horizontally (the flip is drawn either way,
            so flip=False gives the same crops unmirrored).
        warn: gets one line per bad file (default: ``mcodec: warning: ...`` on stderr).

    Raises:
        ValueError: no source, a bad argument, a source path that does not exist or
            holds no matching file, evaluation data (`data.check_training_path`), an
            "images" source with frames > 1.
    """

    def __init__(self, sources: Sequence[SourceSpec], *, frames: int, crop: int, seed: int,
                 flip: bool = True, warn: Callable[[str], None] | None = None) -> None:
        if not sources:
            raise ValueError("ClipDataset needs at least one source")
        if int(frames) != frames or frames < 1:
            raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
        if int(crop) != crop or crop < 16 or crop % 16:
            raise ValueError(f"crop must be a positive multiple of 16, got {crop!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        for s in sources:
            if s.kind == "images" and frames > 1:
                raise ValueError(f"images source {s.path!r} gives single frames (for the intra "
                                 f"network); frames={frames} needs 'video' or 'synthetic' sources")
        self.frames, self.crop, self.seed, self.flip = int(frames), int(crop), int(seed), bool(flip)
        self.warn = warn if warn is not None else _warn_stderr
        self.sources = [_Source(s) for s in sources]
        w = np.array([s.weight for s in sources], dtype=np.float64)
        self._cum = np.cumsum(w / w.sum())
        # Per-process state (never changes a result): probe results and bad files.
        self._meta: dict[str, tuple[int, ...]] = {}
        self._bad: set[str] = set()
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return VIRTUAL_LENGTH

    def files(self, source: int) -> list[str]:
        """The listed files of source `source` (for reports and tests)."""
        paths = self.sources[source].paths
        return [paths[i] for i in range(len(paths))]

    # ------------------------------------------------------------------------- items

    def draw_source(self, index: int) -> int:
        """Which source item `index` comes from (its generator's first draw)."""
        return self._pick_source(np.random.default_rng([self.seed, int(index)]))

    def _pick_source(self, rng: np.random.Generator) -> int:
        return min(int(np.searchsorted(self._cum, rng.random(), side="right")),
                   len(self.sources) - 1)

    def __getitem__(self, index: int) -> np.ndarray:
        """(frames, 6, crop/2, crop/2) uint8."""
        index = int(index)
        if not 0 <= index < VIRTUAL_LENGTH:
            raise IndexError(f"index {index} out of range [0, {VIRTUAL_LENGTH})")
        rng = np.random.default_rng([self.seed, index])
        src = self.sources[self._pick_source(rng)]
        n = len(src.paths)
        for _ in range(MAX_DRAWS):
            out = self._try(src, src.paths[int(rng.integers(n))], rng)
            if out is not None:
                return out
        for j in rng.permutation(n):             # every file once, in a random order
            out = self._try(src, src.paths[int(j)], rng)
            if out is not None:
                return out
        raise ValueError(f"{src.describe()}: none of its {n} files gives a {self.frames}-frame "
                         f"{self.crop}x{self.crop} sample (every file is unreadable, too small "
                         f"or too short; see the warnings)")

    def _try(self, src: _Source, path: str, rng: np.random.Generator) -> np.ndarray | None:
        if path in self._bad:
            return None
        kind = src.spec.kind
        try:
            meta = self._probe(kind, path)
        except _DrawFailed as exc:
            self._bad.add(path)
            self._note(path, f"skipping {path}: {exc}")
            return None
        try:
            if kind == "video":
                planes = self._video_sample(path, meta, rng)
            elif kind == "images":
                planes = self._image_sample(path, meta, rng)
            else:
                planes = self._synthetic_sample(path, meta, rng)
        except _DrawFailed as exc:
            self._note(path, f"{path}: {exc}")
            return None
        mirror = rng.random() < 0.5 and self.flip
        out = np.empty((self.frames, 6, self.crop // 2, self.crop // 2), dtype=np.uint8)
        for k, (y, u, v) in enumerate(planes):
            if mirror:
                y, u, v = y[:, ::-1], u[:, ::-1], v[:, ::-1]
            out[k] = planes_to_s2d(y, u, v)
        return out

    def _note(self, path: str, message: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            self.warn(message)

    # ------------------------------------------------------------------------- probes

    def _probe(self, kind: str, path: str) -> tuple[int, ...]:
        """(frames, width, height) of a video, (width, height) of a still; cached.
        Raises _DrawFailed (the file is bad) with the reason."""
        meta = self._meta.get(path)
        if meta is None:
            meta = probe_video(path) if kind == "video" else _probe_image(path)
            if len(self._meta) >= META_CACHE:
                self._meta.pop(next(iter(self._meta)))
            self._meta[path] = meta
        c, k = self.crop, self.frames
        w, h = meta[-2], meta[-1]
        if kind == "video":
            if meta[0] < 1:
                raise _DrawFailed("no video frames")
            if meta[0] < k:
                raise _DrawFailed(f"{meta[0]} frames, fewer than the {k} a sample needs")
        if min(w, h) < c + (_STILL_MARGIN if kind == "synthetic" else 0):
            raise _DrawFailed(f"{w}x{h} is too small for {c}x{c} crops")
        return meta

    # ------------------------------------------------------------------------- video

    def _video_sample(self, path: str, meta: tuple[int, ...], rng: np.random.Generator):
        count, w, h = meta
        c, k = self.crop, self.frames
        start = int(rng.integers(0, count - k + 1))
        top = 2 * int(rng.integers(0, (h - c) // 2 + 1))
        left = 2 * int(rng.integers(0, (w - c) // 2 + 1))
        try:
            data = decode_crops(path, start, k, c, left, top)
        except FFmpegError as exc:
            raise _DrawFailed(f"decoding frames {start}..{start + k - 1} failed: {exc}") from None
        fb = c * c * 3 // 2
        if len(data) < k * fb:
            raise _DrawFailed(f"only {len(data) // fb} frames from frame {start} "
                              f"(the probe counted {count}); drawing again")
        buf = np.frombuffer(data, dtype=np.uint8)
        frames = []
        for i in range(k):
            f = buf[i * fb:(i + 1) * fb]
            frames.append((f[:c * c].reshape(c, c), f[c * c:c * c * 5 // 4].reshape(c // 2, c // 2),
                           f[c * c * 5 // 4:].reshape(c // 2, c // 2)))
        return frames

    # ------------------------------------------------------------------------- stills

    def _image_sample(self, path: str, meta: tuple[int, ...], rng: np.random.Generator):
        from PIL import Image

        w, h = meta
        c = self.crop
        if min(w, h) > BIG_PHOTO:
            factors = [f for f in (2, 3, 4) if min(w, h) // f >= c] or [1]
        else:
            factors = [1]
        f = factors[int(rng.integers(len(factors)))]
        top = 2 * int(rng.integers(0, (h // f - c) // 2 + 1))
        left = 2 * int(rng.integers(0, (w // f - c) // 2 + 1))
        box = (left * f, top * f, (left + c) * f, (top + c) * f)
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                region = im.crop(box) if f == 1 else im.resize((c, c), Image.Resampling.LANCZOS,
                                                                box=box)
                rgb = np.asarray(region)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            self._bad.add(path)   # a property of the file: every draw would fail alike
            raise _DrawFailed(f"cannot decode ({exc}); skipping it") from None
        return [rgb_to_yuv420(np.ascontiguousarray(rgb))]

    def _synthetic_sample(self, path: str, meta: tuple[int, ...], rng: np.random.Generator):
        from PIL import Image

        from mcodec.train.synth import PhotoSource, render_view, sample_camera_motion

        w, h = meta
        c, k = self.crop, self.frames
        # A smooth trajectory: the per-frame motion goes linearly from v0 to v1.
        v0, v1 = sample_camera_motion(rng), sample_camera_motion(rng)
        pos, zoom, rot, gain = [np.zeros(2)], [1.0], [0.0], [1.0]
        for step in range(k - 1):
            a = step / max(k - 2, 1)
            pos.append(pos[-1] + (1 - a) * np.array(v0.shift) + a * np.array(v1.shift))
            zoom.append(zoom[-1] * ((1 - a) * v0.zoom + a * v1.zoom))
            rot.append(rot[-1] + (1 - a) * v0.rot_deg + a * v1.rot_deg)
            gain.append(gain[-1] * ((1 - a) * v0.gain + a * v1.gain))
        p = np.array(pos) - np.min(pos, axis=0)               # target px, min 0 per axis
        sampling = str(rng.choice(_SAMPLINGS[0], p=_SAMPLINGS[1]))
        fr = PhotoSource(path, w, h, min(w, h) > BIG_PHOTO).factor_range(c + _STILL_MARGIN)
        if fr is None:                                         # (the probe checked this)
            raise _DrawFailed(f"{w}x{h} is too small for {c}x{c} crops")
        f = float(rng.uniform(*fr))
        dims = np.array([w, h], dtype=np.float64) / f          # the photo in target px

        def need(t: float) -> float:   # side of the square any view at motion scale t reads
            return 2 * max(_view_half(c, z ** t, r * t) for z, r in zip(zoom, rot)) + 2

        # The largest share of the motion that fits (a small photo gets a calmer camera;
        # at t = 0 every view is the same crop, which the factor range guarantees fits).
        t = next(t for t in (1.0, 0.5, 0.25, 0.125, 0.0)
                 if np.all(need(t) + t * p.max(axis=0) <= dims))
        half = f * need(t) / 2                                  # source px
        p, zoom, rot = p * t, [z ** t for z in zoom], [r * t for r in rot]
        hi = np.array([w, h]) - half - f * p.max(axis=0)
        centre = (float(rng.uniform(half, max(half, hi[0]))),
                  float(rng.uniform(half, max(half, hi[1]))))
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
            views = [render_view(img, (centre[0] + f * p[i, 0], centre[1] + f * p[i, 1]), f,
                                 zoom[i], rot[i], c, sampling).astype(np.float32) * gain[i]
                     for i in range(k)]
        except (OSError, Image.DecompressionBombError) as exc:
            self._bad.add(path)
            raise _DrawFailed(f"cannot decode ({exc}); skipping it") from None
        except ValueError as exc:
            raise _DrawFailed(f"camera motion left the picture ({exc})") from None
        rgb = np.clip(np.rint(np.concatenate(views, axis=1)), 0, 255).astype(np.uint8)
        # Side by side: swscale's chroma filter does not cross an even column boundary,
        # so each view converts exactly as alone (see synth._rgb_pair_to_yuv).
        y, u, v = rgb_to_yuv420(rgb)
        h2 = c // 2
        return [(y[:, i * c:(i + 1) * c], u[:, i * h2:(i + 1) * h2], v[:, i * h2:(i + 1) * h2])
                for i in range(k)]


def _view_half(size: int, zoom: float, rot_deg: float) -> float:
    """Half-side (target px) of the square `synth.render_view` reads for a view of `size`
    px at `zoom` and `rot_deg`: the rotated footprint, the kernels' 4 px and rounding."""
    th = np.deg2rad(rot_deg)
    return size / 2 * zoom * (abs(np.cos(th)) + abs(np.sin(th))) + 5.0


# Pixels a still needs beyond the crop for a synthetic clip (2 `_view_half` kernel
# margins + 2): its camera motion shrinks until it fits.
_STILL_MARGIN = 12


# ----------------------------------------------------------------------------- ffmpeg


_FRAME_RE = re.compile(r"frame=\s*(\d+)")
_STREAM_RE = re.compile(r"Stream #0:\d+.*?: Video: (.*)")
_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")


def _stream_size(stderr: str) -> tuple[int, int] | None:
    """(width, height) of input #0's first video stream from ffmpeg's banner."""
    for line in stderr.splitlines():
        m = _STREAM_RE.search(line)
        if m:
            desc = m.group(1)
            while True:                          # drop (...) groups: "(avc1 / 0x31637661)"
                stripped = re.sub(r"\([^()]*\)", "", desc)
                if stripped == desc:
                    break
                desc = stripped
            for field in desc.split(","):
                s = _SIZE_RE.match(field.strip())
                if s:
                    return int(s.group(1)), int(s.group(2))
            return None
    return None


def probe_video(path: str) -> tuple[int, int, int]:
    """(frame count, width, height) of the first video stream of `path`.

    One ffmpeg stream copy to the null muxer (no decoding): the count is the last
    ``frame=`` of its statistics, which also holds for raw H.264 / HEVC streams.

    Raises:
        _DrawFailed: ffmpeg cannot read it or finds no video stream (the reason in words).
    """
    args = ff.base_args(loglevel="info") + ["-stats"] + ff.SAFE_INPUT + [
        "-i", ff.input_url(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    try:
        log = ff.run_ffmpeg(args, f"reading {path}", timeout=600)
    except FFmpegNotFoundError:
        raise
    except FFmpegError as exc:
        raise _DrawFailed(f"unreadable ({exc})") from None
    size = _stream_size(log)
    if size is None:
        raise _DrawFailed("no video stream")
    counts = _FRAME_RE.findall(log)
    return (int(counts[-1]) if counts else 0), size[0], size[1]


def decode_crops(path: str, start: int, frames: int, crop: int, left: int, top: int) -> bytes:
    """Frames start .. start+frames-1 of `path`, each cut to crop x crop at (left, top),
    as raw yuv420p bytes (fewer when the file ends early). Raises FFmpegError."""
    vf = f"trim=start_frame={start},crop={crop}:{crop}:{left}:{top}"
    args = ff.base_args() + ["-threads", "1", "-noautorotate"] + ff.SAFE_INPUT + [
        "-i", ff.input_url(path), "-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough",
        "-filter_threads", "1", "-vf", vf, "-frames:v", str(frames),
        "-pix_fmt", "yuv420p", "-f", "rawvideo", "pipe:1"]
    want = frames * crop * crop * 3 // 2
    with ff.FFmpegProcess(args, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        data = ff.read_exact(proc.stdout, want)
        proc.wait(f"decoding {path}", timeout=600)
    return data


def _probe_image(path: str) -> tuple[int, int]:
    """(width, height) of a still from its header. Raises _DrawFailed."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise _DrawFailed(f"cannot open it as an image ({exc})") from None


# ----------------------------------------------------------------------------- loading


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one torch thread per worker (ffmpeg decodes, and
    the workers are the parallelism). Changes no sample."""
    torch.set_num_threads(1)
