"""Shared fixtures: the development data beside the checkout, and small generated clips."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mcodec.codec import ffmpeg as ff
from mcodec.codec.video_io import Frame, chroma_shape, open_writer

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """../shared/data beside the checkout, or $MCODEC_DATA."""
    return Path(os.environ.get("MCODEC_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = data_dir()
    if not path.is_dir():
        if os.environ.get("MCODEC_REQUIRE_DATA"):
            pytest.fail(f"development data not found at {path}")
        pytest.skip(f"development data not found at {path} (set MCODEC_DATA)")
    return path


@pytest.fixture(scope="session")
def clips_dir(shared_data: Path) -> Path:
    return shared_data / "clips"


def synthetic_frames(width: int, height: int, count: int, seed: int = 0) -> list[Frame]:
    """Textured moving frames (a smooth random field panning right), yuv420p."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(height + 8, width + 8 + count), dtype=np.uint8)
    ch, cw = chroma_shape(height, width)
    frames = []
    for t in range(count):
        y = base[:height, t:t + width].copy()
        u = np.full((ch, cw), 128 + t % 7, dtype=np.uint8)
        v = rng.integers(16, 240, size=(ch, cw), dtype=np.uint8)
        frames.append(Frame(y, u, v))
    return frames


def write_clip(path: Path, frames: list[Frame], fps: Fraction = Fraction(25)) -> Path:
    """Write `frames` to `path` (format from the extension) and return the path."""
    with open_writer(str(path), frames[0].width, frames[0].height, fps, overwrite=True) as w:
        for f in frames:
            w.write(f)
    return path


def lavfi_clip(path: Path, spec: str, frames: int, pix_fmt: str = "yuv420p",
               codec: str = "ffv1") -> Path:
    """Make a clip with ffmpeg's lavfi source `spec` (e.g. 'testsrc2=size=64x48:rate=25')."""
    ff.run_ffmpeg(ff.base_args() + ["-y", "-f", "lavfi", "-i", spec, "-frames:v", str(frames),
                                    "-pix_fmt", pix_fmt, "-c:v", codec, ff.output_url(str(path))],
                  "making a test clip")
    return path
