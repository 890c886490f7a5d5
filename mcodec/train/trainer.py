"""The trainer: one process or many (torchrun), CPU or GPU, resumable, configured by TOML.

    mcodec train --config configs/smoke.toml --out runs/smoke
    torchrun --nproc_per_node 2 -m mcodec.train --config FILE --out DIR     (also multi-node)

Dataflow of one optimizer step (global step s):

    sample indices of step s (the same whatever the ranks and micro-steps)
      --DataLoader workers: ClipDataset (datasets.py) -> K consecutive cropped frames
        -> `inputs`: key = frame 0; residual = frame 1 - MC(degraded frame 0) + 128
           (classical motion search on a reference made to look decoded)
      --> CodecPair: intra(key), inter(residual, random MAE mask), at one random level q
      --> loss = sum over networks of weight * (lambda_q 255^2 MSE_yuv + bpp), + aux loss
      --> backward (DDP all-reduces the gradients), clip, Adam

Everything random in step s derives from (seed, s, micro-step, rank): the
samples, the level, the mask and the quantization noise. So a run that is
killed and resumed from its last checkpoint takes exactly the steps an
uninterrupted run takes, and reaches the same parameters. Rank 0 writes the
checkpoint (`ckpt.pt`, atomically, every `ckpt_every` steps and when stopped),
the JSONL log (`log.jsonl`) and the progress bar; every rank resumes from the
checkpoint. Checkpoints hold tensors and plain values only, loaded with
``torch.load(weights_only=True)``.

`export` turns a run (or checkpoint) into the shipped bundle format (CDF tables
built, canonical bytes: the same checkpoint always gives the same SHA-256).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcodec.atomic import atomic_path, atomic_write
from mcodec.codec.distortion import psnr_from_mse
from mcodec.train.config import ConfigError, TrainConfig, load_config

if TYPE_CHECKING:  # torch is imported lazily: `--help` stays fast
    import torch

    from mcodec.codec.model import IntraCodec

CKPT_FORMAT = "mcodec-train-2"


# ----------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in the job (world 1 without torchrun)."""

    rank: int
    world: int
    local_rank: int
    device: Any  # torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_ranks(device_name: str) -> Ranks:
    """Join the torchrun job if there is one (gloo on CPU, NCCL on GPU)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("runtime.device is cuda but no GPU is available")
        device = torch.device("cuda", local if device_name == "cuda" else int(device_name.split(":")[1]))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Ranks(rank, world, local, device)


def _all_ranks_true(flag: bool, ranks: Ranks) -> bool:
    """True when `flag` holds on every rank (one tiny all-reduce; trivially local at world 1)."""
    if ranks.world == 1:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], device=ranks.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


# ----------------------------------------------------------------------------- data


class TrainingInputs:
    """Map-style dataset of the networks' inputs: item i -> (key, residual) uint8 (6, h, w) each.

    key is the first frame of ClipDataset item i; the residual (inter training, else
    an empty array) is clip(frame 1 - pred + 128), pred the motion-compensated
    prediction of frame 1 from frame 0 degraded to look decoded (JPEG, blur, noise:
    `degrade.degrade_reference`), with the codec's own motion search and
    compensation. Runs in the DataLoader workers; deterministic in (seed, i).
    """

    def __init__(self, clips: Any, seed: int, inter: bool) -> None:
        self.clips, self.seed, self.inter = clips, seed, inter

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        from mcodec.codec.frame import Frame
        from mcodec.codec.motion import compensate
        from mcodec.codec.motion_search import estimate_motion
        from mcodec.codec.reconstruct import residual_planes
        from mcodec.train.data import planes_to_s2d, s2d_to_planes
        from mcodec.train.degrade import degrade_reference

        clip = self.clips[index]                                  # (K, 6, h, w) uint8
        key = np.ascontiguousarray(clip[0])
        if not self.inter:
            return key, np.zeros((0,), np.uint8)
        rng = np.random.default_rng([self.seed, index, 1])
        ref = degrade_reference(*s2d_to_planes(clip[0]), rng)
        cur = Frame(*s2d_to_planes(clip[1]))
        pred = compensate(*ref, estimate_motion(cur.y, ref[0]))
        return key, planes_to_s2d(*residual_planes(cur, pred))  # what the codec's inter network codes


def step_indices(step: int, micro: int, config: TrainConfig, ranks: Ranks) -> list[int]:
    """The sample indices of one rank's micro-step of a global step.

    Step s owns samples s*batch .. s*batch + batch - 1; micro-step a of rank r takes
    the slice at (a * world + r) * mb, mb = batch / (world * accumulate). The
    union over ranks and micro-steps is the same for any world and accumulate.
    """
    mb = config.micro_batch(ranks.world)
    base = step * config.schedule.batch + (micro * ranks.world + ranks.rank) * mb
    return list(range(base, base + mb))


def _batches(start: int, config: TrainConfig, ranks: Ranks) -> Iterator[list[int]]:
    for step in range(start, config.schedule.steps):
        for micro in range(config.schedule.accumulate):
            yield step_indices(step, micro, config, ranks)


def _loader(config: TrainConfig, ranks: Ranks, start: int, warn: Callable[[str], None]):
    import torch

    from mcodec.train.datasets import ClipDataset, worker_init

    d = config.data
    clips = ClipDataset(d.sources, frames=d.frames,
                        crop=d.crop, seed=config.seed, flip=d.flip, warn=warn)
    inputs = TrainingInputs(clips, config.seed, "inter" in config.networks)
    return torch.utils.data.DataLoader(
        inputs, batch_sampler=_BatchList(start, config, ranks),
        num_workers=d.workers, worker_init_fn=worker_init if d.workers else None,
        persistent_workers=False, pin_memory=ranks.device.type == "cuda")


class _BatchList:
    """A batch sampler over the remaining micro-steps (len known, generated lazily)."""

    def __init__(self, start: int, config: TrainConfig, ranks: Ranks) -> None:
        self.start, self.config, self.ranks = start, config, ranks

    def __len__(self) -> int:
        return max(0, self.config.schedule.steps - self.start) * self.config.schedule.accumulate

    def __iter__(self) -> Iterator[list[int]]:
        return _batches(self.start, self.config, self.ranks)


# ----------------------------------------------------------------------------- model


def build_networks(config: TrainConfig) -> tuple[IntraCodec, IntraCodec]:
    """Fresh intra and inter networks of the config's architecture (seeded)."""
    import torch

    from mcodec.codec.model import IntraCodec, ModelConfig

    m = config.model
    mc = ModelConfig(n=m.n, m=m.m, levels=len(m.lambdas), context=m.context,
                     latent_stride=m.latent_stride)
    torch.manual_seed(config.seed)
    return IntraCodec(mc), IntraCodec(mc)


def _codec_pair(config: TrainConfig):
    """The module DDP wraps: both networks and the loss of one micro-batch."""
    from torch import nn

    from mcodec.codec.model import mse_yuv

    class CodecPair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.intra, self.inter = build_networks(config)
            self.trained = tuple(config.networks)

        def forward(self, key: torch.Tensor, res: torch.Tensor, q: int,
                    mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
            lam = config.model.lambdas[q] * 255.0 ** 2
            out: dict[str, torch.Tensor] = {}
            total = key.new_zeros(())
            aux = key.new_zeros(())
            for name, x, weight, m in (("intra", key, config.loss.intra_weight, None),
                                       ("inter", res, config.loss.inter_weight, mask)):
                if name not in self.trained:
                    continue
                net = getattr(self, name)
                o = net(x, q, mask=m)
                mse = mse_yuv(o.x_hat.float(), x, config.loss.chroma_weight).mean()
                bpp = o.bits.float().sum() / (x.shape[0] * x.shape[2] * x.shape[3] * 4)
                total = total + weight * (lam * mse + bpp)
                aux = aux + net.aux_loss()
                out[f"{name}_mse"], out[f"{name}_bpp"] = mse.detach(), bpp.detach()
            out["loss"], out["aux"] = total, aux
            return out

    return CodecPair()


def _initialise_from(module: Any, path: str, say: Callable[[str], None]) -> None:
    """Warm start: the networks of a bundle (.safetensors) or of another run's checkpoint."""
    from mcodec.codec import zoo

    if str(path).endswith(".safetensors"):
        nets = zoo.networks_from_file(path)
        state = {f"intra.{k}": v for k, v in nets.intra.state_dict().items()}
        state.update({f"inter.{k}": v for k, v in nets.inter.state_dict().items()})
    else:
        state = load_checkpoint(path)["model"]
    # CDF tables are built at export, never trained: a fresh model has none to load into.
    tables = ("._quantized_cdf", "._cdf_length", "._offset", ".scale_table")
    state = {k: v for k, v in state.items() if not k.endswith(tables)}
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(tables)]
    if unexpected:
        raise ConfigError(f"{path} has weights this model lacks: {unexpected[:5]}")
    say(f"initialised from {path}" + (f"; not in it: {len(missing)} tensors" if missing else ""))


# ----------------------------------------------------------------------------- checkpoints


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint (``ckpt.pt`` of a run, or a run folder), loaded without pickle."""
    import torch

    p = Path(path)
    if p.is_dir():
        p = p / "ckpt.pt"
    if not p.is_file():
        raise ConfigError(f"no checkpoint at {p}")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ConfigError(f"{p}: not a training checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise ConfigError(f"{p}: not a {CKPT_FORMAT} training checkpoint")
    return ck


def _save_checkpoint(path: Path, module: Any, opt: Any, aux_opt: Any, scaler: Any, step: int,
                     config: TrainConfig) -> None:
    import torch

    state = {"format": CKPT_FORMAT, "model": module.state_dict(), "opt": opt.state_dict(),
             "aux_opt": aux_opt.state_dict(), "scaler": scaler.state_dict() if scaler else {},
             "step": step, "config": module.intra.config.to_json(), "train_config": config.to_json()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


# ----------------------------------------------------------------------------- training


def _lr(config: TrainConfig, step: int) -> float:
    s = config.schedule
    return s.lr * (0.1 if step >= s.decay_at * s.steps else 1.0)


def _step_rng(config: TrainConfig, step: int) -> np.random.Generator:
    """The generator of a step's level and mask (the same on every rank)."""
    return np.random.default_rng([config.seed, step, 2])


def train(config: TrainConfig, out: str | Path, *, progress: bool = True,
          init_from: str = "", say: Callable[[str], None] | None = None) -> int:
    """Train (or resume) the run in `out` up to `config.schedule.steps`; return the step reached.

    Resumes from ``out/ckpt.pt`` when it exists (its configuration must be the same,
    except `runtime`). Stops cleanly (checkpoint first) on SIGTERM / SIGINT.
    """
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from mcodec.codec.masking import random_mask

    ranks = _init_ranks(config.runtime.device)
    out = Path(out)
    tell = say or (lambda msg: print(f"mcodec train: {msg}", file=sys.stderr))
    say_main = tell if ranks.main else (lambda msg: None)
    if config.runtime.threads:
        torch.set_num_threads(config.runtime.threads)
    if ranks.main:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    module = _codec_pair(config).to(ranks.device)
    for name in ("intra", "inter"):  # a network this run does not train stays as initialised
        if name not in config.networks:
            getattr(module, name).requires_grad_(False)
    trained = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    main_params = [p for n, p in trained if not n.endswith(".quantiles")]
    aux_params = [p for n, p in trained if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main_params, lr=config.schedule.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    precision = config.runtime.precision if ranks.device.type == "cuda" else "fp32"
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    step = 0
    if ckpt_path.is_file():
        ck = load_checkpoint(ckpt_path)
        saved = json.loads(ck["train_config"])
        now = json.loads(config.to_json())
        for key in ("model", "loss", "data", "networks", "seed"):
            if saved.get(key) != now.get(key):
                raise ConfigError(f"{ckpt_path} was trained with another '{key}' configuration; "
                                  "use a new --out to start over")
        module.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        aux_opt.load_state_dict(ck["aux_opt"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        step = int(ck["step"])
        say_main(f"resuming at step {step} from {ckpt_path}")
    elif init_from:
        _initialise_from(module, init_from, say_main)
    if ranks.main:
        atomic_write(out / "config.json", json.dumps(json.loads(config.to_json()), indent=1))
    # DDP broadcasts rank 0's parameters at construction, then all-reduces gradients.
    model = DistributedDataParallel(module) if ranks.world > 1 else module
    stop = {"flag": False}

    def on_signal(signum: int, frame: Any) -> None:  # finish the step, checkpoint, exit
        stop["flag"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    loader = _loader(config, ranks, step, tell)
    batches = iter(loader)
    log = open(out / "log.jsonl", "a", buffering=1) if ranks.main else None
    from tqdm import tqdm

    bar = tqdm(total=config.schedule.steps, initial=step, file=sys.stderr, dynamic_ncols=True,
               disable=not (progress and ranks.main), mininterval=2, desc="train")
    levels = len(config.model.lambdas)
    amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16) \
        if precision != "fp32" else None
    window_t, window_steps = time.perf_counter(), 0
    model.train()
    try:
        while step < config.schedule.steps and not stop["flag"]:
            lr = _lr(config, step)
            for g in opt.param_groups:
                g["lr"] = lr
            srng = _step_rng(config, step)
            q = int(srng.integers(0, levels))
            ratio = float(srng.uniform(config.loss.mask_min, config.loss.mask_max)) \
                if srng.random() < config.loss.mask_prob else 0.0
            opt.zero_grad(set_to_none=True)
            aux_opt.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            finite = True
            for micro in range(config.schedule.accumulate):
                key, res = next(batches)
                key = key.to(ranks.device, non_blocking=True).float() / 255.0
                res = res.to(ranks.device, non_blocking=True).float() / 255.0
                # Quantization noise and mask patterns: from (seed, step, micro, rank) only.
                torch.manual_seed(int(np.random.default_rng([config.seed, step, micro, ranks.rank, 3])
                                      .integers(0, 2 ** 62)))
                mask = None
                if ratio > 0 and res.numel():
                    mrng = np.random.default_rng([config.seed, step, micro, ranks.rank, 4])
                    ts = config.model.latent_stride // 2   # 6-channel tensor -> latent grid
                    grid = (res.shape[2] // ts, res.shape[3] // ts)
                    mask = torch.from_numpy(random_mask(grid, ratio, mrng, batch=res.shape[0])).to(ranks.device)
                sync = micro == config.schedule.accumulate - 1 or ranks.world == 1
                ctx = model.no_sync() if not sync else nullcontext()
                with ctx:
                    with amp if amp is not None else nullcontext():
                        o = model(key, res, q, mask)
                    total = (o["loss"] + o["aux"]) / config.schedule.accumulate
                    finite = finite and bool(torch.isfinite(total))
                    (scaler.scale(total) if scaler else total).backward()
                for k, v in o.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) / config.schedule.accumulate
            if _all_ranks_true(finite, ranks):
                if scaler:
                    scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(main_params, config.schedule.clip_grad)
                if scaler:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                aux_opt.step()
            else:
                say_main(f"step {step}: loss not finite on some rank; step skipped")
            step += 1
            window_steps += 1
            bar.update(1)
            stop["flag"] = not _all_ranks_true(not stop["flag"], ranks)
            if log is not None and (step % config.schedule.log_every == 0 or step == config.schedule.steps):
                now_t = time.perf_counter()
                rec = {"step": step, "quality": q, "lr": lr, "loss": round(sums["loss"], 6),
                       "aux": round(sums["aux"], 4), "masked": round(ratio, 3),
                       "samples_per_s": round(window_steps * config.schedule.batch / (now_t - window_t), 3)}
                for name in config.networks:
                    rec[f"{name}_bpp"] = round(sums[f"{name}_bpp"], 5)
                    rec[f"{name}_psnr_yuv"] = round(float(psnr_from_mse(sums[f"{name}_mse"], peak=1.0)), 3)
                log.write(json.dumps(rec) + "\n")
                bar.set_postfix(q=q, loss=f"{rec['loss']:.4f}")
                window_t, window_steps = now_t, 0
            if ranks.main and step % config.schedule.ckpt_every == 0:
                _save_checkpoint(ckpt_path, module, opt, aux_opt, scaler, step, config)
    finally:
        bar.close()
        if ranks.main and step > 0:
            _save_checkpoint(ckpt_path, module, opt, aux_opt, scaler, step, config)
        if log is not None:
            log.close()
        for s, h in old.items():
            signal.signal(s, h)
        del batches, loader
    _check_ranks_agree(module, ranks, out)
    say_main(f"stopped at step {step} of {config.schedule.steps}")
    return step


def parameter_digest(module: Any) -> str:
    """SHA-256 (hex) of a module's parameters and buffers, in state-dict order."""
    import hashlib

    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _check_ranks_agree(module: Any, ranks: Ranks, out: Path) -> None:
    """Every rank must hold the same parameters after training (DDP keeps them in step);
    rank 0 records the digests in ``out/ranks.json`` and a desync is an error."""
    digest = parameter_digest(module)
    digests = [digest]
    if ranks.world > 1:
        import torch.distributed as dist

        digests = [None] * ranks.world
        dist.all_gather_object(digests, digest)
    if ranks.main:
        atomic_write(out / "ranks.json", json.dumps({"world": ranks.world, "digests": digests}, indent=1))
    if len(set(digests)) != 1:
        raise RuntimeError(f"ranks hold different parameters after training: {digests}")


# ----------------------------------------------------------------------------- export and plots


def export(run_or_ckpt: str | Path, out: str | Path) -> str:
    """Write a run's networks as a codec bundle (CDF tables frozen); return its hex SHA-256.

    The bundle is canonical (`mcodec.codec.zoo.save_bundle`): exporting the same
    checkpoint twice gives the same bytes, ready for the model table.
    """
    from mcodec.codec.model import IntraCodec, ModelConfig
    from mcodec.codec.zoo import save_bundle

    ck = load_checkpoint(run_or_ckpt)
    cfg = json.loads(ck["train_config"])
    mc = ModelConfig.from_json(ck["config"])
    nets = []
    for name in ("intra", "inter"):
        net = IntraCodec(mc)
        net.load_state_dict({k[len(name) + 1:]: v for k, v in ck["model"].items() if k.startswith(name + ".")})
        net.eval().update(force=True)  # export side only: decoders just load these tables
        nets.append(net)
    return save_bundle(nets[0], nets[1], tuple(float(x) for x in cfg["model"]["lambdas"]), out)


def plot_log(run: str | Path, out: str | Path | None = None) -> Path:
    """Draw a run's training curves (loss, rate, PSNR-YUV, learning rate) into a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run = Path(run)
    log_path = run / "log.jsonl" if run.is_dir() else run
    try:
        recs = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read training log {log_path}: {exc}") from None
    if not recs:
        raise ConfigError(f"{log_path}: no log records yet")
    steps = [r["step"] for r in recs]
    fig = Figure(figsize=(10, 7))
    panels = (("loss", ["loss"]), ("rate (bpp)", [k for k in recs[-1] if k.endswith("_bpp")]),
              ("PSNR-YUV (dB)", [k for k in recs[-1] if k.endswith("_psnr_yuv")]),
              ("learning rate", ["lr"]))
    for i, (title, keys) in enumerate(panels):
        ax = fig.add_subplot(2, 2, i + 1)
        for k in keys:
            ax.plot(steps, [r.get(k, float("nan")) for r in recs], label=k)
        ax.set_title(title)
        ax.set_xlabel("step")
        if title == "loss":
            ax.set_yscale("log")  # the first steps' loss is orders of magnitude above the rest
        if len(keys) > 1:
            ax.legend()
    fig.tight_layout()
    target = Path(out) if out else log_path.with_suffix(".png")
    FigureCanvasAgg(fig)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    return target


# ----------------------------------------------------------------------------- CLI


def build_parser():
    import argparse

    p = argparse.ArgumentParser(prog="mcodec train",
                                description="Train mcodec's networks from a TOML config (see configs/); "
                                            "the same under torchrun: torchrun --nproc_per_node N "
                                            "-m mcodec.train --config FILE --out DIR.")
    p.add_argument("--config", help="TOML training configuration (configs/*.toml)")
    p.add_argument("--out", help="run folder: checkpoint, log, config (default runs/<config name>); "
                                 "an existing run resumes")
    p.add_argument("--init-from", default="", metavar="BUNDLE_OR_RUN",
                   help="fresh start: take the networks of a bundle (.safetensors) or another run")
    p.add_argument("--plot", metavar="RUN", help="do not train: draw RUN's curves into RUN/log.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`mcodec train` and ``python -m mcodec.train``: exit code 0, or ConfigError for bad input."""
    args = build_parser().parse_args(argv)
    if args.plot:
        print(f"wrote {plot_log(args.plot)}")
        return 0
    if not args.config:
        raise ConfigError("give --config FILE (or --plot RUN)")
    config = load_config(args.config)
    out = args.out or str(Path("runs") / Path(args.config).stem)
    train(config, out, progress=not args.no_progress, init_from=args.init_from)
    return 0


def run_module(argv: Sequence[str] | None = None) -> int:
    """``python -m mcodec.train`` (also under torchrun): user errors exit 2 with one line."""
    from mcodec.errors import McodecError

    try:
        return main(argv)
    except McodecError as exc:
        print(f"mcodec train: error: {exc}", file=sys.stderr)
        return 2
