"""Intra codec: YUV packing, deterministic entropy path, exact decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcodec.codec import entropy as ent
from mcodec.codec.model import IntraCodec, ModelConfig, mse_yuv
from mcodec.codec.packing import STRIDE, tensor_to_yuv420, yuv420_to_tensor

REPO = Path(__file__).resolve().parents[1]


def _planes(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ch, cw = (h + 1) // 2, (w + 1) // 2
    return (rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(0, 256, (ch, cw), dtype=np.uint8),
            rng.integers(0, 256, (ch, cw), dtype=np.uint8))


def _smooth_frame(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Natural-ish content (smooth gradients + texture) so latents are non-trivial."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    y = 128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0) + rng.normal(0, 8, (h, w))
    ch, cw = (h + 1) // 2, (w + 1) // 2
    cy, cx = np.mgrid[0:ch, 0:cw]
    u = 128 + 30 * np.sin(cx / 5.0)
    v = 128 + 30 * np.cos(cy / 6.0)
    return tuple(np.clip(np.round(p), 0, 255).astype(np.uint8) for p in (y, u, v))


@pytest.mark.parametrize("h,w", [(1, 1), (1, 2), (3, 5), (17, 31), (16, 16), (240, 416), (121, 77)])
def test_yuv_tensor_round_trip_exact(h: int, w: int) -> None:
    y, u, v = _planes(h, w)
    x, geom = yuv420_to_tensor(y, u, v)
    assert x.dtype == torch.float32 and x.shape[:2] == (1, 6)
    assert x.shape[2] % STRIDE == 0 and x.shape[3] % STRIDE == 0
    assert geom.padded_height >= h and geom.padded_width >= w
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    y2, u2, v2 = tensor_to_yuv420(x, geom)
    assert np.array_equal(y, y2) and np.array_equal(u, u2) and np.array_equal(v, v2)


def test_yuv_tensor_layout_and_replicate_pad() -> None:
    y, u, v = _planes(5, 3)
    x, g = yuv420_to_tensor(y, u, v)
    assert torch.equal(x[0, 0, 0, :2] * 255, torch.tensor([y[0, 0], y[0, 2]], dtype=torch.float32))
    assert torch.equal(x[0, 3, 0, 0] * 255, torch.tensor(float(y[1, 1])))
    # Padding replicates the last row/column.
    assert float(x[0, 4, -1, -1]) * 255 == pytest.approx(float(u[-1, -1]))
    with pytest.raises(ValueError):
        yuv420_to_tensor(y, u[:1], v)
    with pytest.raises(ValueError):
        tensor_to_yuv420(x[:, :, :-1], g)


def test_tensor_to_yuv_rounds_and_clamps() -> None:
    y, u, v = _planes(4, 4)
    x, g = yuv420_to_tensor(y, u, v)
    x = x.clone()
    x[0, 0, 0, 0] = -0.3
    x[0, 1, 0, 0] = 1.7
    x[0, 4, 0, 0] = 100.4 / 255
    y2, u2, _ = tensor_to_yuv420(x, g)
    assert y2[0, 0] == 0 and y2[0, 1] == 255 and u2[0, 0] == 100


def test_mse_yuv_weighting() -> None:
    a = torch.zeros(1, 6, 8, 8)
    b = a.clone()
    b[:, :4] = 0.1  # luma error only
    assert float(mse_yuv(b, a)) == pytest.approx(6 / 8 * 0.01)
    b = a.clone()
    b[:, 4] = 0.1
    assert float(mse_yuv(b, a)) == pytest.approx(1 / 8 * 0.01)
    assert float(mse_yuv(b, a, chroma_weight=3.0)) == pytest.approx(3 / 8 * 0.01)
    b[:, :4] = 0.1  # the luma term does not scale with the chroma weight
    assert float(mse_yuv(b, a, chroma_weight=3.0)) == pytest.approx(9 / 8 * 0.01)


def test_entropy_param_grid() -> None:
    table = ent.scale_table()
    assert table.shape == (ent.SCALE_LEVELS,)
    assert float(table[0]) == pytest.approx(ent.SCALE_MIN) and float(table[-1]) == pytest.approx(ent.SCALE_MAX)
    log_s = torch.log(table).view(1, -1, 1, 1)
    p = ent.quantize_entropy_params(torch.zeros_like(log_s), log_s)
    assert torch.equal(p.indexes.view(-1), torch.arange(ent.SCALE_LEVELS, dtype=torch.int32))
    p = ent.quantize_entropy_params(torch.tensor([0.3, -1.2371, 5.0]).view(1, 3, 1, 1),
                                    torch.tensor([-50.0, 0.0, 50.0]).view(1, 3, 1, 1))
    assert p.indexes.view(-1).tolist()[0] == 0 and p.indexes.view(-1).tolist()[2] == ent.SCALE_LEVELS - 1
    assert torch.equal(p.means * ent.MEAN_GRID, torch.round(p.means * ent.MEAN_GRID))
    sym, y_hat = ent.quantize_latent(torch.tensor([1.26, -3.9, 5.0]).view(1, 3, 1, 1), p.means)
    assert torch.equal(y_hat, sym.float() + p.means)


def _tiny_model(seed: int = 0, context: bool = True) -> IntraCodec:
    torch.manual_seed(seed)
    model = IntraCodec(ModelConfig(n=16, m=16, levels=3, context=context)).eval()
    # Give the (untrained) hyper-decoder a non-trivial scale/mean spread.
    with torch.no_grad():
        for p in model.h_s.parameters():
            p.mul_(3.0)
        model.g_a[-1].weight.mul_(20.0)  # latents well above the quantizer step
        if context:  # a non-trivial checkerboard refinement (it starts at zero)
            torch.nn.init.normal_(model.cb_ep[-1].weight, std=0.1)
    model.update(force=True)
    return model


def _code(model: IntraCodec, x: torch.Tensor, q: int, threads: int):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        c = model.compress(x, q)
        return c, model.decompress(c.strings, c.shape, q)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("context", [True, False])
def test_compress_decompress_bit_exact_and_thread_independent(context: bool) -> None:
    model = _tiny_model(context=context)
    x, g = yuv420_to_tensor(*_smooth_frame(72, 100))
    for q in range(model.levels):
        c1, d1 = _code(model, x, q, 1)
        c2, d2 = _code(model, x, q, 2)
        assert c1.x_hat is not None and torch.equal(c1.x_hat, d1), "decoder differs from encoder"
        assert c1.strings == c2.strings and c1.shape == c2.shape
        assert len(c1.strings) == (3 if context else 2)
        assert torch.equal(d1, d2), "result depends on thread count"
        assert torch.equal(d1, _code(model, x, q, 2)[0].x_hat)
        # Eval-mode forward follows the coding path: same reconstruction, bits close to the stream.
        with torch.no_grad():
            out = model(x, q)  # float32 synthesis: equal up to the final 8-bit rounding
        assert float((out.x_hat.detach() - d1).abs().max()) <= 0.5 / 255 + 1e-5
        actual = 8 * sum(len(s) for s in c1.strings)
        assert abs(float(out.bits) - actual) < 0.1 * actual + 256
        y2, u2, v2 = tensor_to_yuv420(d1, g)
        assert y2.shape == (72, 100) and u2.shape == (36, 50)


def test_decode_needs_tables_and_valid_quality() -> None:
    torch.manual_seed(0)
    model = IntraCodec(ModelConfig(n=16, m=16, levels=2)).eval()
    x = torch.rand(1, 6, 16, 16)
    with pytest.raises(RuntimeError, match="update"):
        model.compress(x, 0)
    model.update()
    with pytest.raises(ValueError):
        model.compress(x, 2)
    with pytest.raises(ValueError):
        model.compress(torch.rand(1, 6, 12, 16), 0)
    c = model.compress(x, 1)
    with pytest.raises(ValueError):
        model.decompress(c.strings[:1], c.shape, 1)
    for bad_shape in ((0, 2), (2, 10**6)):
        with pytest.raises(ValueError):
            model.decompress(c.strings, bad_shape, 1)


def test_quality_changes_rate_in_tiny_model() -> None:
    """Gains are initialised on a sqrt(lambda) ladder: higher quality, more bits."""
    model = _tiny_model()
    x, _ = yuv420_to_tensor(*_smooth_frame(64, 64))
    sizes = [sum(len(s) for s in model.compress(x, q, reconstruct=False).strings)
             for q in range(model.levels)]
    assert sizes[0] < sizes[-1]


def test_shipped_intra_network_rate_and_quality_monotonic_in_level() -> None:
    """Real weights (the shipped model's intra network): file size and PSNR grow with
    the level, and decompress reproduces the encoder's reconstruction exactly."""
    from mcodec.codec.zoo import load_networks

    model = load_networks().intra
    x, _ = yuv420_to_tensor(*_smooth_frame(240, 416))
    sizes, mses = [], []
    for q in range(model.levels):
        c = model.compress(x, q)
        assert torch.equal(model.decompress(c.strings, c.shape, q), c.x_hat)
        sizes.append(sum(len(s) for s in c.strings))
        mses.append(float(mse_yuv(c.x_hat, x)))
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes
    assert all(a > b for a, b in zip(mses, mses[1:])), mses


# ----------------------------------------------------------------------------- MAE latent masking


def _masks(rows: int, cols: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"random": torch.rand(rows, cols, generator=g) < 0.4,
            "all": torch.ones(rows, cols, dtype=torch.bool),
            "none": torch.zeros(rows, cols, dtype=torch.bool)}


@pytest.mark.parametrize("context", [True, False])
def test_masked_compress_decompress_bit_exact(context: bool) -> None:
    model = _tiny_model(context=context)
    x, _ = yuv420_to_tensor(*_smooth_frame(72, 100))   # latent grid 5 x 7
    q = 1
    plain = model.compress(x, q)
    assert model.num_strings == len(plain.strings) == (3 if context else 2)
    size = lambda c: sum(len(s) for s in c.strings[:-1])  # y strings only
    for name, mask in _masks(*plain.shape).items():
        c = model.compress(x, q, mask=mask)
        assert len(c.strings) == model.num_strings and c.shape == plain.shape
        d = model.decompress(c.strings, c.shape, q, mask=mask)
        assert c.x_hat is not None and torch.equal(c.x_hat, d), name
        assert c.strings[-1] == plain.strings[-1]  # z does not depend on the mask
        if name == "none":
            assert c.strings == plain.strings and torch.equal(c.x_hat, plain.x_hat)
        else:
            assert size(c) < size(plain), name
        if name == "all":
            assert size(c) == 0
    # Masked latents decode to the means: the masked reconstruction differs from the plain one.
    c = model.compress(x, q, mask=_masks(*plain.shape)["random"])
    assert not torch.equal(c.x_hat, plain.x_hat)


def test_mask_changes_only_context_neighbours_and_validates() -> None:
    model = _tiny_model()
    x, _ = yuv420_to_tensor(*_smooth_frame(64, 64))
    c = model.compress(x, 0)
    with pytest.raises(ValueError):
        model.compress(x, 0, mask=torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError):
        model.compress(x, 0, mask=torch.zeros(4, 4))  # not bool
    with pytest.raises(ValueError):
        model.decompress(c.strings, c.shape, 0, mask=torch.ones(4, 5, dtype=torch.bool))
    # All-masked anchors: the first string is empty; a garbage string there is refused.
    mask = torch.ones(4, 4, dtype=torch.bool)
    cm = model.compress(x, 0, mask=mask)
    assert cm.strings[0] == b"" and cm.strings[1] == b""
    with pytest.raises(ValueError):
        model.decompress((b"x", *cm.strings[1:]), cm.shape, 0, mask=mask)


def test_eval_forward_with_mask_follows_coding_path() -> None:
    model = _tiny_model()
    x, _ = yuv420_to_tensor(*_smooth_frame(72, 100))
    mask = _masks(5, 7)["random"]
    c = model.compress(x, 2, mask=mask)
    with torch.no_grad():
        out = model(x, 2, mask=mask[None])
    assert float((out.x_hat - c.x_hat).abs().max()) <= 0.5 / 255 + 1e-5
    # Masked positions cost nothing: their likelihoods are exactly 1.
    assert torch.all(out.likelihoods.y[0][:, mask] == 1.0)
    actual = 8 * sum(len(s) for s in c.strings)
    assert abs(float(out.bits) - actual) < 0.1 * actual + 256


def test_training_forward_mask_no_rate_and_gradients() -> None:
    torch.manual_seed(0)
    model = IntraCodec(ModelConfig(n=16, m=16, levels=2)).train()
    x = torch.rand(2, 6, 32, 32)
    full = torch.ones(2, 4, 4, dtype=torch.bool)
    out = model(x, 1, mask=full)
    z_bits = -torch.log2(out.likelihoods.z).sum(dim=(1, 2, 3))
    assert torch.allclose(out.bits, z_bits)  # y costs nothing when everything is masked
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, :2] = True
    out = model(x, 1, mask=mask)
    assert torch.all(out.likelihoods.y[0][:, :2] == 1.0) and torch.all(out.likelihoods.y[1] < 1.0)
    loss = mse_yuv(out.x_hat, x).mean() * 100 + out.bits.mean() / 1000
    loss.backward()
    assert model.g_s[0].weight.grad is not None and model.h_s[-1].bias.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        model(x, 1, mask=torch.zeros(3, 4, 4, dtype=torch.bool))


@pytest.mark.parametrize("context", [True, False])
def test_position_bits_match_stream(context: bool) -> None:
    model = _tiny_model(context=context)
    x, _ = yuv420_to_tensor(*_smooth_frame(96, 128))
    for q in range(model.levels):
        bits = model.estimate(x, q).position_bits
        c = model.compress(x, q, reconstruct=False)
        assert bits.shape == c.shape and bits.dtype == torch.float32
        assert torch.all(bits >= 0)
        y_bits = 8 * sum(len(s) for s in c.strings[:-1])
        assert abs(float(bits.sum()) - y_bits) <= 0.1 * y_bits + 64, (q, float(bits.sum()), y_bits)


def test_estimate_matches_compress_closely() -> None:
    """The encoder's decision estimate: same rate model, near-identical reconstruction."""
    import torch

    from mcodec.codec import model as mdl

    torch.manual_seed(0)
    net = mdl.IntraCodec(mdl.ModelConfig(n=16, m=16, levels=4)).eval()
    net.update()
    x = torch.rand(1, 6, 32, 48)
    est = net.estimate(x, 2)
    comp = net.compress(x, 2)
    assert est.position_bits.shape == (4, 6)
    assert abs(est.total_bits - 8 * sum(len(s) for s in comp.strings)) < 0.1 * est.total_bits + 64
    assert (est.x_hat - comp.x_hat).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("context", [True, False])
def test_compress_reusing_the_estimates_analysis_is_byte_identical(context: bool) -> None:
    """The encoder codes a frame after estimating it: `compress(..., analysis=)` skips the
    second analysis and, unless a masked anchor changes the context, the entropy
    parameters; the strings and reconstruction must be exactly those of a fresh compress."""
    from mcodec.codec import latent_encoder as le
    from mcodec.codec.latent_decoder import anchor_mask

    model = _tiny_model(context=context)
    x, _ = yuv420_to_tensor(*_smooth_frame(72, 100))   # latent grid 5 x 7
    q = 1
    est = model.estimate(x, q)
    masks = {**_masks(5, 7), "non-anchors": ~anchor_mask(5, 7), None: None}
    for name, mask in masks.items():
        fresh = model.compress(x, q, mask=mask, packed=True)
        reused = model.compress(x, q, mask=mask, packed=True, analysis=est.analysis)
        assert reused.strings == fresh.strings and torch.equal(reused.x_hat, fresh.x_hat), name
    assert le._mask_changes_params(model, _masks(5, 7)["random"], 5, 7) == context
    assert not le._mask_changes_params(model, ~anchor_mask(5, 7), 5, 7)
    with pytest.raises(ValueError, match="another frame or quality"):
        model.compress(x, q + 1, analysis=est.analysis)
    with pytest.raises(ValueError, match="another frame or quality"):
        model.compress(x[..., :32], q, analysis=est.analysis)


@pytest.mark.parametrize("context", [True, False])
def test_packed_string_decodes_exactly_and_is_smaller(context: bool) -> None:
    """Version-4 frames carry one rANS string (z, then each y pass): the same
    reconstruction as the per-pass strings, a few bytes fewer (one flush instead of 2-3)."""
    model = _tiny_model(context=context)
    x, _ = yuv420_to_tensor(*_smooth_frame(72, 100))
    q = 1
    for name, mask in _masks(5, 7).items():
        plain = model.compress(x, q, mask=mask)
        packed = model.compress(x, q, mask=mask, packed=True)
        assert len(packed.strings) == model.strings_per_frame(True) == 1
        assert torch.equal(plain.x_hat, packed.x_hat), name
        d = model.decompress(packed.strings, packed.shape, q, mask=mask, packed=True)
        assert torch.equal(d, packed.x_hat), name
        # One flush instead of one per non-empty string (all masked: only z is coded).
        assert len(packed.strings[0]) < sum(map(len, plain.strings)) or name == "all", name
        with pytest.raises(ValueError):
            model.decompress(plain.strings, plain.shape, q, mask=mask, packed=True)
    # Garbage of any length decodes to something (bounded reads) or raises ValueError.
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 64):
        try:
            model.decompress((rng.bytes(n),), (5, 7), q, packed=True)
        except ValueError:
            pass


def test_latent_stride_8_puts_one_latent_on_each_8x8_patch_and_codes_exactly() -> None:
    """ModelConfig.latent_stride 8: the parameter shapes of stride 16 but for the two stride-1
    layers (3x3: so a stride-16 network initialises the rest), a latent per 8x8 luma patch, the exact coding path round trip, and the config's
    JSON unchanged for the default (old bundles keep their bytes)."""
    torch.manual_seed(0)
    fine = IntraCodec(ModelConfig(n=16, m=16, levels=2, latent_stride=8)).eval()
    coarse = IntraCodec(ModelConfig(n=16, m=16, levels=2))
    a, b = fine.state_dict(), coarse.state_dict()
    assert a.keys() == b.keys()
    assert [k for k in a if a[k].shape != b[k].shape] == ["g_a.2.weight", "g_s.4.weight"]
    assert a["g_s.4.weight"].shape[2:] == (3, 3) and b["g_s.4.weight"].shape[2:] == (5, 5)
    fine.update(force=True)
    x, _ = yuv420_to_tensor(*_smooth_frame(40, 24), stride=fine.config.tensor_stride)
    assert x.shape == (1, 6, 20, 12)                           # padded to multiples of 8 luma, not 16
    c = fine.compress(x, 1)
    assert c.shape == (5, 3)                                   # 40x24 luma / 8
    assert torch.equal(fine.decompress(c.strings, c.shape, 1), c.x_hat)
    with pytest.raises(ValueError, match="multiples of 4"):
        fine.compress(torch.rand(1, 6, 18, 12), 0)
    with pytest.raises(ValueError, match="latent_stride"):
        ModelConfig(latent_stride=4)
    assert "latent_stride" not in ModelConfig().to_json()
    assert ModelConfig.from_json(fine.config.to_json()) == fine.config
