"""Streaming video input and output as YUV 4:2:0 8-bit frames.

Reading: any file ffmpeg can read (mp4, mkv, avi, webm, y4m, ...), raw ``.yuv``
given size / frame rate / pixel format, or ``-`` for stdin. ffmpeg converts to
``yuv420p`` and hands frames over as a YUV4MPEG2 stream on a pipe, which also
carries the exact size and rational frame rate, so no ffprobe is needed. Frames
are yielded one at a time: memory does not grow with clip length.

Writing: ``.y4m`` and ``.yuv`` are written by Python (exact); ``.mkv`` is
lossless FFV1 (exact); ``.mp4`` is H.264 (lossy, CRF 18, unless
``mp4_lossless``); ``name_%05d.png`` writes a PNG sequence (RGB, so lossy in
colour conversion); ``-`` writes YUV4MPEG2 to stdout. File outputs are written
to a temporary name beside the target and renamed on success, so a failed or
interrupted write leaves nothing behind.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO


from mcodec.atomic import publish, temporary_beside
from mcodec.codec import ffmpeg as ff
from mcodec.codec.bitstream import MAX_DIM
from mcodec.codec.frame import Frame, frame_bytes
from mcodec.errors import FFmpegError, VideoIOError

_RAW_EXTENSIONS = (".yuv", ".raw")
# ffmpeg pixel formats that are already what mcodec codes (no conversion warning).
_NATIVE_PIX_FMTS = ("yuv420p",)


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video stream before its frames are read.

    Attributes:
        width, height: luma size in pixels.
        fps: frame rate in frames per second, exact.
        source_pix_fmt: the input's pixel format as ffmpeg names it (frames
            are always delivered as yuv420p).
    """

    width: int
    height: int
    fps: Fraction
    source_pix_fmt: str


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (width, height). Raises VideoIOError on bad input."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise VideoIOError(f"bad size {text!r}: expected WIDTHxHEIGHT, e.g. 416x240")
    w, h = int(m.group(1)), int(m.group(2))
    if not (1 <= w <= MAX_DIM and 1 <= h <= MAX_DIM):
        raise VideoIOError(f"size {w}x{h} out of range (1..{MAX_DIM} each)")
    return w, h


def parse_fps(text: str) -> Fraction:
    """``"25"``, ``"30000/1001"`` or ``"29.97"`` -> Fraction. Raises VideoIOError on bad input."""
    try:
        fps = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise VideoIOError(f"bad frame rate {text!r}: expected e.g. 25 or 30000/1001") from None
    if fps <= 0 or fps > 1000:
        raise VideoIOError(f"frame rate {text!r} out of range (0, 1000]")
    return fps.limit_denominator(1_000_000)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses (ffmpeg stream lines)."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def source_pix_fmt_from_log(stderr: str) -> str | None:
    """The pixel format of input #0's first video stream from ffmpeg's banner."""
    for line in stderr.splitlines():
        m = re.search(r"Stream #0:\d+.*?: Video: (.*)", line)
        if m:
            fields = _split_top_level(m.group(1))
            if len(fields) > 1:
                return fields[1].split("(")[0].strip() or None
    return None


def _explain_read_failure(path: str, exc: FFmpegError) -> str:
    """One line for a file ffmpeg opened but could not give frames of, from its log."""
    log = exc.stderr or ""
    opened = "Input #0" in log
    if opened and "Video:" not in log:
        kinds = sorted({k for k in ("Audio", "Subtitle", "Data") if f"{k}:" in log})
        only = f" (it has {', '.join(k.lower() for k in kinds)} only)" if kinds else ""
        return f"{path}: no video stream{only}"
    if opened and ("received no packets" in log or "Output file is empty" in log):
        return f"{path}: no video frames"
    return str(exc)


class VideoReader:
    """Iterator over the frames of one video, decoded by ffmpeg.

    Use as a context manager (or call `close`) so ffmpeg is always ended.
    `info` is available right after construction.
    """

    def __init__(self, path: str, *, size: tuple[int, int] | None = None,
                 fps: Fraction | None = None, pix_fmt: str | None = None,
                 max_frames: int | None = None,
                 warn: Callable[[str], None] | None = None,
                 stdin: BinaryIO | None = None) -> None:
        self.path = path
        self.max_frames = max_frames
        raw = path != "-" and path.lower().endswith(_RAW_EXTENSIONS) or size is not None
        if path != "-":
            if not os.path.exists(path):
                raise VideoIOError(f"input not found: {path}")
            if os.path.isdir(path):
                raise VideoIOError(f"input is a directory: {path}")
        args = ff.base_args(loglevel="info")
        if raw:
            if size is None:
                raise VideoIOError(f"raw input {path}: give its size (--size WxH)")
            args += ["-f", "rawvideo", "-pix_fmt", pix_fmt or "yuv420p",
                     "-video_size", f"{size[0]}x{size[1]}",
                     "-framerate", str(fps or Fraction(25))]
        args += ff.SAFE_INPUT + ["-i", ff.input_url(path), "-map", "0:v:0", "-an", "-sn", "-dn",
                                 "-fps_mode", "passthrough",  # never duplicate or drop frames
                                 "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-strict", "-1"]
        if max_frames is not None:
            args += ["-frames:v", str(int(max_frames))]
        args.append("pipe:1")
        self._proc = ff.FFmpegProcess(
            args, stdin=(stdin if stdin is not None else sys.stdin.buffer) if path == "-" else None,
            stdout=subprocess.PIPE)
        self._out = self._proc.stdout
        self._count = 0
        try:
            self.info = self._read_header(fps if not raw else None)
        except BaseException:
            self.close()
            raise
        fmt = self.info.source_pix_fmt
        if fmt not in _NATIVE_PIX_FMTS and warn is not None:
            warn(f"converting {path} from {fmt} to yuv420p")

    def _read_header(self, fps_override: Fraction | None) -> VideoInfo:
        line = self._readline(256)
        if not line:
            try:
                self._proc.wait(f"cannot read {self.path}", timeout=30)
            except FFmpegError as exc:
                raise VideoIOError(_explain_read_failure(self.path, exc)) from None
            raise VideoIOError(f"{self.path}: no video frames")
        if not line.startswith(b"YUV4MPEG2 "):
            raise VideoIOError(f"{self.path}: unexpected decoder output")
        tokens = line.decode("ascii", "replace").split()[1:]
        width = height = 0
        fps = Fraction(25)
        for tok in tokens:
            key, val = tok[0], tok[1:]
            if key == "W":
                width = int(val)
            elif key == "H":
                height = int(val)
            elif key == "F":
                num, den = val.split(":")
                fps = Fraction(int(num), int(den)) if int(den) and int(num) else fps
            elif key == "C" and not val.startswith("420"):
                raise VideoIOError(f"{self.path}: decoder produced C{val}, expected 4:2:0")
        if not (1 <= width <= MAX_DIM and 1 <= height <= MAX_DIM):
            raise VideoIOError(f"{self.path}: size {width}x{height} unsupported (1..{MAX_DIM})")
        # The banner naming the input's pixel format was written before any
        # output byte, so it is in the pipe already; wait for the drain thread.
        log = self._proc.wait_for_stderr(lambda s: "Video:" in s, timeout=5)
        src = source_pix_fmt_from_log(log) or "unknown"
        self._frame_size = frame_bytes(width, height)
        return VideoInfo(width, height, fps_override or fps, src)

    def _readline(self, limit: int) -> bytes:
        assert self._out is not None
        buf = bytearray()
        while len(buf) < limit:
            ch = self._out.read(1)
            if not ch:
                break
            buf += ch
            if ch == b"\n":
                break
        return bytes(buf)

    def _read_exact(self, n: int) -> bytes:
        assert self._out is not None
        return ff.read_exact(self._out, n)

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._out is None or self._out.closed:
            raise StopIteration
        marker = self._readline(4096)
        if not marker:
            self._finish()
            raise StopIteration
        if not marker.startswith(b"FRAME"):
            self.close()
            raise VideoIOError(f"{self.path}: corrupt decoder output at frame {self._count}")
        data = self._read_exact(self._frame_size)
        if len(data) != self._frame_size:
            self._finish()
            raise VideoIOError(f"{self.path}: frame {self._count} truncated")
        self._count += 1
        return Frame.frombuffer(data, self.info.width, self.info.height)

    def _finish(self) -> None:
        try:
            self._proc.wait(f"decoding {self.path} failed", timeout=60)
        except FFmpegError as exc:
            raise VideoIOError(str(exc)) from None
        finally:
            self.close()

    @property
    def frames_read(self) -> int:
        return self._count

    def close(self) -> None:
        """End ffmpeg (safe to call twice)."""
        self._proc.kill()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_video(path: str, *, size: tuple[int, int] | str | None = None,
               fps: Fraction | str | float | None = None, pix_fmt: str | None = None,
               max_frames: int | None = None,
               warn: Callable[[str], None] | None = None) -> VideoReader:
    """Open `path` (or ``-`` for stdin) for streaming YUV 4:2:0 frames.

    Args:
        size: required for raw ``.yuv`` input: (width, height) or ``"WxH"``.
        fps: frame rate of raw input (default 25), or an override for others.
        pix_fmt: ffmpeg pixel format of raw input (default yuv420p).
        max_frames: stop after this many frames.
        warn: called with a one-line message when the input is converted.

    Raises:
        VideoIOError: the input does not exist or cannot be decoded.
        FFmpegNotFoundError: no ffmpeg.
    """
    if isinstance(size, str):
        size = parse_size(size)
    if fps is not None and not isinstance(fps, Fraction):
        fps = parse_fps(str(fps))
    return VideoReader(path, size=size, fps=fps, pix_fmt=pix_fmt, max_frames=max_frames, warn=warn)


# ----------------------------------------------------------------------------- writing


def y4m_header(width: int, height: int, fps: Fraction) -> bytes:
    """YUV4MPEG2 stream header for 8-bit 4:2:0 (limited range, as mcodec codes it)."""
    return (f"YUV4MPEG2 W{width} H{height} F{fps.numerator}:{fps.denominator} Ip A1:1 "
            "C420jpeg XCOLORRANGE=LIMITED\n").encode("ascii")


def output_kind(path: str) -> str:
    """Which writer serves `path`: y4m, yuv, mkv, mp4 or png. Raises VideoIOError otherwise."""
    if path == "-":
        return "y4m"
    lower = path.lower()
    for ext, kind in ((".y4m", "y4m"), (".yuv", "yuv"), (".mkv", "mkv"), (".mp4", "mp4"),
                      (".png", "png")):
        if lower.endswith(ext):
            if kind == "png" and not re.search(r"%0?\d*d", os.path.basename(path)):
                raise VideoIOError(f"PNG output needs a frame-number pattern, e.g. out_%05d.png: {path}")
            return kind
    raise VideoIOError(f"unsupported output type: {path} (use .y4m, .yuv, .mkv, .mp4, "
                       "a %05d.png pattern, or - for stdout)")


def _png_targets(pattern: str) -> list[str]:
    """Existing files that a PNG pattern would overwrite (frame numbers start at 1)."""
    glob_pat = re.sub(r"%0?\d*d", "*", glob.escape(pattern))
    return sorted(glob.glob(glob_pat))


class VideoWriter:
    """Writes yuv420p frames to one output, atomically.

    Frames go to a temporary file (or folder, for PNG) beside the target;
    `close()` finishes and renames it into place, `abort()` removes it. As a
    context manager it closes on success and aborts on any exception.
    """

    def __init__(self, path: str, width: int, height: int, fps: Fraction, *,
                 overwrite: bool = False, mp4_lossless: bool = False,
                 stdout: BinaryIO | None = None) -> None:
        self.path, self.width, self.height, self.fps = path, width, height, fps
        self.kind = output_kind(path)
        self.frames_written = 0
        self._proc: ff.FFmpegProcess | None = None
        self._tmp: str | None = None
        self._file: BinaryIO | None = None
        if path == "-":
            self._file = stdout if stdout is not None else sys.stdout.buffer
            self._file.write(y4m_header(width, height, fps))
            return
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise VideoIOError(f"output folder does not exist: {parent}")
        existing = _png_targets(path) if self.kind == "png" else (
            [path] if os.path.lexists(path) else [])
        if existing and not overwrite:
            raise VideoIOError(f"output exists: {existing[0]} (use -y to overwrite)")
        if self.kind == "mp4" and (width % 2 or height % 2):
            raise VideoIOError(f"{path}: H.264 in mp4 needs even width and height, got "
                               f"{width}x{height}; write .mkv or .y4m instead")
        self._tmp = temporary_beside(path, directory=self.kind == "png")
        try:
            if self.kind in ("y4m", "yuv"):
                self._file = open(self._tmp, "wb")
                if self.kind == "y4m":
                    self._file.write(y4m_header(width, height, fps))
            else:
                self._proc = ff.FFmpegProcess(self._encoder_args(mp4_lossless), stdin=subprocess.PIPE)
        except BaseException:
            self.abort()
            raise

    def _encoder_args(self, mp4_lossless: bool) -> list[str]:
        assert self._tmp is not None
        # -y: the temporary name was created empty by mkstemp (ours to replace).
        args = ff.base_args() + ["-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                                 "-video_size", f"{self.width}x{self.height}",
                                 "-framerate", f"{self.fps.numerator}/{self.fps.denominator}",
                                 "-i", "pipe:0"]
        if self.kind == "mkv":
            args += ["-c:v", "ffv1", "-level", "3", "-g", "1", "-f", "matroska",
                     ff.output_url(self._tmp)]
        elif self.kind == "mp4":
            quality = ["-qp", "0"] if mp4_lossless else ["-crf", "18"]
            args += ["-c:v", "libx264", "-preset", "medium", *quality, "-pix_fmt", "yuv420p",
                     "-f", "mp4", ff.output_url(self._tmp)]
        else:  # png sequence, numbered from 1 like ffmpeg's image2 muxer
            args += ["-f", "image2", "-c:v", "png",
                     ff.output_url(os.path.join(self._tmp, os.path.basename(self.path)))]
        return args

    def write(self, frame: Frame) -> None:
        """Append one frame (must match the writer's size)."""
        if (frame.width, frame.height) != (self.width, self.height):
            raise ValueError(f"frame {frame.width}x{frame.height} does not match writer "
                             f"{self.width}x{self.height}")
        data = frame.tobytes()
        if self._proc is not None:
            assert self._proc.stdin is not None
            try:
                ff.write_all(self._proc.stdin, data)
            except (BrokenPipeError, OSError):
                raise VideoIOError(str(self._proc.error(f"writing {self.path} failed"))) from None
        else:
            assert self._file is not None
            if self.kind == "y4m":
                self._file.write(b"FRAME\n")
            self._file.write(data)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the output and move it into place."""
        try:
            if self._proc is not None:
                try:
                    self._proc.wait(f"writing {self.path} failed", timeout=600)
                except FFmpegError as exc:
                    raise VideoIOError(str(exc)) from None
            if self._file is not None:
                self._file.flush()
                if self.path != "-":
                    os.fsync(self._file.fileno())
                    self._file.close()
            if self._tmp is not None:
                if self.kind == "png":
                    for name in sorted(os.listdir(self._tmp)):
                        publish(os.path.join(self._tmp, name),
                                os.path.join(os.path.dirname(os.path.abspath(self.path)), name))
                    os.rmdir(self._tmp)
                else:
                    publish(self._tmp, self.path)
                self._tmp = None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop and remove the partial output (safe to call twice)."""
        if self._proc is not None:
            self._proc.kill()
        if self._file is not None and self.path != "-":
            self._file.close()
        if self._tmp is not None:
            if os.path.isdir(self._tmp):
                for name in os.listdir(self._tmp):
                    os.unlink(os.path.join(self._tmp, name))
                os.rmdir(self._tmp)
            elif os.path.exists(self._tmp):
                os.unlink(self._tmp)
            self._tmp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_writer(path: str, width: int, height: int, fps: Fraction, *, overwrite: bool = False,
                mp4_lossless: bool = False) -> VideoWriter:
    """Open `path` (or ``-``) for writing yuv420p frames; see VideoWriter."""
    return VideoWriter(path, width, height, fps, overwrite=overwrite, mp4_lossless=mp4_lossless)
