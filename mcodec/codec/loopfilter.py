"""Wiener loop filter: per-frame linear filters fitted by the encoder, sent as integers.

The networks' reconstructions are smooth where the source has detail, and their
chroma lacks the detail that the luma plane still shows (docs/model.md, "Where
the remaining gap is"). The encoder fits, per frame and per plane, the
least-squares correction of the reconstruction from a few high-pass features
(ALF's idea, and VVC's cross-component ALF for chroma), quantizes the
coefficients to integers and sends them when they pay in J = D + lambda * R.
The decoder applies them in integer arithmetic (exact on every machine), and
the filtered frame is both the output and the next frame's reference (in loop).

Features of a plane P (int, edges replicated), at every sample:

* luma, 6 symmetric pairs: P[+d] + P[-d] - 2 P[0] for d in LUMA_TAPS.
* chroma (U or V), 2 pairs of the chroma plane itself (CHROMA_TAPS), then 5 from
  the co-located luma: with S the 2x2 luma sums at chroma resolution,
  4 S[0] - S[up] - S[down] - S[left] - S[right], S[right] - S[left],
  S[down] - S[up], and inside the 2x2 block y00 - y11 and y01 - y10.

All features come from the unfiltered reconstruction. Output:
``clip(P + ((sum_k c_k * f_k + 2**(SHIFT-1)) >> SHIFT), 0, 255)`` with integer
coefficients |c_k| <= MAX_COEF (>> is the arithmetic shift, floor division).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mcodec.codec.rangecoder import RangeDecoder, RangeEncoder, decode_ueg, encode_ueg, models
from mcodec.errors import BitstreamError

SHIFT = 7                       # coefficients are in units of 1/128
MAX_COEF = 1 << 10              # |c| bound the decoder enforces
LUMA_TAPS = ((0, 1), (1, 0), (1, 1), (1, -1), (0, 2), (2, 0))
CHROMA_TAPS = ((0, 1), (1, 0))
N_LUMA = len(LUMA_TAPS)
N_CHROMA = len(CHROMA_TAPS) + 5
_PREFIX = 12                    # adaptive prefix contexts of the magnitudes' Elias-gamma code

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]   # Y, U, V (4:2:0)


@dataclass(frozen=True)
class LoopFilter:
    """One frame's filters: per plane (Y, U, V) a tuple of integer coefficients, or None (off)."""

    planes: tuple[tuple[int, ...] | None, tuple[int, ...] | None, tuple[int, ...] | None]

    @property
    def active(self) -> bool:
        return any(c is not None for c in self.planes)


def _pair_features(p: np.ndarray, taps: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
    """P[+d] + P[-d] - 2 P[0] for each d in `taps`; (H, W) int64 each."""
    r = max(max(abs(dy), abs(dx)) for dy, dx in taps)
    h, w = p.shape
    q = np.pad(p.astype(np.int64), r, mode="edge")
    c = q[r:r + h, r:r + w]
    return [q[r + dy:r + dy + h, r + dx:r + dx + w] + q[r - dy:r - dy + h, r - dx:r - dx + w] - 2 * c
            for dy, dx in taps]


def _luma_guide(y: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    """The 5 luma features at chroma resolution `shape` (see the module docstring)."""
    hc, wc = shape
    yy = np.pad(y.astype(np.int64), ((0, 2 * hc - y.shape[0]), (0, 2 * wc - y.shape[1])), mode="edge")
    b = yy.reshape(hc, 2, wc, 2)
    s = b.sum(axis=(1, 3))                                               # (hc, wc) 2x2 sums
    q = np.pad(s, 1, mode="edge")
    up, down = q[0:hc, 1:wc + 1], q[2:hc + 2, 1:wc + 1]
    left, right = q[1:hc + 1, 0:wc], q[1:hc + 1, 2:wc + 2]
    return [4 * s - up - down - left - right, right - left, down - up,
            b[:, 0, :, 0] - b[:, 1, :, 1], b[:, 0, :, 1] - b[:, 1, :, 0]]


def features(planes: Planes, index: int) -> list[np.ndarray]:
    """The features of plane `index` (0 = Y, 1 = U, 2 = V) of a reconstruction."""
    if index == 0:
        return _pair_features(planes[0], LUMA_TAPS)
    p = planes[index]
    return _pair_features(p, CHROMA_TAPS) + _luma_guide(planes[0], p.shape)


def _filtered(plane: np.ndarray, feats: list[np.ndarray], coefs: tuple[int, ...]) -> np.ndarray:
    acc = np.zeros(plane.shape, dtype=np.int64)
    for c, f in zip(coefs, feats):
        if c:
            acc += c * f
    delta = (acc + (1 << (SHIFT - 1))) >> SHIFT
    return np.clip(plane.astype(np.int64) + delta, 0, 255).astype(np.uint8)


def apply(planes: Planes, filt: LoopFilter) -> Planes:
    """The filtered planes (uint8, same shapes); planes whose filter is off are returned as is."""
    return tuple(p if c is None else _filtered(p, features(planes, i), c)
                 for i, (p, c) in enumerate(zip(planes, filt.planes)))  # type: ignore[return-value]


def _block_mean(x: np.ndarray, shape: tuple[int, int], k: int) -> np.ndarray:
    """Float k x k block means of `x` onto `shape`, the last row/column replicated when short
    (`resample.downsample_plane` without its rounding)."""
    h, w = shape
    x = x[:k * h, :k * w]
    x = np.pad(x, ((0, k * h - x.shape[0]), (0, k * w - x.shape[1])), mode="edge")
    return x.reshape(h, k, w, k).mean(axis=(1, 3))


def fit(recon: Planes, target: Planes, weights: tuple[float, float, float], lam: float,
        output: Callable[[Planes], Planes] | None = None, scale: int = 1) -> tuple[LoopFilter, Planes]:
    """The encoder's filters for the reconstruction `recon` (uint8 planes at coding scale),
    and `apply(recon, filters)`, which the fit has already computed.

    `target` is the source at output resolution, `output` maps coded planes to
    the displayed planes (identity at `scale` 1; at 2 the decoder's 2x2 mean, so
    the least squares run on the features' 2x2 means: the filter is fitted to
    what is displayed). Per plane, the rounded integer coefficients are kept when
    weights[i] * (SSE before - SSE after) on the displayed plane exceeds
    lam * (their bits), SSE in squared 8-bit levels, lam in weighted SSE per bit.
    """
    output = output or (lambda planes: planes)
    proposed: list[tuple[int, ...] | None] = []
    filtered = []
    for i, (p, t) in enumerate(zip(recon, target)):
        feats = features(recon, i)
        cols = [f.astype(np.float64) if scale == 1 else _block_mean(f.astype(np.float64), t.shape, scale)
                for f in feats]
        base = p.astype(np.float64) if scale == 1 else _block_mean(p.astype(np.float64), t.shape, scale)
        a = np.stack([c.ravel() for c in cols], axis=1)                        # (N, K)
        err = t.astype(np.float64).ravel() - base.ravel()
        try:
            sol = np.linalg.solve(a.T @ a + 1e-6 * np.eye(a.shape[1]), a.T @ err)
        except np.linalg.LinAlgError:
            sol = np.zeros(a.shape[1])
        coefs = tuple(int(c) for c in np.clip(np.round(sol * (1 << SHIFT)), -MAX_COEF, MAX_COEF))
        proposed.append(coefs if any(coefs) else None)
        filtered.append(p if proposed[-1] is None else _filtered(p, feats, coefs))
    before, after = output(recon), output(tuple(filtered))  # type: ignore[arg-type]
    chosen: list[tuple[int, ...] | None] = []
    for i, coefs in enumerate(proposed):
        if coefs is None:
            chosen.append(None)
            continue
        t = target[i].astype(np.float64)
        gain = float(np.square(t - before[i]).sum() - np.square(t - after[i]).sum())
        chosen.append(coefs if weights[i] * gain > lam * _plane_bits(coefs) else None)
    planes = tuple(f if c is not None else p for f, c, p in zip(filtered, chosen, recon))
    return LoopFilter(tuple(chosen)), planes  # type: ignore[return-value]


def _plane_bits(coefs: tuple[int, ...]) -> float:
    """Approximate cost of one plane's coefficients: 1 zero flag, sign and Elias-gamma each."""
    return 1.0 + sum(1.0 + (2 * abs(c).bit_length() if c else 0) for c in coefs)


class _Contexts:
    def __init__(self) -> None:
        self.on = models(3)
        self.zero = models(2)                    # luma, chroma
        self.prefix = [models(_PREFIX), models(_PREFIX)]


def encode(filt: LoopFilter) -> bytes:
    """Entropy-code a frame's filters (adaptive binary range coder)."""
    enc = RangeEncoder()
    write(enc, filt)
    return enc.finish()


def write(enc: RangeEncoder, filt: LoopFilter) -> None:
    """`encode` into an open range coder (format version 4: one side-information stream)."""
    ctx = _Contexts()
    for i, coefs in enumerate(filt.planes):
        enc.encode_bit(coefs is not None, ctx.on[i])
        if coefs is None:
            continue
        if len(coefs) != (N_LUMA if i == 0 else N_CHROMA):
            raise ValueError(f"plane {i}: {len(coefs)} coefficients")
        kind = min(i, 1)
        for c in coefs:
            if abs(c) > MAX_COEF:
                raise ValueError(f"coefficient {c} outside +-{MAX_COEF}")
            enc.encode_bit(c != 0, ctx.zero[kind])
            if c:
                enc.encode_bypass(c < 0)
                encode_ueg(enc, abs(c), ctx.prefix[kind], _PREFIX)


def decode(data: bytes) -> LoopFilter:
    """Inverse of `encode`. Raises BitstreamError on malformed data."""
    dec = RangeDecoder(data)
    filt = read(dec)
    dec.finish()
    return filt


def read(dec: RangeDecoder) -> LoopFilter:
    """`decode` from an open range decoder."""
    ctx = _Contexts()
    planes: list[tuple[int, ...] | None] = []
    for i in range(3):
        if not dec.decode_bit(ctx.on[i]):
            planes.append(None)
            continue
        kind = min(i, 1)
        coefs = []
        for _ in range(N_LUMA if i == 0 else N_CHROMA):
            c = 0
            if dec.decode_bit(ctx.zero[kind]):
                neg = dec.decode_bypass()
                c = decode_ueg(dec, ctx.prefix[kind], _PREFIX)
                if c > MAX_COEF:
                    raise BitstreamError(f"loop filter coefficient {c} exceeds {MAX_COEF}")
                c = -c if neg else c
            coefs.append(c)
        planes.append(tuple(coefs))
    return LoopFilter(tuple(planes))  # type: ignore[arg-type]
