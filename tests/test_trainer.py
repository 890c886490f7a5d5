"""The trainer end to end: real data, real processes (torchrun + gloo), resume after a kill,
export to a bundle the codec decodes with, the command line's errors."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mcodec.train import trainer
from mcodec.train.config import load_config

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.toml"


def _free_port() -> int:
    """A loopback port nothing listens on now (a fixed one may still be held by an earlier run)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(shared_data: Path) -> dict[str, str]:
    return {**os.environ, "MCODEC_DATA": str(shared_data), "OMP_NUM_THREADS": "1"}


def _config(tmp_path: Path, steps: int, **schedule: int) -> Path:
    """configs/smoke.toml with another step count (and schedule values)."""
    text = SMOKE.read_text().replace("steps = 6", f"steps = {steps}")
    for key, value in schedule.items():
        text = text.replace("[schedule]\n", f"[schedule]\n{key} = {value}\n", 1) if f"\n{key} =" not in text \
            else "\n".join(f"{key} = {value}" if line.startswith(f"{key} =") else line
                           for line in text.splitlines())
    path = tmp_path / f"smoke{steps}.toml"
    path.write_text(text)
    load_config(path)  # still valid
    return path


def _train(config: Path, out: Path, shared_data: Path, *extra: str, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "mcodec.train", "--config", str(config), "--out", str(out),
                           "--no-progress", *extra], cwd=REPO, env=_env(shared_data), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def run8(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 8-step run of the smoke config (checkpoints every 2 steps)."""
    tmp = tmp_path_factory.mktemp("run8")
    done = _train(_config(tmp, 8), tmp / "run", shared_data)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "run"


def test_step_indices_are_the_same_samples_for_any_world_and_accumulation() -> None:
    cfg = load_config(SMOKE)
    import dataclasses

    for world, acc in ((1, 1), (2, 1), (1, 2), (2, 2), (4, 1)):
        c = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, accumulate=acc))
        for step in (0, 5):
            got = [i for r in range(world) for a in range(acc)
                   for i in trainer.step_indices(step, a, c, trainer.Ranks(r, world, r, torch.device("cpu")))]
            assert sorted(got) == list(range(step * 4, step * 4 + 4)) and len(set(got)) == 4


def test_smoke_run_logs_checkpoints_and_plots(run8: Path) -> None:
    recs = [json.loads(line) for line in (run8 / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == list(range(1, 9))
    for key in ("loss", "lr", "samples_per_s", "intra_bpp", "intra_psnr_yuv", "inter_bpp", "inter_psnr_yuv"):
        assert all(isinstance(r[key], float) for r in recs), key
    assert all(r["samples_per_s"] > 0 and r["intra_bpp"] > 0 for r in recs)
    ck = trainer.load_checkpoint(run8)
    assert ck["step"] == 8 and json.loads(ck["train_config"])["schedule"]["steps"] == 8
    done = subprocess.run([sys.executable, "-m", "mcodec.cli.main", "train", "--plot", str(run8)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    png = run8 / "log.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_two_process_gloo_run_keeps_ranks_equal(shared_data: Path, tmp_path: Path) -> None:
    """torchrun, 2 processes, gloo: DDP keeps every rank's parameters identical."""
    out = tmp_path / "ddp"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(_free_port()), "-m", "mcodec.train",
                           "--config", str(_config(tmp_path, 3)), "--out", str(out), "--no-progress"],
                          cwd=REPO, env=_env(shared_data), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    ranks = json.loads((out / "ranks.json").read_text())
    assert ranks["world"] == 2 and len(ranks["digests"]) == 2 and len(set(ranks["digests"])) == 1
    ck = trainer.load_checkpoint(out)
    assert ck["step"] == 3
    # ... and the checkpoint rank 0 wrote is what every rank holds.
    probe = trainer._codec_pair(load_config(_config(tmp_path, 3)))
    probe.load_state_dict(ck["model"])
    assert trainer.parameter_digest(probe) == ranks["digests"][0]
    assert len((out / "log.jsonl").read_text().splitlines()) == 3


def test_killed_run_resumes_to_the_same_parameters(run8: Path, shared_data: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, 8)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "mcodec.train", "--config", str(config), "--out", str(out),
                             "--no-progress"], cwd=REPO, env=_env(shared_data),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        log = out / "log.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if log.is_file() and len(log.read_text().splitlines()) >= 3:   # a checkpoint at step 2 exists
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)                                # no chance to checkpoint
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = trainer.load_checkpoint(out)["step"]
    assert 2 <= killed_at < 8
    done = _train(config, out, shared_data)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming at step {killed_at}" in done.stderr
    a, b = trainer.load_checkpoint(run8), trainer.load_checkpoint(out)
    assert b["step"] == a["step"] == 8
    assert a["model"].keys() == b["model"].keys()
    differ = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert not differ, differ[:5]


def test_export_is_byte_reproducible_and_the_codec_uses_it(run8: Path, tmp_path: Path) -> None:
    from mcodec.codec import codec, zoo
    from mcodec.codec.options import EncodeOptions

    from .conftest import synthetic_frames, write_clip

    outs = []
    for name in ("a.safetensors", "b.safetensors"):
        done = subprocess.run([sys.executable, "-m", "mcodec.cli.main", "export", str(run8),
                               str(tmp_path / name)], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        data = (tmp_path / name).read_bytes()
        assert f"sha256 {hashlib.sha256(data).hexdigest()}" in done.stdout
        outs.append(data)
    assert outs[0] == outs[1]
    nets = zoo.networks_from_file(tmp_path / "a.safetensors", model_id="smoke")
    assert nets.levels == 4
    src = write_clip(tmp_path / "in.y4m", synthetic_frames(48, 32, 3))
    s = codec.encode(str(src), str(tmp_path / "x.bin"), options=EncodeOptions(quality=1, gop=2),
                     networks=nets)
    d = codec.decode(str(tmp_path / "x.bin"), str(tmp_path / "x.y4m"), networks=nets)  # hash-verified
    assert s.frames == d.frames == 3


def test_warm_start_trains_only_the_named_network(run8: Path, shared_data: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b.safetensors"
    trainer.export(run8, bundle)
    config = tmp_path / "inter.toml"
    config.write_text(_config(tmp_path, 2).read_text().replace('networks = ["intra", "inter"]',
                                                               'networks = ["inter"]'))
    done = _train(config, tmp_path / "inter", shared_data, "--init-from", str(bundle))
    assert done.returncode == 0, done.stderr[-3000:]
    start, after = trainer.load_checkpoint(run8)["model"], trainer.load_checkpoint(tmp_path / "inter")["model"]
    intra = [k for k in start if k.startswith("intra.") and not k.startswith("intra.entropy_bottleneck._")
             and not k.startswith("intra.gaussian_conditional._")]
    assert intra and all(torch.equal(start[k], after[k]) for k in intra)          # frozen
    assert any(not torch.equal(start[k], after[k]) for k in start if k.startswith("inter.")
               and after[k].dtype.is_floating_point)                              # trained


def test_user_errors_exit_2_with_one_line(tmp_path: Path, shared_data: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text(SMOKE.read_text().replace("[loss]\n", "[loss]\nchroma_wieght = 2.0\n"))
    cases = [["train", "--config", str(typo), "--out", str(tmp_path / "r")],
             ["train", "--config", str(tmp_path / "missing.toml")],
             ["export", str(tmp_path / "no_run"), str(tmp_path / "o.safetensors")],
             ["train", "--plot", str(tmp_path / "no_run")]]
    for args in cases:
        done = subprocess.run([sys.executable, "-m", "mcodec.cli.main", *args], cwd=REPO,
                              env=_env(shared_data), capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mcodec: error:"), (args, done.stderr)
    assert "loss.chroma_wieght" in subprocess.run(
        [sys.executable, "-m", "mcodec.train", "--config", str(typo)], cwd=REPO, capture_output=True,
        text=True, timeout=120).stderr


def test_gradient_accumulation_trains_the_same_global_batch(shared_data: Path, tmp_path: Path) -> None:
    """accumulate = 2: two micro-batches of 2 per step, one optimizer step; the run trains."""
    config = _config(tmp_path, 2, accumulate=2)
    assert load_config(config).micro_batch(1) == 2
    done = _train(config, tmp_path / "acc", shared_data)
    assert done.returncode == 0, done.stderr[-3000:]
    ck = trainer.load_checkpoint(tmp_path / "acc")
    assert ck["step"] == 2
    init = trainer._codec_pair(load_config(config)).state_dict()
    moved = [k for k, v in ck["model"].items() if v.dtype.is_floating_point and v.shape == init[k].shape
             and not torch.equal(v, init[k])]
    assert moved and all(torch.isfinite(ck["model"][k]).all() for k in moved)
    recs = [json.loads(x) for x in (tmp_path / "acc" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2] and recs[-1]["samples_per_s"] > 0


def test_latent_stride_8_trains_exports_and_codes_as_fine_networks(run8: Path, shared_data: Path,
                                                                    tmp_path: Path) -> None:
    """model.latent_stride = 8 trains (random masks on its 8x8 latent grid), exports, and the
    bundle serves as a model's fine networks; on its own it is refused as main networks."""
    import dataclasses

    from mcodec.codec import codec, zoo
    from mcodec.codec.options import EncodeOptions, EncoderTuning

    from .conftest import synthetic_frames, write_clip

    config = tmp_path / "fine.toml"
    config.write_text(_config(tmp_path, 2).read_text().replace("context = true", "context = true\nlatent_stride = 8"))
    done = _train(config, tmp_path / "fine", shared_data)
    assert done.returncode == 0, done.stderr[-3000:]
    trainer.export(tmp_path / "fine", tmp_path / "fine.safetensors")
    trainer.export(run8, tmp_path / "main.safetensors")
    fine = zoo.networks_from_file(tmp_path / "fine.safetensors", model_id="f")
    assert fine.intra.config.latent_stride == 8
    nets = dataclasses.replace(zoo.networks_from_file(tmp_path / "main.safetensors", model_id="m"), fine=fine)
    src = write_clip(tmp_path / "in.y4m", synthetic_frames(48, 32, 3))
    upper = EncoderTuning(coding_scales=(2,), scene_cut_psnr=0)
    s = codec.encode(str(src), str(tmp_path / "x.bin"), options=EncodeOptions(quality=3, gop=3, tuning=upper),
                     networks=nets)
    d = codec.decode(str(tmp_path / "x.bin"), str(tmp_path / "x.y4m"), networks=nets)   # hash-verified
    assert s.frames == d.frames == 3
    with pytest.raises(ValueError, match="latent stride 16"):
        codec.encode(str(src), str(tmp_path / "y.bin"), options=EncodeOptions(quality=0), networks=fine)
