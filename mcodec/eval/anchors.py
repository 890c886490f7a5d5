"""Anchor codecs (x264, x265, SVT-AV1, libaom-av1, VVenC) run through ffmpeg, as
implementations of the bench's codec interface (:mod:`mcodec.eval.codecs`).

The anchors
-----------
One table, :data:`ANCHORS`, holds every fixed configuration as a frozen
:class:`AnchorSpec`: the ffmpeg arguments (with ``{gop}`` and ``{threads}``
filled in per run), the rate points and the elementary-stream format. Two
configurations per encoder:

* ``lowdelay`` (the default comparison): no frame reordering (no B-frames for
  x264/x265; VVenC codes low-delay B pictures that refer to past pictures only;
  libaom with no look-ahead and no alt-ref frames; SVT-AV1 ``pred-struct=1``),
  a key frame every ``gop`` frames, closed GOP, scene-cut detection off.
* ``randomaccess``: each encoder's normal defaults (B-frames / hierarchical
  GOPs, look-ahead, alt-refs, x265's open GOP, VVenC's CRA), with only the
  key-frame interval fixed to ``gop`` and scene cuts off.

PSNR tuning wherever the encoder has it (x264/x265 ``-tune psnr``, VVenC
``qpa`` off, libaom ``tune=psnr``, SVT-AV1 ``tune=1``).

Rate is counted on the elementary stream written by ffmpeg's raw muxers:
H.264 / H.265 / H.266 Annex B byte streams (``.264``, ``.265``, ``.266``) and
the AV1 low-overhead OBU stream (``.obu``, Section 5 of the AV1 spec: no IVF
frame headers). The one thing excluded is x264's informational SEI (its version
and option string, ~600 bytes per stream that carry no picture data and cannot
be switched off; x265's equivalent, 2.3 kB, is switched off with ``info=0``).

Presets: x264 / x265 ``medium`` (``x264-veryslow`` / ``x265-veryslow`` rows
too), SVT-AV1 preset 6, libaom ``good`` with ``cpu-used`` 4, VVenC ``medium``;
on the 2-core development machine a 32-frame 720x576 clip takes about 1 s per
rate point with x264/x265/SVT-AV1, 2-20 s with libaom and 10-100 s with VVenC
(low delay; random access is about twice as fast).

Decoding goes through ffmpeg with ``-fps_mode passthrough`` (a raw elementary
stream has no timestamps; without it ffmpeg would duplicate frames to 25 fps).
VVenC codes Main 10: its 10-bit output is decoded as ``yuv420p10le`` and
converted to 8 bits here with exact rounding, ``(x + 2) >> 2``, clipped to 255
-- ffmpeg's default 10-to-8-bit conversion dithers, which would add noise to the
score. (The encoder side is exact: ffmpeg converts the 8-bit source to 10 bits
by a left shift of 2.)
"""

from __future__ import annotations

import re
import shlex
import subprocess  # the PIPE constant only: processes run via mcodec.codec.ffmpeg
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcodec.codec import ffmpeg as ff
from mcodec.codec.frame import Frame, chroma_shape
from mcodec.errors import FFmpegError, VideoIOError
from mcodec.eval.codecs import Encoded

CONFIGS = ("lowdelay", "randomaccess")


@dataclass(frozen=True)
class AnchorSpec:
    """One fixed anchor configuration (a row of :data:`ANCHORS`).

    Attributes:
        name: codec name as used in ``--codecs``.
        config: ``"lowdelay"`` or ``"randomaccess"``.
        encoder: ffmpeg encoder name.
        args: ffmpeg output options before the rate option; ``{gop}`` and
            ``{threads}`` are substituted per run.
        rate_option: the ffmpeg option the rate point is given to.
        points: rate-point values, from low to high rate.
        muxer: ffmpeg muxer (and demuxer) of the elementary stream.
        extension: file extension of the elementary stream.
        stream_format: what the rate counts.
        decode_bits: bit depth of the decoder output (8, or 10 for VVenC).
        summary: the configuration in words, for the report.
    """

    name: str
    config: str
    encoder: str
    args: tuple[str, ...]
    rate_option: str
    points: tuple[int, ...]
    muxer: str
    extension: str
    stream_format: str
    decode_bits: int
    summary: str


_H264 = "H.264 Annex B elementary stream (.264), minus x264's version/options SEI"
_H265 = "H.265 Annex B elementary stream (.265), info SEI off"
_AV1 = "AV1 low-overhead OBU stream (.obu, no IVF headers)"
_H266 = "H.266 Annex B elementary stream (.266)"

# Rate points: chosen so that on the development clips (first 32 frames) the
# curves span roughly 0.01-0.5 bpp and overlap each other and a learned codec.
# x264/x265/VVenC reach down to CRF/QP 51 (PSNR-YUV ~26-28 dB on the dev clips)
# because mcodec's current model lives at 26-32 dB; AV1's 63 is already its end.
_X264_POINTS = (22, 26, 30, 34, 38, 42, 46, 51)
_X265_POINTS = (22, 26, 30, 34, 38, 42, 46, 51)
_SVT_POINTS = (28, 35, 42, 49, 56, 63)
_AOM_POINTS = (24, 32, 40, 48, 56, 63)
_VVENC_POINTS = (22, 26, 30, 34, 38, 42, 46, 51)

_SVT_PRESET = "6"   # SVT-AV1's random-access default preset era; ~1 s per 32 frames of 720x576
_AOM_CPU_USED = "4"
_VVENC_PRESET = "medium"


def _x264(name: str, preset: str, config: str) -> AnchorSpec:
    common = ["-c:v", "libx264", "-preset", preset, "-tune", "psnr", "-threads", "{threads}"]
    if config == "lowdelay":
        params = "keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0"
        text = f"x264 {preset}, tune psnr, no B-frames, closed GOP, keyint=gop, scenecut off"
    else:
        params = "keyint={gop}:min-keyint={gop}:scenecut=0"
        text = f"x264 {preset}, tune psnr, default B-frames (3, pyramid), keyint=gop, scenecut off"
    return AnchorSpec(name, config, "libx264", (*common, "-x264-params", params), "-crf",
                      _X264_POINTS, "h264", ".264", _H264, 8, text + ", CRF")


def _x265(name: str, preset: str, config: str) -> AnchorSpec:
    common = ["-c:v", "libx265", "-preset", preset, "-tune", "psnr", "-threads", "{threads}"]
    if config == "lowdelay":
        params = "keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0:info=0"
        text = f"x265 {preset}, tune psnr, no B-frames, closed GOP, keyint=gop, scenecut off"
    else:
        params = "keyint={gop}:min-keyint={gop}:scenecut=0:info=0"
        text = f"x265 {preset}, tune psnr, default B-frames (4) and open GOP, keyint=gop, scenecut off"
    return AnchorSpec(name, config, "libx265", (*common, "-x265-params", params), "-crf",
                      _X265_POINTS, "hevc", ".265", _H265, 8, text + ", CRF")


def _svtav1(config: str) -> AnchorSpec:
    if config == "lowdelay":
        params = "pred-struct=1:tune=1:scd=0:irefresh-type=2:lp={threads}"
        text = (f"SVT-AV1 preset {_SVT_PRESET}, tune PSNR, low-delay prediction structure "
                "(pred-struct=1), closed GOP (key frames), keyint=gop, scene detection off")
    else:
        params = "tune=1:scd=0:lp={threads}"
        text = (f"SVT-AV1 preset {_SVT_PRESET}, tune PSNR, default random-access hierarchical "
                "mini-GOPs, keyint=gop, scene detection off")
    return AnchorSpec("svtav1", config, "libsvtav1",
                      ("-c:v", "libsvtav1", "-preset", _SVT_PRESET, "-g", "{gop}",
                       "-svtav1-params", params), "-crf",
                      _SVT_POINTS, "obu", ".obu", _AV1, 8, text + ", CRF")


def _aom(config: str) -> AnchorSpec:
    common = ["-c:v", "libaom-av1", "-usage", "good", "-cpu-used", _AOM_CPU_USED,
              "-tune", "psnr", "-g", "{gop}", "-keyint_min", "{gop}", "-threads", "{threads}",
              "-b:v", "0"]
    if config == "lowdelay":
        extra = ["-lag-in-frames", "0", "-auto-alt-ref", "0"]
        text = (f"libaom-av1 good, cpu-used {_AOM_CPU_USED}, tune psnr, no look-ahead and no "
                "alt-ref (no reordering), fixed key-frame interval = gop")
    else:
        extra = []
        text = (f"libaom-av1 good, cpu-used {_AOM_CPU_USED}, tune psnr, default look-ahead and "
                "alt-ref frames, fixed key-frame interval = gop")
    return AnchorSpec("aom", config, "libaom-av1", (*common, *extra), "-crf",
                      _AOM_POINTS, "obu", ".obu", _AV1, 8, text + ", constant quality (crf, b:v 0)")


def _vvenc(config: str) -> AnchorSpec:
    common = ["-c:v", "libvvenc", "-preset", _VVENC_PRESET, "-qpa", "0", "-threads", "{threads}",
              # ffmpeg's 8->10 bit conversion for the encoder is an exact left shift by 2.
              "-pix_fmt", "yuv420p10le"]
    if config == "lowdelay":
        # VVenC only accepts refresh type "none" in low delay; it still codes an
        # IDR (closed GOP) every intraperiod frames. Its default GOP of 32 has no
        # valid reference lists without reordering: GOP 8 as in VTM's LDB config.
        params = "intraperiod={gop}:picreordering=0:decodingrefreshtype=none:gopsize=8"
        text = (f"VVenC {_VVENC_PRESET}, QPA off, low-delay B (picreordering=0, GOP 8, refs to "
                "past pictures only), IDR every gop frames")
    else:
        params = "intraperiod={gop}"
        text = (f"VVenC {_VVENC_PRESET}, QPA off, default random access (GOP 32, CRA, open GOP), "
                "intra period = gop")
    return AnchorSpec("vvenc", config, "libvvenc", (*common, "-vvenc-params", params), "-qp",
                      _VVENC_POINTS, "vvc", ".266", _H266, 10, text + ", fixed QP, Main 10")


def _table() -> tuple[AnchorSpec, ...]:
    rows: list[AnchorSpec] = []
    for config in CONFIGS:
        rows += [_x264("x264", "medium", config), _x265("x265", "medium", config),
                 _svtav1(config), _aom(config), _vvenc(config),
                 _x264("x264-veryslow", "veryslow", config),
                 _x265("x265-veryslow", "veryslow", config)]
    return tuple(rows)


# The one table of anchor configurations (immutable).
ANCHORS: tuple[AnchorSpec, ...] = _table()


def anchor_names() -> tuple[str, ...]:
    """Codec names in :data:`ANCHORS`, in table order."""
    return tuple(dict.fromkeys(spec.name for spec in ANCHORS))


def anchor_spec(name: str, config: str) -> AnchorSpec:
    """The row of :data:`ANCHORS` for codec `name` in `config`.

    Raises:
        KeyError: no such row.
    """
    for spec in ANCHORS:
        if spec.name == name and spec.config == config:
            return spec
    raise KeyError(f"no anchor {name!r} in configuration {config!r}")


# --------------------------------------------------------------------- bitstreams


def _annexb_nal_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each NAL unit in an Annex B stream, start codes included."""
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", data)]
    # A 4-byte start code 00 00 00 01 belongs to the NAL that follows it.
    starts = [s - 1 if s > 0 and data[s - 1] == 0 else s for s in starts]
    return [(s, starts[i + 1] if i + 1 < len(starts) else len(data)) for i, s in enumerate(starts)]


def x264_info_sei_bytes(data: bytes) -> int:
    """Bytes of the SEI NAL units carrying x264's version/options string."""
    total = 0
    for s, e in _annexb_nal_spans(data):
        hdr = s + (4 if data[s:s + 4] == b"\x00\x00\x00\x01" else 3)
        if hdr < e and data[hdr] & 0x1F == 6 and b"x264 - core" in data[hdr:e]:
            total += e - s
    return total


def _x264_version(data: bytes) -> str:
    m = re.search(rb"x264 - (core \d+(?: r\d+ [0-9a-f]+)?)", data)
    return "x264 " + m.group(1).decode("ascii") if m else ""


_VERSION_PATTERNS = {
    "libx265": re.compile(r"HEVC encoder version (\S+)"),
    "libsvtav1": re.compile(r"SVT-AV1 Encoder Lib (\S+)"),
    "libaom-av1": re.compile(r"\[libaom-av1 @ [^\]]*\] (v\d\S*)"),
    "libvvenc": re.compile(r"libvvenc version: (\S+)"),
}
_VERSION_PREFIX = {"libx265": "x265 ", "libsvtav1": "SVT-AV1 ", "libaom-av1": "libaom ",
                   "libvvenc": "VVenC "}


def encoder_version_from_log(encoder: str, log: str) -> str:
    """The encoder's own version string found in ffmpeg's info-level log, or ""."""
    pat = _VERSION_PATTERNS.get(encoder)
    m = pat.search(log) if pat else None
    return _VERSION_PREFIX[encoder] + m.group(1) if m else ""


def _quote(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def ten_to_eight_bit(plane: np.ndarray) -> np.ndarray:
    """Exact 10-to-8-bit conversion without dithering: ``min((x + 2) >> 2, 255)``.

    This inverts the encoder-side ``x << 2`` and rounds half up, identical to
    ffmpeg's swscale with ``-sws_dither none`` (its default dithers).
    """
    return np.minimum((plane.astype(np.uint16) + 2) >> 2, 255).astype(np.uint8)


def decode_stream(path: Path, demuxer: str, width: int, height: int, bits: int = 8,
                  ffmpeg: str | None = None) -> Iterator[Frame]:
    """Decode an elementary stream with ffmpeg; yield 8-bit yuv420p frames.

    Args:
        path: the stream file.
        demuxer: ffmpeg demuxer name (``h264``, ``hevc``, ``obu``, ``vvc``, ...).
        width, height: the coded picture size (the source size).
        bits: 8, or 10 to decode as yuv420p10le and convert exactly to 8 bits.

    Raises:
        FFmpegError: ffmpeg failed to decode.
        VideoIOError: truncated output.
    """
    pix_fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    bpc = 1 if bits == 8 else 2
    ch, cw = chroma_shape(height, width)
    n_y, n_c = width * height, ch * cw
    frame_size = (n_y + 2 * n_c) * bpc
    args = ff.base_args(ffmpeg) + ["-nostats", "-f", demuxer, *ff.SAFE_INPUT,
                                   "-i", ff.input_url(str(path)), "-map", "0:v:0",
                                   "-fps_mode", "passthrough", "-pix_fmt", pix_fmt,
                                   "-f", "rawvideo", "pipe:1"]
    with ff.FFmpegProcess(args, stdout=subprocess.PIPE) as proc:
        out = proc.stdout
        assert out is not None
        count = 0
        while True:
            buf = out.read(frame_size)
            if not buf:
                break
            while len(buf) < frame_size:
                more = out.read(frame_size - len(buf))
                if not more:
                    break
                buf += more
            if len(buf) != frame_size:
                raise VideoIOError(f"{path}: decoded frame {count} truncated")
            if bits == 8:
                yield Frame.frombuffer(buf, width, height)
            else:
                arr = np.frombuffer(buf, dtype="<u2")
                yield Frame(ten_to_eight_bit(arr[:n_y].reshape(height, width)),
                            ten_to_eight_bit(arr[n_y:n_y + n_c].reshape(ch, cw)),
                            ten_to_eight_bit(arr[n_y + n_c:].reshape(ch, cw)))
            count += 1
        proc.wait(f"decoding {path} failed", timeout=120)


class FFmpegAnchor:
    """An :class:`AnchorSpec` made runnable: implements :class:`mcodec.eval.codecs.Codec`."""

    def __init__(self, spec: AnchorSpec, threads: int = 2, ffmpeg: str | None = None) -> None:
        self.spec = spec
        self.threads = int(threads)
        self._ffmpeg = ffmpeg
        self.name = spec.name
        self.config = spec.config
        self.point_label = spec.rate_option.lstrip("-")
        self.points = tuple(float(p) for p in spec.points)
        self.stream_format = spec.stream_format
        self.description = spec.summary
        # Everything that can change the coded or decoded frames (not the
        # wording or the point list): command template, formats, threads
        # (x264/x265 output depends on the thread count).
        self.cache_token = repr((spec.encoder, spec.args, spec.rate_option, spec.muxer,
                                 spec.extension, spec.decode_bits, f"threads={self.threads}"))

    def _exe(self) -> str:
        if self._ffmpeg is None:
            self._ffmpeg = ff.find_ffmpeg()
        return self._ffmpeg

    def command(self, src: Path, gop: int, point: float, out: Path) -> list[str]:
        """The full ffmpeg argument list that encodes `src` at `point` into `out`."""
        opts = [a.format(gop=int(gop), threads=self.threads) for a in self.spec.args]
        return (ff.base_args(self._exe(), loglevel="info")
                + ["-nostats", "-y", "-f", "yuv4mpegpipe", *ff.SAFE_INPUT, "-i", ff.input_url(str(src)),
                   "-map", "0:v:0", *opts, self.spec.rate_option, _fmt_point(point),
                   "-f", self.spec.muxer, ff.output_url(str(out))])

    def encode(self, src: Path, gop: int, point: float, workdir: Path) -> Encoded:
        """Encode `src` (.y4m, 8-bit 4:2:0) at `point`; see :class:`mcodec.eval.codecs.Codec`."""
        if gop < 1:
            raise ValueError(f"gop must be >= 1, got {gop}")
        out = Path(workdir) / f"{self.name}_{self.config}_{_fmt_point(point)}{self.spec.extension}"
        args = self.command(Path(src), gop, point, out)
        t0 = time.perf_counter()
        log = ff.run_ffmpeg(args, f"{self.name} encode of {src} at {self.point_label} "
                                  f"{_fmt_point(point)} failed")
        seconds = time.perf_counter() - t0
        data = out.read_bytes()
        if not data:
            raise FFmpegError(f"{self.name} wrote an empty stream for {src}")
        counted = len(data)
        if self.spec.encoder == "libx264":
            counted -= x264_info_sei_bytes(data)
            version = _x264_version(data)
        else:
            version = encoder_version_from_log(self.spec.encoder, log)
        return Encoded(out, counted, len(data), (_quote(args),), version, seconds)

    def decode(self, bitstream: Path, width: int, height: int) -> Iterator[Frame]:
        """Decode `bitstream` to 8-bit yuv420p frames; see :func:`decode_stream`."""
        return decode_stream(Path(bitstream), self.spec.muxer, width, height,
                             self.spec.decode_bits, self._exe())


def _fmt_point(point: float) -> str:
    """``30.0`` -> ``"30"``, ``30.5`` -> ``"30.5"`` (ffmpeg options and file names)."""
    return str(int(point)) if float(point).is_integer() else repr(float(point))


def anchor_codec(name: str, config: str, threads: int = 2, ffmpeg: str | None = None) -> FFmpegAnchor:
    """A runnable anchor for codec `name` in `config` (``KeyError`` if not in the table)."""
    return FFmpegAnchor(anchor_spec(name, config), threads=threads, ffmpeg=ffmpeg)
