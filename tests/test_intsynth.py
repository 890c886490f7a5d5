"""The exact integer synthesis (mcodec.codec.intsynth): bounds, worst-case exactness, fidelity,
storage, and whole decodes with it in separate processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mcodec.codec import codec, zoo
from mcodec.codec import model as mdl
from mcodec.codec.intsynth import ACC_LIMIT, IntConv, IntSynthesis
from mcodec.codec.options import EncodeOptions
from tests.conftest import synthetic_frames, tiny_bundle, write_clip


def _latents(m: int, n: int, seed: int, rows: int = 6, cols: int = 8) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.round(torch.randn(1, m, rows, cols, generator=g) * 3) for _ in range(n)]


@pytest.fixture(scope="module", params=[1, 4])
def tiny_synth(nets, request) -> IntSynthesis:
    return IntSynthesis.from_float(nets.intra.g_s, _latents(nets.intra.config.m, 4, seed=1),
                                   chunks=request.param)


def test_every_accumulation_is_within_float32_exact_range(tiny_synth) -> None:
    bounds = tiny_synth.check_bounds()
    assert len(bounds) == 5  # three convolutions, two inverse GDNs
    assert all(0 < b <= limit == ACC_LIMIT for b, limit in bounds)


def test_worst_case_input_accumulates_exactly_in_float32(tiny_synth) -> None:
    """Activations at +-amax with the signs of one output's weights reach the proven bound;
    the float32 convolution must still equal the exact integer sum (float64 of integers)."""
    for conv, _ in tiny_synth.stages:
        w = conv.weight
        if conv.transposed:  # output channel 0, phase (0, 0): taps 0, 2, 4 of each input
            k = w.shape[-1]
            sign = torch.sign(w[:, 0])  # (in, k, k)
            a = torch.zeros(1, w.shape[0], 5, 5)
            # input (i, j) reaches output (2i - pad + ky, ...): fill every input with the
            # sign of the tap that lands on the centre output
            centre = 4
            for i in range(5):
                for j in range(5):
                    ky, kx = centre + conv.padding - 2 * i, centre + conv.padding - 2 * j
                    if 0 <= ky < k and 0 <= kx < k:
                        a[0, :, i, j] = sign[:, ky, kx] * conv.amax
        else:
            sign = torch.sign(w[0])  # (in, k, k)
            a = sign.unsqueeze(0) * conv.amax
        parts = conv.accumulate(a)
        assert len(parts) == conv.chunks
        size = a.shape[1] // conv.chunks
        for g, got in enumerate(parts):
            sl = slice(g * size, (g + 1) * size)
            x, wg = a[:, sl].double(), (w[sl] if conv.transposed else w[:, sl]).double()
            exact = (F.conv_transpose2d(x, wg, None, conv.stride, conv.padding, conv.output_padding)
                     if conv.transposed else F.conv2d(x, wg, None, conv.stride, conv.padding))
            assert torch.equal(got.double(), exact)
            assert float(exact.abs().max()) <= conv.bound() <= ACC_LIMIT


def test_a_bound_over_the_limit_is_refused() -> None:
    w = torch.full((1, 4, 3, 3), 1000.0)
    conv = IntConv(w, torch.ones(1, 1), torch.zeros(1), torch.ones(4), amax=2000, transposed=False,
                   stride=1, padding=1, output_padding=0)
    assert conv.bound() == 4 * 9 * 1000 * 2000 > ACC_LIMIT
    with pytest.raises(ValueError, match="2\\^24"):
        IntSynthesis(torch.nn.Identity(), [(conv, None)])


def test_close_to_the_float64_synthesis(nets, tiny_synth) -> None:
    x = _latents(nets.intra.config.m, 1, seed=9)[0].double()
    ref = torch.round(mdl._run_float64(nets.intra.g_s, x).clamp(0, 1) * 255)
    out = tiny_synth(x) * 255
    assert torch.equal(out, torch.round(out))  # on the 8-bit grid
    assert float((out.double() - ref).abs().max()) <= 3
    mse = float(((out.double() - ref) ** 2).mean())
    assert mse < 0.5


def test_tensors_round_trip(nets, tiny_synth) -> None:
    tensors = tiny_synth.to_tensors("intra.int.")
    w = tiny_synth.stages[0][0].weight
    # int16 when every integer weight fits (these do), else int32; read back either way
    assert float(w.abs().max()) <= 32767 and tensors["intra.int.0.weight"].dtype == torch.int16
    assert torch.equal(tensors["intra.int.0.weight"].to(torch.float32), w)
    back = IntSynthesis.from_tensors(nets.intra.g_s[:2], tensors, "intra.int.")
    x = _latents(nets.intra.config.m, 1, seed=3)[0].double()
    assert torch.equal(back(x), tiny_synth(x))
    with pytest.raises(ValueError, match="no integer network"):
        IntSynthesis.from_tensors(nets.intra.g_s[:2], tensors, "inter.int.")


def test_thread_count_does_not_change_the_output(tiny_synth, nets) -> None:
    x = _latents(nets.intra.config.m, 1, seed=4, rows=12, cols=20)[0].double()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = tiny_synth(x)
        torch.set_num_threads(max(2, threads))
        two = tiny_synth(x)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


# ----------------------------------------------------------------------------- add-on bundles

_DECODE = """
import sys, hashlib, torch
torch.set_num_threads(int(sys.argv[4]))
from mcodec.codec import codec, zoo
nets = zoo.networks_from_file(sys.argv[1], model_id="tiny-int")
assert nets.intra.int_synthesis is not None and nets.inter.int_synthesis is not None
assert nets.intra.int_hyper is not None and nets.inter.int_context is not None
codec.decode(sys.argv[2], sys.argv[3], networks=nets)
print(hashlib.sha256(open(sys.argv[3], "rb").read()).hexdigest())
"""


@pytest.fixture(scope="module")
def int_bundle(tmp_path_factory) -> Path:
    """A tiny bundle with integer syntheses merged in (as load_networks merges an add-on)."""
    from safetensors.torch import load, save

    from mcodec.train import integerize

    d = tmp_path_factory.mktemp("intmodel")
    base = tiny_bundle(d / "base.safetensors")
    nets = zoo.networks_from_file(str(base))
    clip = tmp_path_factory.getbasetemp() / "calib.y4m"
    write_clip(clip, synthetic_frames(64, 48, 3, seed=5))
    rec = integerize.calibrate(nets, [str(clip)], [0, 3], log=lambda m: None)
    rec["inter"] = rec["inter"] or _latents(nets.intra.config.m, 4, seed=2)  # the tiny model codes no residual
    entry = zoo.ModelEntry("tiny", "base.safetensors", hashlib.sha256(base.read_bytes()).hexdigest(), 4, "t")
    addon = d / "addon.safetensors"
    zoo.save_integer_addon(integerize.integer_parts(nets.intra, rec, "intra"),
                           integerize.integer_parts(nets.inter, rec, "inter"), entry, addon)
    data = base.read_bytes()
    meta = zoo.safetensors_metadata(data)
    merged = d / "merged.safetensors"
    merged.write_bytes(save({**load(data), **load(addon.read_bytes())}, metadata=meta))
    assert zoo.safetensors_metadata(addon.read_bytes())["base_sha256"] == entry.sha256
    return merged


def test_integer_model_round_trip_exact_in_other_processes(int_bundle, cars_cut, tmp_path: Path) -> None:
    nets = zoo.networks_from_file(str(int_bundle), model_id="tiny-int")
    out = tmp_path / "s.bin"
    enc = codec.encode(str(cars_cut), str(out), options=EncodeOptions(quality=2, gop=4), networks=nets)
    local = tmp_path / "local.y4m"
    codec.decode(str(out), str(local), networks=nets)
    want = hashlib.sha256(local.read_bytes()).hexdigest()
    for threads in (1, 2):
        dec = tmp_path / f"d{threads}.y4m"
        r = subprocess.run([sys.executable, "-c", _DECODE, str(int_bundle), str(out), str(dec), str(threads)],
                           check=False, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == want
    assert enc.frames == 6


def test_shipped_integer_model_loads_with_proven_bounds() -> None:
    entry = zoo.get_model()
    assert entry.base is not None, "the default model ships integer networks"
    nets = zoo.load_networks(entry.model_id)
    for net in (nets.intra, nets.inter):
        chains = [net.int_synthesis, net.int_hyper, *net.int_context]
        assert all(c is not None for c in chains)
        assert all(b <= limit for c in chains for b, limit in c.check_bounds())


def test_integer_entropy_parameters_match_the_float64_ones_closely(nets, int_bundle) -> None:
    """Same network, float64 against integer entropy path: the snapped parameters agree almost
    everywhere (they are allowed to differ: both sides of the coder use the same path)."""
    ints = zoo.networks_from_file(str(int_bundle), model_id="tiny-int")
    z = torch.round(torch.randn(1, nets.intra.config.n, 3, 4, generator=torch.Generator().manual_seed(7)))
    ref = nets.intra.entropy_parameters(z, 2, (12, 16))
    got = ints.intra.entropy_parameters(z, 2, (12, 16))
    step = (ref.indexes - got.indexes).abs()
    assert float((step > 0).float().mean()) < 0.15 and int(step.max()) <= 1  # 0.12-nat table steps
    assert float((ref.means - got.means).abs().max()) < 0.5


def test_addon_for_other_base_weights_is_refused(monkeypatch) -> None:
    entry = zoo.get_model()
    base = zoo.get_model(entry.base)
    fake = zoo.ModelEntry(base.model_id, base.filename, "0" * 64, base.quality_levels, base.description)
    monkeypatch.setattr(zoo, "MODELS", tuple(fake if e.model_id == base.model_id else e for e in zoo.MODELS))
    with pytest.raises(zoo.ModelError, match="extends"):
        zoo.load_networks(entry.model_id)
