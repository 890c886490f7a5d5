"""The model table: stable ids, SHA-256-checked safetensors weights, clear errors."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest
import torch

from mcodec.codec import zoo
from mcodec.errors import ModelError


def test_shipped_weights_match_the_table() -> None:
    assert zoo.get_model().model_id == zoo.DEFAULT_MODEL_ID
    for entry in zoo.MODELS:
        path = zoo.weights_file(entry)
        assert path.suffix == ".safetensors" and path.stat().st_size <= 25 * 2**20
        assert zoo.file_sha256(path) == entry.sha256
        tensors, meta = zoo.load_weights(entry)
        if entry.base is None:
            assert "lambdas" in meta
            assert any(k.startswith("intra.") for k in tensors) and any(k.startswith("inter.") for k in tensors)
        elif zoo.FINE_CONFIG in meta:  # an add-on of fine networks (and their integer networks)
            assert all(k.startswith(("fine.intra.", "fine.inter.")) for k in tensors)
            assert any(k.startswith("fine.intra.int.") for k in tensors)
            assert meta["base_sha256"] == zoo.get_model(entry.base).sha256
        else:  # an add-on: integer syntheses only, naming the full bundle it extends
            assert all(k.startswith(("intra.int", "inter.int")) for k in tensors)
            assert meta["base_sha256"] == zoo.get_model(entry.base).sha256
            assert zoo.get_model(entry.base).base is None


def test_ids_are_unique_and_explicit() -> None:
    ids = [e.model_id for e in zoo.MODELS]
    assert len(ids) == len(set(ids))
    assert len({e.sha256 for e in zoo.MODELS}) == len(ids)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    entry = zoo.get_model()
    data = bytearray(zoo.weights_file(entry).read_bytes())
    data[len(data) // 2] ^= 1
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupted: sha256"):
        zoo.load_weights(entry, bad)


def test_a_pickle_is_never_loaded(tmp_path: Path) -> None:
    """A pickle in place of the weights fails the digest before anything is deserialised."""
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle executed')",))

    path = tmp_path / "w.safetensors"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ModelError, match="corrupted"):
        zoo.load_weights(zoo.get_model(), path)
    fake = dataclasses.replace(zoo.get_model(), sha256=zoo.file_sha256(path))
    with pytest.raises(Exception) as err:  # digest matches: safetensors refuses the format
        zoo.load_weights(fake, path)
    assert "pickle executed" not in str(err.value)


def test_missing_weights_and_unknown_models() -> None:
    entry = dataclasses.replace(zoo.get_model(), filename="nope.safetensors")
    with pytest.raises(ModelError, match="not found"):
        zoo.load_weights(entry)
    with pytest.raises(ModelError, match="unknown model 'x9'"):
        zoo.get_model("x9")
    with pytest.raises(ModelError, match=r"stream needs model 'other-7'.*it has 'mcodec-"):
        zoo.find_model("other-7", b"\x01" * 32)


def test_fine_model_extends_the_integer_model_with_fine_networks() -> None:
    """mcodec-s3f is an add-on of an add-on: mcodec-s3i's networks (and integer networks)
    as its main layer, plus fine networks (latent stride 8) with their own integer networks."""
    entry = zoo.get_model("mcodec-s3f")
    assert entry.base == "mcodec-s3i" and zoo.get_model(entry.base).base == "mcodec-s3"
    nets, base = zoo.load_networks("mcodec-s3f"), zoo.load_networks("mcodec-s3i")
    assert nets.model_id == "mcodec-s3f" and nets.digest == entry.digest
    assert nets.fine is not None and base.fine is None
    assert nets.fine.intra.config.latent_stride == 8 and nets.intra.config.latent_stride == 16
    assert nets.lambdas == base.lambdas and nets.fine.levels == nets.levels
    # the fine levels sit two levels up: fine level L was trained with the lambda of 1x level L + 2
    assert nets.fine.lambdas[:6] == nets.lambdas[2:] and nets.fine.lambdas[7] > nets.fine.lambdas[6] > nets.lambdas[7]
    for a, b in ((nets.intra, base.intra), (nets.inter, base.inter)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert nets.fine.intra.int_synthesis is not None and nets.fine.inter.int_context is not None
