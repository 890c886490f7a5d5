"""Training package (mcodec.train): data conversion, crops, checkpoint/resume, export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mcodec.train.data import (Bank, CropSampler, check_training_path, default_data_root,
                               planes_to_s2d, residual_s2d, rgb_to_yuv420)
from mcodec.train.trainer import (TrainConfig, export_bundle, export_weights, load_checkpoint, main,
                                  train)

REPO = Path(__file__).resolve().parents[1]


def test_refuses_evaluation_data() -> None:
    for bad in ("/x/data/images/kodak", "/x/data/clips/a", "/x/Kodak"):
        with pytest.raises(ValueError, match="evaluation data"):
            check_training_path(bad)
    check_training_path("/x/data/images/train")


def test_default_data_root_follows_mcodec_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCODEC_DATA", str(tmp_path / "elsewhere"))
    assert default_data_root() == tmp_path / "elsewhere"
    cfg = TrainConfig(out=str(tmp_path / "run"))  # the default is taken when a config is made
    assert Path(cfg.data_root) == tmp_path / "elsewhere" / "images" / "train"
    monkeypatch.delenv("MCODEC_DATA")
    assert default_data_root() == REPO.parent / "shared" / "data"  # beside the checkout


def test_no_machine_paths_in_the_package() -> None:
    sources = sorted((REPO / "mcodec" / "train").glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "__main__.py", "data.py", "synth.py",
                                         "trainer.py"}
    for path in sources:
        assert "/work/" not in path.read_text(), path


def test_package_import_is_light_and_modules_import_alone() -> None:
    """`import mcodec.train` pulls in no torch; each module imports on its own (no cycle)."""
    code = ("import sys, importlib; import mcodec.train; assert 'torch' not in sys.modules; "
            "[importlib.import_module(f'mcodec.train.{m}') for m in sys.argv[1:]]")
    for mod in ("data", "degrade", "stats", "synth", "trainer"):
        done = subprocess.run([sys.executable, "-c", code, mod], cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (mod, done.stderr[-2000:])


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
    # One key for the ModelConfig everywhere ("config"); the run's TrainConfig beside it.
    from mcodec.codec.model import ModelConfig

    assert ModelConfig.from_json(ck["config"]).levels == 2
    assert json.loads(ck["train_config"])["lambdas"] == [0.002, 0.02]
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
    from mcodec.codec.zoo import safetensors_metadata

    meta = safetensors_metadata((tmp_path / "w.safetensors").read_bytes())
    assert meta["config"] == ck["config"] and "model_config" not in meta
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    assert model.entropy_bottleneck._quantized_cdf.numel() > 0
    x = torch.rand(1, 6, 16, 24)
    c = model.compress(x, 1)
    assert torch.equal(model.decompress(c.strings, c.shape, 1), c.x_hat)


def test_cli_help() -> None:
    """`python -m mcodec.train` (what torchrun launches) and the pair-bank builder."""
    for module, flag in (("mcodec.train", "--lambdas"), ("mcodec.train.synth", "--measure-real")):
        done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"python -m {module}" in done.stdout and flag in done.stdout


# ----------------------------------------------------------------------------- residual (inter) mode


def _write_pair_bank(path: Path, n: int = 10, crop: int = 32, seed: int = 0) -> Path:
    """A tiny bank in `synth.build_pair_bank`'s format: pred = cur shifted by one pixel + noise."""
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, (n, crop + 1, crop + 1), dtype=np.uint8)
    cur_y, pred_y = big[:, :crop, :crop], big[:, 1:, 1:]
    c2 = crop // 2
    arrays = {"cur_y": cur_y, "pred_y": pred_y,
              **{f"{k}_{p}": rng.integers(100, 156, (n, c2, c2), dtype=np.uint8)
                 for k in ("cur", "pred") for p in "uv"},
              "kind": np.zeros(n, np.uint8), "info": np.array(json.dumps({"crop": crop}))}
    np.savez(path, **arrays)
    return path


def _fake_ckpt(path: Path, lambdas: tuple[float, ...], seed: int = 0, context: bool = True) -> Path:
    """A checkpoint as `train` writes it (model, configs, step), without training."""
    from dataclasses import asdict

    from mcodec.codec.model import IntraCodec, ModelConfig

    torch.manual_seed(seed)
    model = IntraCodec(ModelConfig(n=16, m=16, levels=len(lambdas), context=context))
    cfg = TrainConfig(out=str(path.parent), lambdas=lambdas, n=16, m=16, context=context)
    torch.save({"model": model.state_dict(), "step": 0, "config": model.config.to_json(),
                "train_config": json.dumps(asdict(cfg))}, path)
    return path


def test_residual_s2d_matches_codec_residual() -> None:
    bank = {"cur_y": np.array([[[0, 255], [10, 200]]], np.uint8), "pred_y": np.array([[[200, 0], [10, 100]]], np.uint8),
            "cur_u": np.array([[[7]]], np.uint8), "pred_u": np.array([[[9]]], np.uint8),
            "cur_v": np.array([[[50]]], np.uint8), "pred_v": np.array([[[50]]], np.uint8)}
    cur, pred, res = residual_s2d(bank, np.array([0]))
    assert cur.shape == pred.shape == res.shape == (1, 6, 1, 1)
    # clip(cur - pred + 128): -200 -> 0, +255 -> 255, 0 -> 128, +100 -> 228; chroma -2 -> 126.
    assert res[0, :, 0, 0].tolist() == [0, 255, 128, 228, 126, 128]


def test_pairs_training_masks_resumes_and_exports_bundle(tmp_path: Path) -> None:
    from mcodec.codec.zoo import networks_from_file

    torch.set_num_threads(1)
    lambdas = (0.002, 0.02)
    bank = _write_pair_bank(tmp_path / "pairs.npz")
    intra = _fake_ckpt(tmp_path / "intra.pt", lambdas)
    cfg = dict(out=str(tmp_path / "inter"), steps=3, batch=2, crop=32, n=16, m=16, lambdas=lambdas,
               ckpt_every=2, log_every=1, eval_every=2, progress=False, decay_at=1.0,
               pairs=str(bank), val_pairs=2, mask_prob=1.0, init_from=str(intra))
    train(TrainConfig(**cfg))
    train(TrainConfig(**{**cfg, "steps": 4}))  # resumes at 3
    recs = [json.loads(l) for l in (tmp_path / "inter" / "log.jsonl").read_text().splitlines()]
    train_recs = [r for r in recs if r["kind"] == "train"]
    assert [r["step"] for r in train_recs] == [1, 2, 3, 4]
    assert all(0.1 <= r["masked"] <= 0.9 for r in train_recs)  # mask_prob=1: every batch masked
    ev = [r for r in recs if r["kind"] == "eval"]
    assert [r["step"] for r in ev] == [2, 4] and len(ev[0]["levels"]) == 2
    lv = ev[0]["levels"][0]
    assert set(lv) >= {"bpp", "psnr_yuv", "psnr_pred", "bpp_mask50", "psnr_mask50"}
    assert lv["bpp_mask50"] < lv["bpp"]
    inter = tmp_path / "inter" / "ckpt.pt"
    assert load_checkpoint(inter)["step"] == 4

    out = tmp_path / "bundle.safetensors"
    digest = export_bundle(intra, inter, out)
    nets = networks_from_file(str(out))
    assert nets.lambdas == lambdas and len(digest) == 64 and nets.digest.hex() == digest
    x = torch.rand(1, 6, 16, 24)
    mask = torch.tensor([[True, False, True], [False, False, True]])
    for net in (nets.intra, nets.inter):
        c = net.compress(x, 1, mask=mask)
        assert torch.equal(net.decompress(c.strings, c.shape, 1, mask=mask), c.x_hat)
    # The two networks are distinct (inter was trained), with one shared config.
    assert not torch.equal(nets.intra.g_s[0].weight, nets.inter.g_s[0].weight)
    assert main(["--export-bundle", str(tmp_path / "b2.safetensors"), "--intra", str(intra),
                 "--inter", str(inter)]) == 0
    assert networks_from_file(str(tmp_path / "b2.safetensors")).levels == 2
    # Export is reproducible to the byte (the model table pins the SHA-256): safetensors
    # writes its metadata from a hash map, in an order that varies between calls.
    digests = {export_bundle(intra, inter, tmp_path / f"r{i}.safetensors") for i in range(6)}
    assert digests == {digest}


def test_pairs_mode_and_bundle_refuse_mismatches(tmp_path: Path) -> None:
    bank = _write_pair_bank(tmp_path / "pairs.npz")
    other = _fake_ckpt(tmp_path / "other.pt", (0.001, 0.01))
    with pytest.raises(ValueError, match="lambdas"):
        train(TrainConfig(out=str(tmp_path / "a"), steps=1, batch=2, crop=32, n=16, m=16,
                          lambdas=(0.002, 0.02), pairs=str(bank), val_pairs=2, progress=False,
                          init_from=str(other)))
    no_ctx = _fake_ckpt(tmp_path / "noctx.pt", (0.002, 0.02), context=False)
    with pytest.raises(ValueError, match="model config"):
        train(TrainConfig(out=str(tmp_path / "b"), steps=1, batch=2, crop=32, n=16, m=16,
                          lambdas=(0.002, 0.02), pairs=str(bank), val_pairs=2, progress=False,
                          init_from=str(no_ctx)))
    ok = _fake_ckpt(tmp_path / "ok.pt", (0.002, 0.02))
    with pytest.raises(ValueError, match="lambdas differ"):
        export_bundle(ok, other, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="model configs differ"):
        export_bundle(ok, no_ctx, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_warm_start_from_the_shipped_bundle() -> None:
    """A fresh machine can continue training from the weights in the package."""
    from mcodec.codec import zoo
    from mcodec.codec.model import IntraCodec, ModelConfig

    bundle = zoo.weights_file(zoo.get_model())
    for part in ("intra", "inter"):
        ck = load_checkpoint(f"{bundle}:{part}")
        model = IntraCodec(ModelConfig.from_json(ck["config"]))
        missing, unexpected = model.load_state_dict(ck["model"], strict=False)
        assert not missing and not unexpected


def test_chroma_weight_enters_the_loss_and_is_validated(tmp_path: Path) -> None:
    """Same seed, data and initial weights, chroma weight 1 vs 3: the first step's loss
    (computed before any update) is larger with the larger weight, and the weight is stored
    with the run's config."""
    torch.set_num_threads(1)
    lambdas = (0.002, 0.02)
    bank = _write_pair_bank(tmp_path / "pairs.npz")
    intra = _fake_ckpt(tmp_path / "intra.pt", lambdas)
    losses = {}
    for w in (1.0, 3.0):
        out = tmp_path / f"w{w:g}"
        train(TrainConfig(out=str(out), steps=1, batch=2, crop=32, n=16, m=16, lambdas=lambdas,
                          log_every=1, eval_every=100, progress=False, pairs=str(bank),
                          val_pairs=2, mask_prob=0.0, init_from=str(intra), chroma_weight=w))
        rec = json.loads((out / "log.jsonl").read_text().splitlines()[0])
        losses[w] = rec["loss"]
        assert json.loads((out / "config.json").read_text())["chroma_weight"] == w
    assert losses[3.0] > losses[1.0]
    with pytest.raises(ValueError, match="chroma_weight"):
        TrainConfig(out=str(tmp_path / "bad"), chroma_weight=0.0)
