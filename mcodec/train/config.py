"""Training configuration: one TOML file holds everything that shapes a model.

    seed = 1
    networks = ["intra", "inter"]      # which of the bundle's networks this run trains

    [model]                            # architecture and quality levels
    n = 64                             # channels of the transforms
    m = 96                             # latent channels (one 16x16 patch per position)
    context = true                     # checkerboard context model
    latent_stride = 16                 # luma samples per latent position: 16 or 8
    lambdas = [0.001, ..., 0.1]        # one rate-distortion weight per quality level

    [loss]
    chroma_weight = 1.0                # w in (6 MSE_y + w MSE_u + w MSE_v) / 8
    intra_weight = 1.0                 # weights of the two networks' losses in the sum
    inter_weight = 1.0
    mask_prob = 0.5                    # MAE: probability of a random latent mask per batch (inter)
    mask_min = 0.1
    mask_max = 0.9

    [schedule]
    steps = 40000                      # optimizer steps
    batch = 8                          # samples per optimizer step, over all ranks and micro-steps
    accumulate = 1                     # micro-steps per optimizer step (per rank)
    lr = 2e-4                          # Adam; x0.1 from decay_at * steps
    decay_at = 0.85
    clip_grad = 1.0
    ckpt_every = 500
    log_every = 10

    [data]
    crop = 192                         # luma crop, multiple of 16
    frames = 2                         # consecutive frames per sample (inter needs >= 2)
    flip = true
    workers = 2                        # DataLoader worker processes per rank
    [[data.sources]]                   # mixed by weight; paths relative to the data root
    kind = "video"                     # "video" | "images" | "synthetic"
    path = "video_train"
    weight = 3.0

    [runtime]                          # how to run (not the model): may differ between machines
    device = "auto"                    # "cpu", "cuda", "auto"
    precision = "fp32"                 # "fp32", "bf16" or "fp16" (autocast; GPU only)
    threads = 0                        # torch intra-op threads per rank (0: leave torch's default)

Every key is checked: an unknown key is an error naming it (`ConfigError`), so a
typo never silently trains with a default. `batch` is the global batch: with W
ranks and A micro-steps each rank takes batch / (W A) samples per micro-step, and
the samples of step s are the same whatever W and A are, so one CPU with
``accumulate = 8`` reproduces eight GPUs' batch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mcodec.errors import McodecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_LAMBDAS = (0.0010, 0.0019, 0.0037, 0.0072, 0.0139, 0.0268, 0.0518, 0.1000)
NETWORKS = ("intra", "inter")
SOURCE_KINDS = ("video", "images", "synthetic")
PRECISIONS = ("fp32", "bf16", "fp16")


class ConfigError(McodecError, ValueError):
    """A training configuration (or source) that cannot be used; names the key or the value."""


@dataclass(frozen=True)
class ModelSection:
    n: int = 64
    m: int = 96
    context: bool = True
    latent_stride: int = 16
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS

    def check(self) -> None:
        if self.n < 4 or self.m < 4:
            raise ConfigError(f"model.n and model.m must be >= 4, got {self.n}, {self.m}")
        if self.latent_stride not in (8, 16):
            raise ConfigError(f"model.latent_stride must be 8 or 16, got {self.latent_stride!r}")
        if not self.lambdas or any(b <= a for a, b in zip(self.lambdas, self.lambdas[1:])) \
                or self.lambdas[0] <= 0:
            raise ConfigError("model.lambdas must be positive and increasing")


@dataclass(frozen=True)
class LossSection:
    chroma_weight: float = 1.0
    intra_weight: float = 1.0
    inter_weight: float = 1.0
    mask_prob: float = 0.5
    mask_min: float = 0.1
    mask_max: float = 0.9

    def check(self) -> None:
        if not self.chroma_weight > 0:
            raise ConfigError("loss.chroma_weight must be > 0")
        if self.intra_weight < 0 or self.inter_weight < 0:
            raise ConfigError("loss.intra_weight and loss.inter_weight must be >= 0")
        if not 0.0 <= self.mask_prob <= 1.0 or not 0.0 <= self.mask_min <= self.mask_max <= 1.0:
            raise ConfigError("need 0 <= loss.mask_prob <= 1 and 0 <= loss.mask_min <= loss.mask_max <= 1")


@dataclass(frozen=True)
class ScheduleSection:
    steps: int = 40000
    batch: int = 8
    accumulate: int = 1
    lr: float = 2e-4
    decay_at: float = 0.85
    clip_grad: float = 1.0
    ckpt_every: int = 500
    log_every: int = 10

    def check(self) -> None:
        for name in ("steps", "batch", "accumulate", "ckpt_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"schedule.{name} must be >= 1")
        if not self.lr > 0 or not 0.0 <= self.decay_at <= 1.0 or not self.clip_grad > 0:
            raise ConfigError("need schedule.lr > 0, 0 <= schedule.decay_at <= 1, schedule.clip_grad > 0")


@dataclass(frozen=True)
class SourceSpec:
    """One source of training samples (`[[data.sources]]`; `mcodec.train.datasets` reads it).

    Attributes:
        kind: "video" (a video file or folder tree of videos), "images" (a folder
            tree of stills, single-frame samples only) or "synthetic" (stills seen by
            a moving camera, any number of frames).
        path: file or folder; a relative path is resolved against
            `mcodec.train.data.default_data_root()`.
        weight: share of the samples, relative to the other sources; finite and > 0
            (leave a source out to disable it).
    """

    kind: str
    path: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"data.sources: kind {self.kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        try:
            ok = math.isfinite(float(self.weight)) and float(self.weight) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"data.sources: weight of {self.path!r} must be a finite number > 0, "
                              f"got {self.weight!r}")


@dataclass(frozen=True)
class DataSection:
    crop: int = 192
    frames: int = 2
    flip: bool = True
    workers: int = 2
    sources: tuple[SourceSpec, ...] = ()

    def check(self) -> None:
        if self.crop < 16 or self.crop % 16:
            raise ConfigError(f"data.crop must be a positive multiple of 16, got {self.crop}")
        if self.frames < 1 or self.workers < 0:
            raise ConfigError("need data.frames >= 1 and data.workers >= 0")
        if not self.sources:
            raise ConfigError("data.sources: at least one source is needed")


@dataclass(frozen=True)
class RuntimeSection:
    device: str = "auto"
    precision: str = "fp32"
    threads: int = 0

    def check(self) -> None:
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"runtime.device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"runtime.precision must be one of {', '.join(PRECISIONS)}")
        if self.threads < 0:
            raise ConfigError("runtime.threads must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """A whole training configuration (see the module docstring for the TOML form)."""

    seed: int = 1
    networks: tuple[str, ...] = NETWORKS
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossSection = field(default_factory=LossSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    data: DataSection = field(default_factory=DataSection)
    runtime: RuntimeSection = field(default_factory=RuntimeSection)

    def check(self) -> TrainConfig:
        if not self.networks or not set(self.networks) <= set(NETWORKS) \
                or len(set(self.networks)) != len(self.networks):
            raise ConfigError(f"networks must be a non-empty subset of {list(NETWORKS)}, got {list(self.networks)}")
        for section in (self.model, self.loss, self.schedule, self.data, self.runtime):
            section.check()
        if "inter" in self.networks and self.data.frames < 2:
            raise ConfigError("training the inter network needs data.frames >= 2")
        if "inter" in self.networks and any(s.kind == "images" for s in self.data.sources):
            raise ConfigError("data.sources: 'images' gives single frames; the inter network needs "
                              "'video' or 'synthetic' sources")
        return self

    def micro_batch(self, world: int) -> int:
        """Samples per rank per micro-step; refuses a batch that does not split evenly."""
        parts = world * self.schedule.accumulate
        if self.schedule.batch % parts:
            raise ConfigError(f"schedule.batch {self.schedule.batch} does not split into {world} rank(s) "
                              f"x {self.schedule.accumulate} micro-step(s)")
        return self.schedule.batch // parts

    def to_json(self) -> str:
        """Canonical JSON (stored in checkpoints; `from_dict(json.loads(...))` reads it back)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


_SECTIONS = {"model": ModelSection, "loss": LossSection, "schedule": ScheduleSection,
             "data": DataSection, "runtime": RuntimeSection}


def _build(cls: type, values: Any, where: str) -> Any:
    """`cls` from a TOML table, refusing unknown keys and values of the wrong type."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'the config'} must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config key(s): {', '.join(prefix + k for k in unknown)}")
    kwargs = {}
    for name, value in values.items():
        key = f"{where}.{name}" if where else name
        default = known[name].default
        if name in _SECTIONS and not where:
            kwargs[name] = _build(_SECTIONS[name], value, name)
        elif cls is DataSection and name == "sources":
            if not isinstance(value, list):
                raise ConfigError("data.sources must be an array of tables ([[data.sources]])")
            kwargs[name] = tuple(_build(SourceSpec, v, "data.sources") for v in value)
        elif isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"{key} must be an array")
            kwargs[name] = tuple(_coerce(v, default[0], f"{key}[{i}]") for i, v in enumerate(value))
        else:
            kwargs[name] = _coerce(value, default, key)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key missing (sources' kind/path)
        raise ConfigError(f"{where or 'config'}: {exc}") from None


def _coerce(value: Any, default: Any, key: str) -> Any:
    if default is dataclasses.MISSING:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number")
        return float(value)
    if not isinstance(value, type(default)):
        raise ConfigError(f"{key} must be a {type(default).__name__}")
    return value


def from_dict(values: dict[str, Any]) -> TrainConfig:
    """A checked `TrainConfig` from parsed TOML (or `TrainConfig.to_json` output)."""
    return _build(TrainConfig, values, "").check()


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a TOML training configuration.

    Raises:
        ConfigError: unreadable file, bad TOML, unknown keys, bad values.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        return from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
