"""The CompressAI-free encoder (`mcodec.codec.latent_encoder`, `zoo.load_encoders`).

* `mcodec encode`'s path imports no CompressAI package and writes real streams of the
  shipped model byte-identical to those of its full `IntraCodec`s, in a fresh process;
* `LatentEncoder.estimate` / `.compress` equal `IntraCodec`'s tensor for tensor and
  byte for byte (both layers, every quality, masks, packed and not, reused analysis);
* the stored GDN (`latent_decoder.StoredGDN`) equals CompressAI's layer bit for bit in float32
  (forward and inverse);
* models without integer networks fall back to the full networks; a bundle with a
  missing tensor is a ModelError.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mcodec.codec import codec, zoo
from mcodec.codec.latent_decoder import stored_gdn
from mcodec.codec.latent_encoder import LatentEncoder
from mcodec.codec.model import IntraCodec
from mcodec.codec.options import EncodeOptions
from mcodec.errors import ModelError

from .conftest import frame_tensor

ENCODE_IN_CHILD = """
import sys
from mcodec.codec import codec
from mcodec.codec.options import EncodeOptions
codec.encode(sys.argv[1], sys.argv[2], options=EncodeOptions(quality=int(sys.argv[3]), structure=sys.argv[4],
             gop=8), overwrite=True)
assert "compressai" not in sys.modules, "the encoder imported the compressai package"
"""


@pytest.fixture(scope="module")
def full():
    """The default model's full networks (IntraCodec, CompressAI)."""
    return zoo.load_networks()


@pytest.fixture(scope="module")
def lite():
    return zoo.load_encoders()


def test_default_model_encodes_with_latent_encoders(lite) -> None:
    for nets in (lite, lite.fine):
        assert nets is not None
        assert isinstance(nets.intra, LatentEncoder) and isinstance(nets.inter, LatentEncoder)
        assert nets.model_id == zoo.DEFAULT_MODEL_ID and nets.levels == 8
    assert (lite.tensor_stride, lite.fine.tensor_stride) == (8, 4)
    dec = lite.decoders()
    assert dec.intra is lite.intra.decoder and dec.fine.inter is lite.fine.inter.decoder


@pytest.mark.parametrize("quality,structure", [(1, "lowdelay"), (8, "randomaccess")])
def test_real_stream_encodes_without_compressai_identically(full, dev_cut, tmp_path: Path,
                                                            quality, structure) -> None:
    src = dev_cut(5)
    want = tmp_path / "full.bin"
    codec.encode(str(src), str(want), options=EncodeOptions(quality=quality, structure=structure, gop=8),
                 networks=full)
    got = tmp_path / "lite.bin"
    done = subprocess.run([sys.executable, "-c", ENCODE_IN_CHILD, str(src), str(got), str(quality), structure],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert got.read_bytes() == want.read_bytes()


@pytest.mark.parametrize("layer", ["main", "fine"])
def test_estimate_and_compress_identical_to_intracodec(full, lite, dev_cut, layer) -> None:
    x = frame_tensor(dev_cut)
    if layer == "fine":
        full, lite = full.fine, lite.fine
    rows, cols = x.shape[2] // lite.tensor_stride, x.shape[3] // lite.tensor_stride
    g = torch.Generator().manual_seed(3)
    for name in ("intra", "inter"):
        ref: IntraCodec = getattr(full, name)
        enc: LatentEncoder = getattr(lite, name)
        for q in range(ref.levels):
            a, b = ref.estimate(x, q), enc.estimate(x, q)
            assert torch.equal(a.x_hat, b.x_hat) and torch.equal(a.position_bits, b.position_bits)
            assert a.total_bits == b.total_bits
            assert torch.equal(a.analysis.y, b.analysis.y) and torch.equal(a.analysis.z_sym, b.analysis.z_sym)
            for packed in (False, True):
                mask = None if q % 3 == 0 else torch.rand(rows, cols, generator=g) < 0.4
                c = ref.compress(x, q, mask=mask, packed=packed)
                for analysis in (None, b.analysis):
                    d = enc.compress(x, q, mask=mask, packed=packed, analysis=analysis)
                    assert d.strings == c.strings and torch.equal(d.x_hat, c.x_hat), (name, q, packed)
        with pytest.raises(ValueError, match="quality"):
            enc.compress(x, ref.levels)
        with pytest.raises(ValueError, match="multiples"):
            enc.estimate(x[..., :x.shape[3] - 2], 0)


@pytest.mark.parametrize("inverse", [False, True])
def test_stored_gdn_matches_compressai_bit_for_bit_in_float32(inverse: bool) -> None:
    from compressai.layers import GDN

    torch.manual_seed(0)
    ref = GDN(8, inverse=inverse).eval()
    with torch.no_grad():
        ref.beta.uniform_(0.5, 2.0)
        ref.gamma.uniform_(0.0, 0.4)
    tensors = {"g." + k: v for k, v in ref.state_dict().items()}
    ours = stored_gdn(tensors, "g.", inverse)
    x = torch.randn(1, 8, 17, 23) * 3
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))


def test_model_without_integer_networks_encodes_with_intracodec() -> None:
    nets = zoo.load_encoders("mcodec-s3")
    assert isinstance(nets.intra, IntraCodec) and nets.model_id == "mcodec-s3"


def test_missing_encoder_tensor_is_a_model_error() -> None:
    entry = zoo.get_model()
    merged, meta = zoo._bundle(entry)
    for key in ("intra.g_a.0.weight", "inter.h_a.2.bias", "intra.g_a.1.beta",
                zoo.FINE_PREFIX + "inter.g_s.5.gamma", zoo.FINE_PREFIX + "intra.log_hgain"):
        assert key in merged
        broken = {k: v for k, v in merged.items() if k != key}
        with pytest.raises(ModelError, match="bad encoder tensors"):
            zoo.encoders_from_tensors(broken, meta, entry.model_id, entry.digest)


@pytest.mark.parametrize("layer", ["main", "fine"])
def test_masked_estimate_is_what_the_masked_stream_costs_and_gives(lite, dev_cut, layer) -> None:
    """`estimate(mask=...)`: masked positions cost 0 bits and take the mean; the estimate
    is close to the coded frame and its bits to the coded string; a reused analysis
    changes nothing; a mask of non-anchors leaves the visible positions' bits as they were."""
    from mcodec.codec.latent_decoder import anchor_mask

    x = frame_tensor(dev_cut)
    nets = lite.fine if layer == "fine" else lite
    net = nets.inter
    rows, cols = x.shape[2] // nets.tensor_stride, x.shape[3] // nets.tensor_stride
    mask = torch.rand(rows, cols, generator=torch.Generator().manual_seed(5)) < 0.5
    for q in (1, 6):
        plain = net.estimate(x, q)
        masked = net.estimate(x, q, mask=mask)
        assert torch.equal(masked.position_bits[mask], torch.zeros(int(mask.sum())))
        reused = net.estimate(x, q, mask=mask, analysis=plain.analysis)
        assert torch.equal(reused.x_hat, masked.x_hat) and reused.total_bits == masked.total_bits
        assert masked.total_bits < plain.total_bits
        coded = net.compress(x, q, mask=mask, packed=True)
        # float32 synthesis against the exact one: a few 8-bit steps at most
        assert float((coded.x_hat - masked.x_hat).abs().max()) <= 3 / 255
        assert float((coded.x_hat - plain.x_hat).abs().max()) > 3 / 255   # the mask does matter
        real = 8 * len(coded.strings[0])
        assert abs(masked.total_bits - real) <= 0.05 * real + 64, (masked.total_bits, real)
        # A masked estimate's analysis carries the unmasked parameters: reused for another
        # mask (or none) it gives the stream a fresh compression gives.
        fresh = net.estimate(x, q, mask=mask | anchor_mask(rows, cols))
        for other in (None, mask):
            want = net.compress(x, q, mask=other, packed=True)
            got = net.compress(x, q, mask=other, packed=True, analysis=fresh.analysis)
            assert got.strings == want.strings and torch.equal(got.x_hat, want.x_hat)
        non_anchor = mask & ~anchor_mask(rows, cols)
        na = net.estimate(x, q, mask=non_anchor, analysis=plain.analysis)
        visible = ~non_anchor
        assert torch.equal(na.position_bits[visible], plain.position_bits[visible])
