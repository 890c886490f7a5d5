"""Bjontegaard deltas: BD-rate and BD-PSNR between two rate-distortion curves.

Method: each curve's points are sorted by quality; log10(rate) is interpolated
as a function of quality (BD-rate) or quality as a function of log10(rate)
(BD-PSNR) with a piecewise cubic -- PCHIP (default) or Akima -- and the two
interpolants are integrated over the range both curves cover. BD-rate is
``(10 ** mean(log10 R_test - log10 R_anchor) - 1) * 100`` percent (negative =
the test codec needs less rate for the same quality); BD-PSNR is the mean
quality difference in the metric's unit (dB for PSNR; positive = test better).

The interpolation and integration come from the ``bjontegaard`` package
(scipy's PchipInterpolator / Akima1DInterpolator); this module adds the input
checks, the sorting and a clear overlap warning. The "quality" may be any
metric where higher is better (PSNR-YUV, MS-SSIM, VMAF).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_POINTS = 4
# Below this shared fraction of the two curves' combined range, the result
# leans on extrapolation-free but narrow data: flagged (not refused).
MIN_OVERLAP = 0.5
METHODS = ("pchip", "akima")

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BDResult:
    """One Bjontegaard delta.

    Attributes:
        value: BD-rate in percent, or BD-quality in the metric's unit.
        method: ``"pchip"`` or ``"akima"``.
        overlap: length of the range both curves cover divided by the length
            of the range either covers (0..1], on the quality axis for BD-rate
            and the log-rate axis for BD-PSNR.
        warning: a message when ``overlap < min_overlap``, else None.
    """

    value: float
    method: str
    overlap: float
    warning: str | None = None


def sort_curve(rate: Sequence[float], quality: Sequence[float],
               name: str = "curve") -> tuple[np.ndarray, np.ndarray]:
    """Validate one RD curve and return (rate, quality) sorted by quality.

    Raises:
        ValueError: fewer than 4 points, lengths differ, NaN/inf, rate <= 0,
            repeated quality values, or rate not strictly increasing with
            quality once sorted (a non-monotonic curve).
    """
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.size != q.size:
        raise ValueError(f"{name}: {r.size} rates but {q.size} quality values")
    if r.size < MIN_POINTS:
        raise ValueError(f"{name}: {r.size} points, at least {MIN_POINTS} needed")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ValueError(f"{name}: NaN or infinite values")
    if np.any(r <= 0):
        raise ValueError(f"{name}: rates must be > 0")
    order = np.argsort(q, kind="stable")
    r, q = r[order], q[order]
    if np.any(np.diff(q) <= 0):
        raise ValueError(f"{name}: repeated quality values {q.tolist()}")
    if np.any(np.diff(r) <= 0):
        raise ValueError(f"{name}: not monotonic -- rate does not increase with quality "
                         f"(sorted by quality: rates {r.tolist()}, quality {q.tolist()})")
    return r, q


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    inter = min(a.max(), b.max()) - max(a.min(), b.min())
    union = max(a.max(), b.max()) - min(a.min(), b.min())
    return max(inter, 0.0) / union if union > 0 else 0.0


def _delta(base_a: np.ndarray, metric_a: np.ndarray, base_t: np.ndarray, metric_t: np.ndarray,
           method: str, min_overlap: float, what: str) -> tuple[float, float, str | None]:
    """Mean difference metric_t - metric_a over the shared range of the base axis."""
    if method not in METHODS:
        raise ValueError(f"unknown interpolation method {method!r}; use one of {METHODS}")
    overlap = _overlap(base_a, base_t)
    if overlap <= 0:
        raise ValueError(f"{what}: the curves do not overlap (anchor {base_a.min():.4g}.."
                         f"{base_a.max():.4g}, test {base_t.min():.4g}..{base_t.max():.4g})")
    from bjontegaard import bd_linear  # lazy: imports scipy and matplotlib.pyplot

    with warnings.catch_warnings():
        # bjontegaard warns on small overlap through `warnings`; we report it ourselves.
        warnings.simplefilter("ignore")
        value = float(bd_linear(base_a, metric_a, base_t, metric_t, method,
                                require_matching_points=False, min_overlap=0.0))
    warning = None
    if overlap < min_overlap:
        warning = (f"{what}: curves overlap over only {overlap * 100:.0f}% of their combined "
                   f"range (< {min_overlap * 100:.0f}%); the value rests on a narrow range")
        _log.warning(warning)
    return value, overlap, warning


def bd_rate(anchor_rate: Sequence[float], anchor_quality: Sequence[float],
            test_rate: Sequence[float], test_quality: Sequence[float], *,
            method: str = "pchip", min_overlap: float = MIN_OVERLAP,
            label: str = "BD-rate") -> BDResult:
    """BD-rate of the test curve against the anchor curve, in percent.

    Rates in any positive unit (the same for both curves: kbps, bpp, bytes);
    quality in any higher-is-better metric. Points need not be sorted.
    `label` prefixes the warning and error messages (e.g. which clip and codecs).

    Raises:
        ValueError: bad input (see :func:`sort_curve`), unknown method, or
            curves with no quality range in common.
    """
    ra, qa = sort_curve(anchor_rate, anchor_quality, "anchor")
    rt, qt = sort_curve(test_rate, test_quality, "test")
    delta, overlap, warning = _delta(qa, np.log10(ra), qt, np.log10(rt), method, min_overlap,
                                     label)
    return BDResult((10.0 ** delta - 1.0) * 100.0, method, overlap, warning)


def bd_psnr(anchor_rate: Sequence[float], anchor_quality: Sequence[float],
            test_rate: Sequence[float], test_quality: Sequence[float], *,
            method: str = "pchip", min_overlap: float = MIN_OVERLAP,
            label: str = "BD-PSNR") -> BDResult:
    """BD-PSNR (more generally BD-quality) of the test curve against the anchor.

    The mean quality difference (test - anchor) over the shared log-rate range,
    in the quality metric's unit (dB for PSNR).

    Raises:
        ValueError: as :func:`bd_rate`.
    """
    ra, qa = sort_curve(anchor_rate, anchor_quality, "anchor")
    rt, qt = sort_curve(test_rate, test_quality, "test")
    delta, overlap, warning = _delta(np.log10(ra), qa, np.log10(rt), qt, method, min_overlap,
                                     label)
    return BDResult(delta, method, overlap, warning)
