"""mcodec.train.integerize: calibration records what the reconstructions see, then goes away."""

from __future__ import annotations

import pytest
import torch

from mcodec.codec.intsynth import IntSynthesis
from mcodec.train import integerize


def test_calibration_records_every_reconstruction_and_restores_the_networks(nets, cars_cut) -> None:
    rec = integerize.calibrate(nets, [str(cars_cut)], [0, 3], log=lambda m: None)
    assert len(rec["intra"]) == 2  # one key frame per encode (the tiny model codes no residual)
    m = nets.intra.config.m
    assert all(x.dim() == 4 and x.shape[:2] == (1, m) for x in rec["intra"])
    y_hat = torch.round(torch.randn(1, m, 3, 4) * 2)
    with integerize.recording(nets) as direct:
        out = nets.inter.synthesize(y_hat, 1)
    gain = torch.exp(nets.inter.log_inv_gain.detach()[1]).view(1, -1, 1, 1)
    assert len(direct["inter"]) == 1 and not direct["intra"]
    assert torch.allclose(direct["inter"][0], y_hat * gain)
    assert torch.equal(out, nets.inter.synthesize(y_hat, 1))  # recording does not change it
    assert len(rec["intra.hyper"]) >= 2 and len(rec["intra.context"]) >= 2
    hs, anchors = rec["intra.context"][0]
    assert hs.shape[1] == 2 * m and anchors.shape[1] == m
    for net in (nets.intra, nets.inter):
        for hook in ("synthesize", "hyper_decode", "context_params"):
            assert hook not in vars(net)  # the recording hooks are gone
    synth = IntSynthesis.from_float(nets.intra.g_s, rec["intra"])
    assert all(b <= limit for b, limit in synth.check_bounds())


def test_an_addon_cannot_be_the_base() -> None:
    with pytest.raises(SystemExit, match="add-on"):
        integerize.main(["--base", "mcodec-s3i", "--out", "x.safetensors"])


def test_extract_fine_writes_the_float_fine_networks_as_a_plain_bundle(tmp_path) -> None:
    from mcodec.codec import zoo

    out = tmp_path / "fine.safetensors"
    assert integerize.main(["--extract-fine", "mcodec-s3f", "--out", str(out)]) == 0
    shipped = zoo.load_networks("mcodec-s3f").fine
    got = zoo.networks_from_file(out)
    assert got.fine is None and got.lambdas == shipped.lambdas
    assert got.intra.config.latent_stride == 8
    for name in ("intra", "inter"):
        want = getattr(shipped, name).state_dict()
        have = getattr(got, name).state_dict()
        assert want.keys() == have.keys()
        assert all(torch.equal(want[k], have[k]) for k in want)
    with pytest.raises(SystemExit, match="no fine networks"):
        integerize.main(["--extract-fine", "mcodec-s3i", "--out", str(tmp_path / "x.safetensors")])
