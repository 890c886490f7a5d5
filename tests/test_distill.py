"""mcodec.train.distill: fine networks start from a stride-16 model; only their two ends learn."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mcodec.codec import zoo
from mcodec.train import distill

REPO = Path(__file__).resolve().parents[1]


def test_upsampled_is_the_codecs_2x_upsampling() -> None:
    from mcodec.codec.frame import Frame
    from mcodec.codec.resample import upsample_frame
    from mcodec.train.data import planes_to_s2d, s2d_to_planes

    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2, 6, 8, 12), dtype=np.uint8)
    up = distill.upsampled(batch)
    assert up.shape == (2, 6, 16, 24)
    assert np.array_equal(up[1], planes_to_s2d(*upsample_frame(Frame(*s2d_to_planes(batch[1]))).planes()))


def test_distillation_trains_only_the_head_and_tail(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    text = (REPO / "configs" / "smoke.toml").read_text()
    text = text.replace("n = 16", "n = 64").replace("m = 16", "m = 96").replace(
        "context = true", "context = true\nlatent_stride = 8").replace(
        "lambdas = [0.002, 0.008, 0.03, 0.1]",
        "lambdas = [0.0010, 0.0019, 0.0037, 0.0072, 0.0139, 0.0268, 0.0518, 0.1000]")
    config = tmp_path / "f8.toml"
    config.write_text(text)
    monkeypatch.setenv("MCODEC_DATA", str(shared_data))
    out = tmp_path / "d.safetensors"
    assert distill.main(["--config", str(config), "--out", str(out), "--steps", "2", "--batch", "2",
                         "--threads", "1"]) == 0
    fine = zoo.networks_from_file(out)
    base = zoo.load_networks("mcodec-s3")
    assert fine.intra.config.latent_stride == 8 and fine.lambdas == base.lambdas
    for name in ("intra", "inter"):
        a, b = getattr(fine, name).state_dict(), getattr(base, name).state_dict()
        learned = [k for k in a if k.startswith(("g_a.0.", "g_a.1.", "g_a.2.", "g_a.3.",
                                                  "g_s.4.", "g_s.5.", "g_s.6."))]
        kept = [k for k in a if k not in learned and a[k].dtype.is_floating_point
                and not k.endswith(("_quantized_cdf", "_cdf_length", "_offset", "scale_table"))]
        assert kept and all(torch.equal(a[k], b[k]) for k in kept), name
        assert a["g_s.4.weight"].shape[2:] == (3, 3)
        assert any(not torch.equal(a[k], b[k]) for k in learned), name
    assert os.path.getsize(out) > 0
