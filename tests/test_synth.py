"""Synthetic (cur, pred) pair bank for the inter model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcodec.codec.motion_search import estimate_motion
from mcodec.train.data import load_pair_bank, save_pair_bank
from mcodec.train.degrade import degrade_reference
from mcodec.train.stats import bank_stats, residual_stats
from mcodec.train.synth import KIND_VIDEO, build_pair_bank, render_view

_KEYS = ("cur_y", "cur_u", "cur_v", "pred_y", "pred_u", "pred_v")


@pytest.fixture(scope="module")
def small_bank(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same 8-pair 64x64 bank built twice (seed 5; the first 6 photos keep it fast)."""
    root = str(shared_data / "images" / "train")
    d = tmp_path_factory.mktemp("synth")
    a = build_pair_bank(d / "a.npz", 8, 64, 5, data_root=root, max_photos=6, progress=False)
    b = build_pair_bank(d / "sub" / "b.npz", 8, 64, 5, data_root=root, max_photos=6, progress=False)
    return a, b


def test_bank_shapes_and_dtypes(small_bank: tuple[Path, Path]) -> None:
    bank = load_pair_bank(small_bank[0])
    for k in ("cur_y", "pred_y"):
        assert bank[k].shape == (8, 64, 64) and bank[k].dtype == np.uint8
    for k in ("cur_u", "cur_v", "pred_u", "pred_v"):
        assert bank[k].shape == (8, 32, 32) and bank[k].dtype == np.uint8
    assert bank["kind"].shape == (8,)
    assert int((bank["kind"] == KIND_VIDEO).sum()) == 3          # round(8 * 0.4)
    assert bank["info"]["crop"] == 64 and bank["info"]["seed"] == 5
    # No pair is blank: every crop has texture.
    assert all(bank["cur_y"][i].std() > 1 for i in range(8))


def test_bank_is_deterministic(small_bank: tuple[Path, Path]) -> None:
    a, b = (load_pair_bank(p) for p in small_bank)
    for k in _KEYS + ("kind",):
        assert np.array_equal(a[k], b[k]), k


def test_pred_is_close_to_cur(small_bank: tuple[Path, Path]) -> None:
    s = bank_stats(small_bank[0])
    assert s.pairs == 8
    assert s.psnr_y > 20.0
    assert s.clip_frac < 1e-3
    # Not trivially identical either: the reference was degraded and moved.
    assert s.mean_abs_y > 0.3


def test_bank_written_atomically(small_bank: tuple[Path, Path], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert sorted(p.name for p in small_bank[0].parent.iterdir()) == ["a.npz", "sub"]
    out = tmp_path / "bank.npz"
    out.write_bytes(b"old")

    def boom(*args, **kwargs) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(np, "savez", boom)
        with pytest.raises(OSError, match="disk full"):
            save_pair_bank(out, {"x": np.zeros(3)})
    assert out.read_bytes() == b"old"                            # old bank untouched
    assert [p.name for p in tmp_path.iterdir()] == ["bank.npz"]  # nothing left behind
    # The path is kept as given (np.savez would append ".npz" to a bare path).
    save_pair_bank(tmp_path / "plain", {"x": np.arange(3), "info": np.array("{}")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.npz", "plain"]
    assert load_pair_bank(tmp_path / "plain")["x"].tolist() == [0, 1, 2]


def test_refuses_evaluation_data(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="evaluation data"):
        build_pair_bank(tmp_path / "x.npz", 2, 64, 0, data_root="/x/data/images/kodak")


def test_render_view_translation_is_found_by_motion_search() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((400, 400), Image.Resampling.BICUBIC)   # smooth texture
    ref = render_view(img, (200.0, 200.0), 2.0, 1.0, 0.0, 64)
    cur = render_view(img, (200.0 + 2.0 * 3.25, 200.0 - 2.0 * 1.5), 2.0, 1.0, 0.0, 64)
    field = estimate_motion(cur[..., 1], ref[..., 1], lam=0.0)
    # Content seen at q in cur sits at q + shift in ref: vector (dy, dx) = (-1.5, 3.25) px.
    assert np.median(field.vectors[..., 0]) == -6 and np.median(field.vectors[..., 1]) == 13


def test_degrade_reference_is_mild() -> None:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:64]
    y = (128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.uint8)
    u = np.full((32, 32), 100, np.uint8)
    v = np.full((32, 32), 150, np.uint8)
    for _ in range(20):
        d = degrade_reference(y, u, v, rng)
        assert [p.shape for p in d] == [(64, 64), (32, 32), (32, 32)]
        assert all(p.dtype == np.uint8 for p in d)
        mad = np.abs(d[0].astype(int) - y).mean()
        assert mad < 6.0


def test_residual_stats_known_values() -> None:
    cur = (np.full((2, 4, 4), 100, np.uint8), np.full((2, 2, 2), 10, np.uint8),
           np.full((2, 2, 2), 250, np.uint8))
    pred = (np.full((2, 4, 4), 98, np.uint8), np.full((2, 2, 2), 10, np.uint8),
            np.full((2, 2, 2), 100, np.uint8))
    s = residual_stats(cur, pred)
    assert (s.mean_abs_y, s.mean_abs_u, s.mean_abs_v) == (2.0, 0.0, 150.0)
    assert s.clip_frac == pytest.approx(8 / 48)
    assert s.psnr_y == pytest.approx(10 * np.log10(255 ** 2 / 4))
