"""What a bench run was asked and what it measured, and the one way they are serialised.

``BenchConfig`` (the request), ``ClipInfo`` / ``CodecInfo`` (the inputs as
used), ``PointResult`` (one clip x codec x rate point) and ``BenchResult`` (a
whole run). :mod:`mcodec.eval.bench` produces them, :mod:`mcodec.eval.report`
turns them into files; this module imports neither.

Serialisation is derived from the dataclass fields, never listed by hand:
``to_dict()`` maps every field to a JSON-ready value (nested records through
their own ``to_dict``, tuples as lists; NaN stays a float, the writers decide
how to spell it) and ``from_dict()`` is its inverse, converting each value by
the field's annotation. The bench cache, results.json, results.csv (``row()``,
the same fields flattened to scalars) and the report all go through these, so a
new field of a point appears everywhere at once. Fields computed from others
(``PointResult.kbps`` / ``bpp``) are ``init=False``: written out, never read back.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mcodec.eval.metrics import SequenceMetrics

# Codecs of a full run when --codecs is not given, and of --quick.
DEFAULT_CODECS = ("mcodec", "x264", "x265", "svtav1", "aom", "vvenc")
QUICK_CODECS = ("mcodec", "x264")
QUICK_FRAMES = 8
QUICK_POINTS = 4


# --------------------------------------------------------------------- serialisation


def _to_json(value: Any) -> Any:
    """One field value as JSON-ready data (records via their to_dict, tuples as lists)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(tp: Any, value: Any) -> Any:
    """Inverse of :func:`_to_json` for a field annotated `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _from_json(inner, value)
    if origin is tuple:
        return tuple(_from_json(typing.get_args(tp)[0], v) for v in value)
    if isinstance(tp, type) and hasattr(tp, "from_dict"):
        return tp.from_dict(value)
    if tp is float:
        return math.nan if value is None else float(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected a bool, got {value!r}")
        return value
    if tp in (int, str):
        if not isinstance(value, (int, float, str)) or isinstance(value, bool):
            raise TypeError(f"expected {tp.__name__}, got {value!r}")
        return tp(value)
    raise TypeError(f"no JSON conversion for {tp!r}")


class Record:
    """``to_dict`` / ``from_dict`` derived from a dataclass's fields (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, JSON-ready (derived fields included)."""
        return {f.name: _to_json(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Inverse of :meth:`to_dict` (derived fields are recomputed, not read).

        Raises:
            KeyError, TypeError, ValueError: `data` does not have the record's shape.
        """
        hints = typing.get_type_hints(cls)
        return cls(**{f.name: _from_json(hints[f.name], data[f.name])
                      for f in fields(cls) if f.init})


# --------------------------------------------------------------------- the request


def select_points(points: tuple[float, ...], n: int) -> tuple[float, ...]:
    """`n` points spread evenly over `points` (ends included), order kept."""
    if n >= len(points):
        return tuple(points)
    idx = np.unique(np.round(np.linspace(0, len(points) - 1, n)).astype(int))
    return tuple(points[i] for i in idx)


@dataclass(frozen=True)
class BenchConfig(Record):
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


# --------------------------------------------------------------------- the measurements


@dataclass(frozen=True)
class ClipInfo(Record):
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
class CodecInfo(Record):
    """A codec as run: name, configuration in words, points, versions."""

    name: str
    config: str
    description: str
    point_label: str
    points: tuple[float, ...]
    stream_format: str
    encoder_version: str


@dataclass(frozen=True, eq=False)
class PointResult(Record):
    """One (clip, codec, rate point) result.

    Units: bytes counted for the rate (``bytes``; ``file_bytes`` on disk),
    ``kbps`` = bytes * 8 * fps / frames / 1000, ``bpp`` = bytes * 8 /
    (frames * width * height) (both derived, ``init=False``); times in seconds
    (decode time includes writing the decoded frames to a y4m); metrics as in
    :class:`SequenceMetrics`. ``cached``: taken from the bench cache in this run.

    Field metadata ``csv``: the column name in results.csv (default the field
    name), or None to leave the field out of the CSV; the metrics' scalars
    become columns of their own.
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
    kbps: float = field(init=False)
    bpp: float = field(init=False)
    metrics: SequenceMetrics
    encode_s: float
    decode_s: float
    metrics_s: float
    encoder_version: str
    stream_format: str = field(metadata={"csv": None})   # one per codec: in the codecs table
    cached: bool
    cache_key: str = field(metadata={"csv": None})
    commands: tuple[str, ...] = field(metadata={"csv": "command"})  # CSV: joined with " && "

    def __post_init__(self) -> None:
        object.__setattr__(self, "kbps", self.bytes * 8 * self.fps / self.frames / 1000.0)
        object.__setattr__(self, "bpp", self.bytes * 8 / (self.frames * self.width * self.height))

    def row(self) -> dict[str, Any]:
        """Flat scalar dict (one CSV row): the fields in order, the metrics' scalars in
        place of `metrics`, tuples joined with " && "."""
        d: dict[str, Any] = {}
        for f in fields(self):
            column = f.metadata.get("csv", f.name)
            if column is None:
                continue
            value = getattr(self, f.name)
            if isinstance(value, SequenceMetrics):
                d.update({k: v for k, v in value.summary().items() if k not in d})
            elif isinstance(value, tuple):
                d[column] = " && ".join(value)
            else:
                d[column] = value
        return d

    def value(self, key: str) -> float:
        """One scalar by name: a field of the point (``kbps``, ``encode_s``, ...) or a
        scalar metric (``psnr_yuv``, ``msssim_y``, ...)."""
        if key in _POINT_FIELDS:
            return float(getattr(self, key))
        if key not in _METRIC_SCALARS:
            raise KeyError(f"no scalar {key!r} in a bench point")
        return float(getattr(self.metrics, key))


_POINT_FIELDS = frozenset(f.name for f in fields(PointResult))
_METRIC_SCALARS = frozenset(f.name for f in fields(SequenceMetrics) if not f.name.startswith("frame_"))


@dataclass(frozen=True, eq=False)
class BenchResult:
    """Everything one run measured, plus where the outputs went.

    ``encoded`` counts points coded in this run, ``cached`` points taken from
    the cache; ``files`` maps output kinds (``json``, ``csv``, ``markdown``,
    ``plot:<clip>``, ``plot:average``) to paths. Written out by
    :func:`mcodec.eval.report.results_json` (from the records' ``to_dict``).
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

