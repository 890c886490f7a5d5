"""Training configs (mcodec.train.config): TOML in, checked dataclasses out, unknown keys refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcodec.train.config import ConfigError, from_dict, load_config

REPO = Path(__file__).resolve().parents[1]
SOURCE = {"kind": "video", "path": "video_train"}


def test_shipped_configs_load() -> None:
    configs = sorted((REPO / "configs").glob("*.toml"))
    assert {p.name for p in configs} >= {"smoke.toml"}
    for path in configs:
        cfg = load_config(path)
        assert cfg.data.sources and len(cfg.model.lambdas) >= 2
        assert from_dict(json.loads(cfg.to_json())) == cfg      # the checkpoint's copy reads back


@pytest.mark.parametrize("values,match", [
    ({"sed": 1}, r"unknown config key\(s\): sed"),
    ({"model": {"nn": 3}}, r"model\.nn"),
    ({"schedule": {"steps": 2, "bacth": 4}}, r"schedule\.bacth"),
    ({"data": {"sources": [{**SOURCE, "wieght": 2}]}}, r"data\.sources\.wieght"),
    ({"data": {"sources": [{"kind": "clips", "path": "x"}]}}, "kind 'clips'"),
    ({"data": {"sources": [{"kind": "video"}]}}, "path"),
    ({"data": {"sources": []}}, "at least one source"),
    ({"model": {"lambdas": [0.1, 0.05]}}, "increasing"),
    ({"model": {"latent_stride": 12}}, "latent_stride must be 8 or 16"),
    ({"model": {"n": "64"}}, r"model\.n must be an integer"),
    ({"data": {"crop": 100}}, "multiple of 16"),
    ({"networks": ["intra", "motion"]}, "networks"),
    ({"data": {"frames": 1, "sources": [SOURCE]}}, "frames >= 2"),
    ({"runtime": {"precision": "fp8"}}, "precision"),
])
def test_bad_configs_are_refused_naming_the_key(values: dict, match: str) -> None:
    values = {"data": {"sources": [SOURCE]}, **values} if "data" not in values else values
    with pytest.raises(ConfigError, match=match):
        from_dict(values)


def test_toml_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('seed = 1\nnetworks = ["intra"]\n[data]\nframes = 1\n[[data.sources]]\n'
                    'kind = "images"\npath = "images/train"\n[schedul]\nsteps = 3\n')
    with pytest.raises(ConfigError, match=r"typo\.toml: unknown config key\(s\): schedul"):
        load_config(typo)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_global_batch_splits_over_ranks_and_micro_steps() -> None:
    cfg = from_dict({"schedule": {"batch": 8, "accumulate": 2}, "data": {"sources": [SOURCE]}})
    assert cfg.micro_batch(1) == 4 and cfg.micro_batch(2) == 2 and cfg.micro_batch(4) == 1
    with pytest.raises(ConfigError, match="does not split"):
        cfg.micro_batch(3)
