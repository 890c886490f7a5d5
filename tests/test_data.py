"""Training data basics (mcodec.train.data): the data root, the evaluation-data guard, colour
conversion, and the package's import hygiene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcodec.train.data import check_training_path, default_data_root, default_photo_root, rgb_to_yuv420

REPO = Path(__file__).resolve().parents[1]


def test_refuses_evaluation_data() -> None:
    for bad in ("/x/data/images/kodak", "/x/data/clips/a", "/x/Kodak"):
        with pytest.raises(ValueError, match="evaluation data"):
            check_training_path(bad)
    check_training_path("/x/data/images/train")


def test_default_data_root_follows_mcodec_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCODEC_DATA", str(tmp_path / "elsewhere"))
    assert default_data_root() == tmp_path / "elsewhere"
    assert default_photo_root() == tmp_path / "elsewhere" / "images" / "train"
    monkeypatch.delenv("MCODEC_DATA")
    assert default_data_root() == REPO.parent / "shared" / "data"  # beside the checkout


def test_no_machine_paths_in_the_package() -> None:
    sources = sorted((REPO / "mcodec" / "train").glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "__main__.py", "data.py", "synth.py",
                                         "trainer.py"}
    for path in sources:
        assert "/work/" not in path.read_text(), path


def test_package_import_is_light_and_modules_import_alone() -> None:
    """`import mcodec.train` pulls in no torch; each module imports on its own (no cycle)."""
    code = ("import sys, importlib; import mcodec.train; assert 'torch' not in sys.modules; "
            "[importlib.import_module(f'mcodec.train.{m}') for m in sys.argv[1:]]")
    for mod in ("config", "data", "datasets", "degrade", "stats", "synth", "trainer"):
        done = subprocess.run([sys.executable, "-c", code, mod], cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (mod, done.stderr[-2000:])


def test_rgb_to_yuv420_is_bt601_limited() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:, 2:] = 255
    y, u, v = rgb_to_yuv420(rgb)
    assert y[0, 0] == 16 and y[0, 3] == 235
    assert abs(int(u[0, 0]) - 128) <= 1 and abs(int(v[0, 1]) - 128) <= 1
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    y, u, v = rgb_to_yuv420(red)
    # BT.601 limited: Y = 16 + 65.481 = 81, Cb = 128 - 37.797 = 90, Cr = 128 + 112 = 240.
    assert abs(int(y[0, 0]) - 81) <= 1 and abs(int(u[0, 0]) - 90) <= 1 and abs(int(v[0, 0]) - 240) <= 1
