"""Make a frame look decoded, and add sensor noise: degradations for synthetic training pairs.

A predicted frame is coded from the previous *decoded* frame, so a synthetic
pair's reference gets the artefacts of a decode (`degrade_reference`: JPEG
blocking and ringing, blur, noise) before motion estimation; `add_camera_noise`
gives each frame of a still pair its own sensor noise.
"""

from __future__ import annotations

import numpy as np

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


def add_camera_noise(planes: Planes, std: float, rng: np.random.Generator) -> Planes:
    """Add white Gaussian noise of `std` levels to luma and std/2 to chroma (sensor
    noise is mostly luminance after a camera's chroma smoothing); uint8 out."""
    out = []
    for k, p in enumerate(planes):
        n = rng.normal(0.0, std if k == 0 else std / 2, p.shape)
        out.append(np.clip(np.rint(p + n), 0, 255).astype(np.uint8))
    return tuple(out)  # type: ignore[return-value]


def _gauss_blur(p: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D float array (edge replication, radius 3 sigma)."""
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    q = np.pad(p, r, mode="edge")
    h, w = p.shape
    rows = sum(k[i] * q[:, i:i + w] for i in range(2 * r + 1))
    return sum(k[i] * rows[i:i + h] for i in range(2 * r + 1))


def _jpeg_round_trip(p: np.ndarray, quality: int) -> np.ndarray:
    """Grayscale JPEG encode/decode of one uint8 plane with PIL (own 8x8 grid per plane,
    like a 4:2:0 decoder's luma and chroma blocks)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(p).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("L")).copy()


def degrade_reference(y: np.ndarray, u: np.ndarray, v: np.ndarray,
                      rng: np.random.Generator) -> Planes:
    """A uint8 YUV 4:2:0 frame made to look decoded (same shapes out).

    40 %: JPEG round trip of each plane at quality U{40..90} (blocking, ringing,
    lost texture). 45 %: Gaussian blur sigma U(0.3, 0.8) px (p 0.6) and/or white
    noise of std U(1, 3) levels (p 0.7; at least one of the two), per plane.
    15 %: untouched (a near-lossless decode).
    """
    k = rng.random()
    planes = (y, u, v)
    if k < 0.40:
        q = int(rng.integers(40, 91))
        return tuple(_jpeg_round_trip(p, q) for p in planes)  # type: ignore[return-value]
    if k < 0.85:
        blur = rng.random() < 0.6
        noise = rng.random() < 0.7 or not blur
        sigma = rng.uniform(0.3, 0.8)
        std = rng.uniform(1.0, 3.0)
        out = []
        for p in planes:
            f = p.astype(np.float64)
            if blur:
                f = _gauss_blur(f, sigma)
            if noise:
                f = f + rng.normal(0.0, std, f.shape)
            out.append(np.clip(np.rint(f), 0, 255).astype(np.uint8))
        return tuple(out)  # type: ignore[return-value]
    return y.copy(), u.copy(), v.copy()
