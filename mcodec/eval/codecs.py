"""The codec interface of the bench: what every codec (the anchors, mcodec) provides.

A codec in the bench is any object with the attributes and methods of
:class:`Codec`. The bench gives it the exact source frames as an 8-bit 4:2:0
YUV4MPEG2 file (``.y4m``; it carries size and frame rate), a key-frame
interval and one rate point, and expects one bitstream file back
(:class:`Encoded`); it then asks the codec to decode that file to frames and
scores them with :mod:`mcodec.eval.metrics`, like every other codec.

Implementations: :class:`mcodec.eval.anchors.FFmpegAnchor` (x264, x265, SVT-AV1,
libaom, VVenC through ffmpeg) and :class:`mcodec.eval.learned.McodecBenchCodec`;
the bench finds them by name in ``mcodec.eval.bench.codec_factories``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from mcodec.codec.frame import Frame


@dataclass(frozen=True)
class Encoded:
    """One coded rate point.

    Attributes:
        path: the bitstream file (inside the workdir the bench passed).
        bytes: bytes counted for the rate (what the codec's ``stream_format`` says).
        file_bytes: size of the file on disk.
        commands: the exact command lines that produced it (shell-quoted).
        encoder_version: the encoder's own version string ("" if unknown).
        seconds: wall-clock encode time.
    """

    path: Path
    bytes: int
    file_bytes: int
    commands: tuple[str, ...]
    encoder_version: str
    seconds: float


@runtime_checkable
class Codec(Protocol):
    """What the bench needs from a codec (the anchors and mcodec itself).

    Attributes:
        name: the name used in ``--codecs`` (e.g. ``"x264"``, ``"mcodec"``).
        config: ``"lowdelay"`` or ``"randomaccess"``.
        point_label: what a rate point is (``"crf"``, ``"qp"``, ``"quality"``).
        points: the rate points of a full run, low to high rate (at least 4).
        stream_format: human description of what ``Encoded.bytes`` counts.
        description: one line stating the configuration (for the report).
        cache_token: changes whenever the output for the same input and point
            could change (command template, model weights hash, encoder
            tuning, ...); part of the bench's cache key.
    """

    name: str
    config: str
    point_label: str
    points: tuple[float, ...]
    stream_format: str
    description: str
    cache_token: str

    def encode(self, src: Path, gop: int, point: float, workdir: Path) -> Encoded:
        """Code the 8-bit 4:2:0 ``src`` (.y4m) at `point`; write the stream into `workdir`."""
        ...

    def decode(self, bitstream: Path, width: int, height: int) -> Iterator[Frame]:
        """Yield the decoded frames of `bitstream` as 8-bit yuv420p, in display order."""
        ...
