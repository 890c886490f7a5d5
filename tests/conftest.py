"""Shared fixtures and helpers: the development data beside the checkout, small generated
clips, the tiny random model bundle, and reference tools (ffmpeg's psnr filter).

This is the one shared place of the test suite: test modules import helpers from here
(`from .conftest import x`), never from each other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mcodec.codec import ffmpeg as ff
from mcodec.codec.frame import Frame, chroma_shape
from mcodec.codec.video_io import open_video, open_writer

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """../shared/data beside the checkout, or $MCODEC_DATA."""
    return Path(os.environ.get("MCODEC_DATA", REPO.parent / "shared" / "data"))


def _missing_data(what: str) -> None:
    """Fail (with $MCODEC_REQUIRE_DATA set, as in CI) or skip: `what` is not there."""
    if os.environ.get("MCODEC_REQUIRE_DATA"):
        pytest.fail(f"development data not found: {what}")
    pytest.skip(f"development data not found: {what} (set MCODEC_DATA)")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The development data folder (see `data_dir`); every test that reads it goes
    through this fixture (or the ones below), never through data_dir() itself."""
    path = data_dir()
    if not path.is_dir():
        _missing_data(str(path))
    return path


@pytest.fixture(scope="session")
def clips_dir(shared_data: Path) -> Path:
    path = shared_data / "clips"
    if not path.is_dir():
        _missing_data(str(path))
    return path


@pytest.fixture(scope="session")
def dev_clip(clips_dir: Path):
    """``dev_clip(name)``: the path of one development clip (fails or skips like
    `shared_data` when it is not there)."""
    def get(name: str) -> Path:
        path = clips_dir / name
        if not path.is_file():
            _missing_data(str(path))
        return path
    return get


@pytest.fixture
def dev_cut(dev_clip, tmp_path: Path):
    """``dev_cut(frames, name="cars_320x240.mkv")``: the first `frames` frames of a
    development clip as a y4m in tmp_path (cut as the bench cuts)."""
    from mcodec.eval.bench import cut_clip

    def cut(frames: int = 6, name: str = "cars_320x240.mkv") -> Path:
        clip = dev_clip(name)
        dest = tmp_path / f"src_{clip.stem}_{frames}.y4m"
        cut_clip(clip, frames, dest, clip.stem)
        return dest
    return cut


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


def read_frames(path: Path) -> list[Frame]:
    """Every frame of the video at `path`."""
    with open_video(str(path)) as r:
        return list(r)


frames_of = read_frames


def frame_tensor(dev_cut):
    """The 6-channel tensor of a 128x96 crop of a development clip's first frame."""
    from mcodec.codec import packing

    with open_video(str(dev_cut(1))) as r:
        frame = next(iter(r))
    x, _ = packing.yuv420_to_tensor(frame.y[:96, :128], frame.u[:48, :64], frame.v[:48, :64])
    return x


_DECODE_IN_CHILD = """
import sys
from mcodec.codec import codec, zoo
nets = zoo.networks_from_file(sys.argv[1], model_id="tiny")
s = codec.decode(sys.argv[2], sys.argv[3], networks=nets)
print(s.frames)
"""


def decode_in_child(bundle: Path, stream: Path, out: Path) -> int:
    """Decode `stream` into `out` with the bundle's networks in a fresh Python process
    (no state shared with the encoder); returns the decoded frame count."""
    done = subprocess.run([sys.executable, "-c", _DECODE_IN_CHILD, str(bundle), str(stream), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


# ----------------------------------------------------------------------------- the tiny model

def tiny_bundle(path: Path, seed: int = 0) -> Path:
    """A tiny randomly initialised bundle (N=M=16, 4 levels) written to `path`."""
    import torch

    from mcodec.codec import model as mdl
    from mcodec.codec.zoo import save_bundle

    torch.manual_seed(seed)
    config = mdl.ModelConfig(n=16, m=16, levels=4)
    nets = [mdl.IntraCodec(config).eval() for _ in range(2)]
    for net in nets:
        net.update()
    save_bundle(nets[0], nets[1], (0.002, 0.008, 0.03, 0.1), str(path))
    return path


def tiny_fine_bundle(path: Path, seed: int = 0) -> Path:
    """The tiny bundle of `tiny_bundle` plus tiny fine networks (latent stride 8)."""
    import torch

    from mcodec.codec import model as mdl
    from mcodec.codec.zoo import CodecNetworks, save_bundle

    torch.manual_seed(seed)
    lambdas = (0.002, 0.008, 0.03, 0.1)
    nets = [mdl.IntraCodec(mdl.ModelConfig(n=16, m=16, levels=4, latent_stride=stride)).eval()
            for stride in (16, 16, 8, 8)]
    for net in nets:
        net.update()
    fine = CodecNetworks(nets[2], nets[3], lambdas, "tiny-fine", b"")
    save_bundle(nets[0], nets[1], lambdas, str(path), fine=fine)
    return path


@pytest.fixture(scope="session")
def fine_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny bundle with fine networks (`tiny_fine_bundle`) as a file."""
    return tiny_fine_bundle(tmp_path_factory.mktemp("model") / "tiny-fine.safetensors")


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny bundle (seed 0) as a file."""
    return tiny_bundle(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="session")
def nets(bundle: Path):
    """The tiny bundle's CodecNetworks, model id 'tiny'."""
    from mcodec.codec.zoo import networks_from_file

    return networks_from_file(str(bundle), model_id="tiny")


@pytest.fixture(scope="session")
def cars_cut(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """First 6 frames of cars_320x240 as y4m."""
    with open_video(str(clips_dir / "cars_320x240.mkv"), max_frames=6) as r:
        frames = list(r)
    return write_clip(tmp_path_factory.mktemp("clip") / "cars6.y4m", frames, Fraction(30))


# ----------------------------------------------------------------------------- test pictures

def _blur(x: np.ndarray, passes: int) -> np.ndarray:
    """Repeated 3x3 box blur with wrap-around (keeps np.roll shifts exact)."""
    for _ in range(passes):
        x = sum(np.roll(x, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    return x


def textured(h: int, w: int, seed: int = 0, smooth: int = 2) -> np.ndarray:
    """Real-looking test luma (h, w) uint8: a smooth random field, fine texture and sharp edges."""
    rng = np.random.default_rng(seed)
    x = _blur(rng.normal(0, 1, (h, w)), 8) * 400 + _blur(rng.normal(0, 1, (h, w)), smooth) * 60
    for _ in range(6):                                  # rectangles give sharp edges
        r, c = rng.integers(0, h), rng.integers(0, w)
        x[r:r + rng.integers(4, 40), c:c + rng.integers(4, 40)] += rng.normal(0, 40)
    return np.clip(x + 128, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- reference tools

def ffmpeg_psnr(distorted: Path, reference: Path, log: Path, demuxer: str | None = None,
                convert: str = "") -> tuple[dict[str, float], list[dict[str, float]]]:
    """ffmpeg's own psnr filter: (summary y/u/v of mean MSE, per-frame y/u/v)."""
    # Raw streams have no timestamps: number frames on both inputs so they pair 1:1.
    graph = (f"[0:v]{convert}settb=1/25,setpts=N[a];[1:v]settb=1/25,setpts=N[b];"
             f"[a][b]psnr=stats_file={log}")
    args = ff.base_args(loglevel="info") + (["-f", demuxer] if demuxer else []) + [
        "-i", ff.input_url(str(distorted)), "-i", ff.input_url(str(reference)),
        "-lavfi", graph, "-f", "null", "-"]
    err = ff.run_ffmpeg(args, "psnr filter")
    m = re.search(r"PSNR y:([\d.]+) u:([\d.]+) v:([\d.]+)", err)
    assert m, err
    summary = dict(zip("yuv", map(float, m.groups())))
    frames = []
    for line in log.read_text().splitlines():
        kv = dict(tok.split(":", 1) for tok in line.split())
        frames.append({c: float(kv[f"psnr_{c}"]) for c in "yuv"})
    return summary, frames
