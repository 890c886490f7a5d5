"""Training engine: data conversion, crops, checkpoint/resume, export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mcodec.codec.train import (Bank, CropSampler, TrainConfig, check_training_path, export_weights,
                                load_checkpoint, planes_to_s2d, rgb_to_yuv420, train)

REPO = Path(__file__).resolve().parents[1]


def test_refuses_evaluation_data() -> None:
    for bad in ("/work/shared/data/images/kodak", "/x/data/clips/a", "/x/Kodak"):
        with pytest.raises(ValueError, match="evaluation data"):
            check_training_path(bad)
    check_training_path("/work/shared/data/images/train")


def test_rgb_to_yuv420_is_bt601_limited() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:, 2:] = 255
    y, u, v = rgb_to_yuv420(rgb)
    assert y[0, 0] == 16 and y[0, 3] == 235
    assert abs(int(u[0, 0]) - 128) <= 1 and abs(int(v[0, 1]) - 128) <= 1
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    y, u, v = rgb_to_yuv420(red)
    # BT.601 limited: Y = 16 + 65.481 = 81, Cb = 128 - 37.797 = 90, Cr = 128 + 112 = 240.
    assert abs(int(y[0, 0]) - 81) <= 1 and abs(int(u[0, 0]) - 90) <= 1 and abs(int(v[0, 0]) - 240) <= 1


def test_crop_flips_match_flipped_planes() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    u = rng.integers(0, 256, (4, 4), dtype=np.uint8)
    v = rng.integers(0, 256, (4, 4), dtype=np.uint8)
    s2d = planes_to_s2d(y, u, v)
    bank = Bank(s2d.reshape(-1).copy(), np.array([[0, 4, 4]]), np.zeros((0, 6, 4, 4), np.uint8))
    expected = {planes_to_s2d(*(p[:, ::-1] for p in (y, u, v))).tobytes(),
                planes_to_s2d(*(p[::-1] for p in (y, u, v))).tobytes(),
                planes_to_s2d(*(p[::-1, ::-1] for p in (y, u, v))).tobytes(), s2d.tobytes()}
    got = {CropSampler(bank, 8, np.random.default_rng(s)).sample(1)[0].tobytes() for s in range(40)}
    assert got == expected


def _cfg(out: Path, steps: int, shared_data: Path) -> TrainConfig:
    return TrainConfig(out=str(out), data_root=str(shared_data / "images" / "train"), steps=steps,
                       batch=2, crop=32, n=16, m=16, lambdas=(0.002, 0.02), ckpt_every=3,
                       log_every=1, eval_every=0, use_video=False, progress=False, max_images=3,
                       decay_at=1.0)  # same lr schedule whatever `steps` is


def test_train_checkpoint_resume_export(tmp_path: Path, shared_data: Path) -> None:
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_cfg(straight, 8, shared_data))
    train(_cfg(split, 5, shared_data))
    assert load_checkpoint(split / "ckpt.pt")["step"] == 5
    train(_cfg(split, 8, shared_data))  # resumes at 5
    ck = load_checkpoint(split / "ckpt.pt")
    assert ck["step"] == 8
    steps = [json.loads(l)["step"] for l in (split / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))
    rec = json.loads((split / "log.jsonl").read_text().splitlines()[-1])
    assert set(rec) >= {"step", "quality", "bpp", "psnr_yuv", "loss"}
    # Resume restores model, optimizer and every RNG: same weights as an uninterrupted run.
    ref = load_checkpoint(straight / "ckpt.pt")["model"]
    for k, v in ck["model"].items():
        assert torch.allclose(v.float(), ref[k].float(), atol=1e-6), k
    # Export: tables built, loads without pickle, decodes exactly.
    from mcodec.codec.model import IntraCodec

    export_weights(split / "ckpt.pt", tmp_path / "w.safetensors")
    model = IntraCodec.from_safetensors(str(tmp_path / "w.safetensors"))
    assert model.entropy_bottleneck._quantized_cdf.numel() > 0
    x = torch.rand(1, 6, 16, 24)
    c = model.compress(x, 1)
    assert torch.equal(model.decompress(c.strings, c.shape, 1), c.x_hat)


def test_cli_help() -> None:
    done = subprocess.run([sys.executable, "-m", "mcodec.codec.train", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--lambdas" in done.stdout
