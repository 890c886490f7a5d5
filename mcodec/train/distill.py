"""Initialise fine networks (latent stride 8) by distillation from a model that codes at 2x.

    python -m mcodec.train.distill --config configs/mcodec-f8.toml --base mcodec-s3 \\
        --out runs/f8-distilled.safetensors [--steps 800] [--batch 8]
    mcodec train --config configs/mcodec-f8.toml --out runs/f8 --init-from runs/f8-distilled.safetensors

Why: coding a frame at 2x with stride-16 networks is their analysis run on the
upsampled frame, one latent per 8x8 patch of the source, at four times the pixels.
A fine network (`ModelConfig.latent_stride` 8) has the same layers except the
analysis' middle and the synthesis' last stride-2 layer, 3x3 convolutions at stride
1, and starts from the base's weights in all others. Only its two ends differ in
meaning, so only they learn here, each against a direct target (no rate term, no quantization noise):

    head  g_a[:4](x)          -> features whose g_a[4:] gives the base's gained latent
                                 of the upsampled frame, g_a(up2(x)) * gain_q   (MSE)
    tail  g_s[4:](base g_s[:4](y_hat_q * inv_gain_q))  -> x itself, at native size
                                 (the training loss' weighted MSE, 6:w:w)

x is a training key frame for the intra network, a motion-compensated residual
(the trainer's `TrainingInputs`) for the residual one; up2 is the codec's own
upsampling (`resample.upsample_frame`). The result codes at about the base's 2x
quality and rate at the compute of 1x; end-to-end training then takes it further.
Data: the config's training sources only (never the evaluation clips).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def upsampled(batch: np.ndarray) -> np.ndarray:
    """(B, 6, h, w) uint8 s2d tensors -> (B, 6, 2h, 2w): each frame through the codec's 2x upsampling."""
    from mcodec.codec.frame import Frame
    from mcodec.codec.resample import upsample_frame
    from mcodec.train.data import planes_to_s2d, s2d_to_planes

    return np.stack([planes_to_s2d(*upsample_frame(Frame(*s2d_to_planes(x))).planes()) for x in batch])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="training TOML (model.latent_stride must be 8)")
    ap.add_argument("--base", default="mcodec-s3", help="model table id of the stride-16 teacher")
    ap.add_argument("--out", required=True, help="bundle to write (fine networks as intra/inter)")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tail-weight", type=float, default=1.0,
                    help="weight of the tail's weighted MSE (255^2 units) against the latent MSE")
    args = ap.parse_args(argv)
    import torch

    from mcodec.codec import zoo
    from mcodec.codec.model import IntraCodec, mse_yuv
    from mcodec.train.config import load_config
    from mcodec.train.datasets import ClipDataset
    from mcodec.train.trainer import TrainingInputs, build_networks

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    if config.model.latent_stride != 8:
        raise SystemExit(f"{args.config}: model.latent_stride is {config.model.latent_stride}, need 8")
    teacher = zoo.load_networks(args.base)
    students = dict(zip(("intra", "inter"), build_networks(config)))
    params = []
    for name, student in students.items():
        t: IntraCodec = getattr(teacher, name)
        t.eval().requires_grad_(False)
        # Every layer but the two stride-1 ones has the teacher's shape and starts from it.
        mine = student.state_dict()
        tables = ("._quantized_cdf", "._cdf_length", "._offset", ".scale_table")   # resized on load
        student.load_state_dict({k: v for k, v in t.state_dict().items()
                                 if mine[k].shape == v.shape or k.endswith(tables)}, strict=False)
        student.train().requires_grad_(False)
        for mod in (*student.g_a[:4], *student.g_s[4:]):
            mod.requires_grad_(True)
            params += list(mod.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr / 20)
    d = config.data
    clips = ClipDataset(d.sources, frames=2, crop=d.crop, seed=config.seed + 7, flip=d.flip,
                        warn=lambda m: print(m, file=sys.stderr))
    inputs = TrainingInputs(clips, config.seed + 7, inter=True)
    loader = torch.utils.data.DataLoader(inputs, batch_size=args.batch, num_workers=d.workers,
                                         sampler=range(args.steps * args.batch))
    rng = np.random.default_rng([config.seed, 77])
    lambdas, levels = config.model.lambdas, len(config.model.lambdas)
    w = config.loss.chroma_weight
    t0 = time.perf_counter()
    for step, (key, res) in enumerate(loader):
        q = int(rng.integers(0, levels))
        total, logs = 0.0, {}
        for name, x8 in (("intra", key), ("inter", res)):
            s, t = students[name], getattr(teacher, name)
            x = x8.float() / 255
            x2 = torch.from_numpy(upsampled(x8.numpy())).float() / 255
            with torch.no_grad():
                y_t = t.g_a(x2) * t._gain(t.log_gain, q)
                feat = t.g_s[:4](torch.round(y_t) * t._gain(t.log_inv_gain, q))
            y_s = s.g_a(x) * s._gain(s.log_gain, q)
            loss_a = (y_s - y_t).pow(2).mean()
            x_hat = s.g_s[4:](feat)
            loss_s = mse_yuv(x_hat, x, w).mean() * 255 ** 2
            total = total + loss_a + args.tail_weight * loss_s
            logs[name] = (float(loss_a.detach()), float(loss_s.detach()))
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 20 == 0 or step == args.steps - 1:
            print(f"step {step} q{q} " + " ".join(
                f"{n}: latent {a:.4f} tail {10 * np.log10(255 ** 2 / max(b, 1e-9)):.2f} dB"
                for n, (a, b) in logs.items()) + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    for s in students.values():
        s.eval().update(force=True)
    digest = zoo.save_bundle(students["intra"], students["inter"], tuple(lambdas), args.out)
    print(f"{args.out}: sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
