"""The CompressAI-free decoder (`mcodec.codec.latent_decoder`, `zoo.load_decoders`).

* `mcodec decode`'s path imports no CompressAI package (only its compiled rANS
  extension) and decodes real streams of the shipped model (key, predicted with
  masks, bi frames; 1x and 2x) hash-verified, byte-identical to the full model's
  decode, in fresh processes at 1 and 2 threads;
* `LatentDecoder.decompress` equals `IntraCodec.decompress` bit for bit on the
  same strings (random masks, every quality, packed and not);
* its float64 inverse GDN equals CompressAI's layer bit for bit;
* models without integer networks fall back to the full networks; a bundle with a
  missing tensor is a ModelError.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mcodec.codec import codec, zoo
from mcodec.codec.latent_decoder import InverseGDN64, LatentDecoder
from mcodec.codec.model import IntraCodec
from mcodec.codec.options import EncodeOptions
from mcodec.errors import ModelError

from .conftest import frame_tensor

DECODE_IN_CHILD = """
import hashlib, sys
import torch
torch.set_num_threads(int(sys.argv[3]))
from mcodec.codec import codec
codec.decode(sys.argv[1], sys.argv[2], overwrite=True)
assert "compressai" not in sys.modules, "the decoder imported the compressai package"
assert "compressai.ans" in sys.modules
# a later import of the whole package still works, shares the extension, and codes
from compressai import ans
from compressai.entropy_models import EntropyBottleneck
assert ans is sys.modules["compressai.ans"]
eb = EntropyBottleneck(2).eval()
eb.update(force=True)
z = torch.round(torch.randn(1, 2, 3, 3) * 2)
assert torch.equal(eb.decompress(eb.compress(z), (3, 3)), z)
print(hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest())
"""


@pytest.fixture(scope="module")
def shipped():
    """The default model's full networks (encoder side)."""
    return zoo.load_networks()


@pytest.fixture(scope="module")
def decoders():
    return zoo.load_decoders()


FINE_MODEL = "mcodec-s3f"   # the model with fine networks (latent stride 8)


@pytest.fixture(scope="module")
def fine_shipped():
    return zoo.load_networks(FINE_MODEL)


def test_fine_model_decodes_with_latent_decoders_in_both_layers() -> None:
    dec = zoo.load_decoders(FINE_MODEL)
    assert dec.fine is not None and dec.fine.tensor_stride == 4 and dec.tensor_stride == 8
    for d in (dec, dec.fine):
        assert isinstance(d.intra, LatentDecoder) and isinstance(d.inter, LatentDecoder)
        assert d.model_id == FINE_MODEL and d.levels == 8


def test_default_model_decodes_with_latent_decoders(decoders) -> None:
    assert isinstance(decoders.intra, LatentDecoder) and isinstance(decoders.inter, LatentDecoder)
    assert decoders.model_id == zoo.DEFAULT_MODEL_ID
    assert decoders.digest == zoo.get_model().digest and decoders.levels == 8


# q1 and q4: the default model (1x; q4 coded at 2x); q8 and q9 of the fine model offer
# only its upper layer, the fine networks.
@pytest.mark.parametrize("model,quality,structure,frames", [
    ("default", 1, "randomaccess", 6), ("default", 4, "lowdelay", 3),
    ("fine", 8, "lowdelay", 3), ("fine", 9, "randomaccess", 5)])
def test_real_stream_decodes_without_compressai_identically(shipped, fine_shipped, dev_cut, tmp_path: Path,
                                                            model, quality, structure, frames) -> None:
    if model == "fine":
        shipped = fine_shipped
    src = dev_cut(frames)
    stream = tmp_path / "s.bin"
    codec.encode(str(src), str(stream), options=EncodeOptions(quality=quality, structure=structure, gop=8),
                 networks=shipped)
    if model == "fine":   # every frame in the fine networks' layer
        from mcodec.codec import bitstream as bs

        coded = bs.read_bitstream(str(stream))
        assert coded.header.coding.flags & bs.CODING_FLAG_FINE
        assert all(f.flags & bs.FRAME_FLAG_SCALE2 for f in coded.frames)
    full = tmp_path / "full.y4m"   # the full networks' decode, in this process
    codec.decode(str(stream), str(full), networks=shipped)
    want = hashlib.sha256(full.read_bytes()).hexdigest()
    for threads in (1, 2):
        out = tmp_path / f"lite{threads}.y4m"
        done = subprocess.run([sys.executable, "-c", DECODE_IN_CHILD, str(stream), str(out), str(threads)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr   # every frame hash matched the encoder's
        assert done.stdout.strip() == want


@pytest.mark.parametrize("layer", ["main", "fine"])
def test_decompress_bit_identical_to_intracodec(shipped, decoders, fine_shipped, dev_cut, layer) -> None:
    x = frame_tensor(dev_cut)
    if layer == "fine":
        shipped, decoders = fine_shipped.fine, zoo.load_decoders(FINE_MODEL).fine
    rows, cols = x.shape[2] // decoders.tensor_stride, x.shape[3] // decoders.tensor_stride
    g = torch.Generator().manual_seed(5)
    for name in ("intra", "inter"):
        full: IntraCodec = getattr(shipped, name)
        lite: LatentDecoder = getattr(decoders, name)
        for q in range(full.levels):
            for packed in (False, True):
                mask = None if q % 3 == 0 else torch.rand(rows, cols, generator=g) < 0.4
                c = full.compress(x, q, mask=mask, packed=packed)
                got = lite.decompress(c.strings, c.shape, q, mask=mask, packed=packed)
                assert torch.equal(got, full.decompress(c.strings, c.shape, q, mask=mask, packed=packed))
                assert torch.equal(got, c.x_hat), (name, q, packed)   # what the encoder reconstructed
        with pytest.raises(ValueError, match="quality"):
            lite.decompress(c.strings, c.shape, full.levels, packed=True)
        with pytest.raises(ValueError, match="strings"):
            lite.decompress(c.strings, c.shape, 0, packed=False)


def test_inverse_gdn64_matches_compressai_bit_for_bit() -> None:
    from compressai.layers import GDN

    torch.manual_seed(0)
    layer = GDN(12, inverse=True)
    with torch.no_grad():  # away from the initial identity, some entries below the bounds
        layer.beta.copy_(torch.rand(12) * 2 - 0.2)
        layer.gamma.copy_(torch.rand(12, 12) * 0.3 - 0.05)
    state = layer.state_dict()
    mine = InverseGDN64(state["beta"], state["gamma"], state["beta_reparam.lower_bound.bound"],
                        state["beta_reparam.pedestal"], state["gamma_reparam.lower_bound.bound"],
                        state["gamma_reparam.pedestal"]).to(torch.float64)
    x = torch.randn(2, 12, 9, 7, dtype=torch.float64) * 3
    with torch.no_grad():
        assert torch.equal(mine(x), layer.to(torch.float64)(x))


def test_models_without_integer_networks_decode_with_the_full_networks(bundle: Path) -> None:
    dec = zoo.load_decoders("mcodec-s3")
    assert isinstance(dec.intra, IntraCodec) and dec.model_id == "mcodec-s3"
    from safetensors.torch import load

    data = bundle.read_bytes()
    tiny = zoo.decoders_from_tensors(load(data), zoo.safetensors_metadata(data), "tiny", b"\0" * 32)
    assert isinstance(tiny.inter, IntraCodec) and tiny.levels == 4


def test_missing_decoder_tensor_is_a_model_error() -> None:
    entry = zoo.get_model()
    merged, meta = zoo._bundle(entry)               # an add-on merged over its bases
    zoo.decoders_from_tensors(merged, meta, entry.model_id, entry.digest)  # complete: builds
    keys = ["inter.gaussian_conditional._offset", "intra.g_s.1.gamma", "intra.log_inv_gain"]
    if any(k.startswith(zoo.FINE_PREFIX) for k in merged):  # the fine networks are checked too
        keys += [zoo.FINE_PREFIX + k for k in keys]
    for key in keys:
        assert key in merged
        broken = {k: v for k, v in merged.items() if k != key}
        with pytest.raises(ModelError, match="bad decoder tensors"):
            zoo.decoders_from_tensors(broken, meta, entry.model_id, entry.digest)
