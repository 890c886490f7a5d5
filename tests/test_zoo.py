"""The model table: stable ids, SHA-256-checked safetensors weights, clear errors."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from mcodec.codec import zoo
from mcodec.errors import ModelError


def test_shipped_weights_match_the_table() -> None:
    assert zoo.get_model().model_id == zoo.DEFAULT_MODEL_ID
    for entry in zoo.MODELS:
        path = zoo.weights_file(entry)
        assert path.suffix == ".safetensors" and path.stat().st_size <= 25 * 2**20
        assert zoo.file_sha256(path) == entry.sha256
        tensors, meta = zoo.load_weights(entry)
        assert any(k.startswith("intra.") for k in tensors) and any(k.startswith("inter.") for k in tensors)
        if entry.base is None:
            assert "lambdas" in meta
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
