"""BD-rate / BD-PSNR: closed-form cases, an independent PCHIP, input checks, overlap warning."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcodec.eval.bdrate import METHODS, bd_psnr, bd_rate, sort_curve

# A realistic curve (x265 measurements from the bjontegaard package's README).
RATE = [9487.76, 4593.60, 2486.44, 1358.24]
PSNR = [40.037, 38.615, 36.845, 34.851]
RATE_T = [9787.80, 4469.00, 2451.52, 1356.24]
PSNR_T = [40.121, 38.651, 36.970, 34.987]


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method):
    r = bd_rate(RATE, PSNR, RATE, PSNR, method=method)
    assert r.value == pytest.approx(0.0, abs=1e-9) and r.overlap == 1.0 and r.warning is None
    assert bd_psnr(RATE, PSNR, RATE, PSNR, method=method).value == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_double_rate_is_plus_100_and_half_is_minus_50(method):
    assert bd_rate(RATE, PSNR, [2 * r for r in RATE], PSNR, method=method).value == \
        pytest.approx(100.0, abs=1e-9)
    assert bd_rate(RATE, PSNR, [r / 2 for r in RATE], PSNR, method=method).value == \
        pytest.approx(-50.0, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_closed_form_linear_curves(method):
    # Anchor log10 R = 0.1 D, test log10 R = 0.12 D - 0.5 on D in [30, 40]: both
    # interpolants are exact (straight lines), so the integrals have closed forms.
    d = np.array([30.0, 33.0, 36.0, 40.0])
    ra, rt = 10 ** (0.1 * d), 10 ** (0.12 * d - 0.5)
    # mean(0.02 D - 0.5) over [30, 40] = 0.2 decades
    assert bd_rate(ra, d, rt, d, method=method).value == pytest.approx((10 ** 0.2 - 1) * 100,
                                                                        abs=1e-9)
    # As D(log R): anchor 10 L, test (L + 0.5) / 0.12 on the shared L in [3.1, 4.0]:
    # mean difference = (1/0.12 - 10) * 3.55 + 0.5/0.12 = -1.75 dB.
    res = bd_psnr(ra, d, rt, d, method=method)
    assert res.value == pytest.approx(-1.75, abs=1e-9)
    assert res.overlap == pytest.approx(0.9 / 1.3)


def _pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """Independent PCHIP (Fritsch-Butland slopes, as scipy) integrated in closed form."""
    h, m = np.diff(x), np.diff(y) / np.diff(x)
    d = np.zeros_like(x)
    for k in range(1, len(x) - 1):
        if m[k - 1] * m[k] > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / m[k - 1] + w2 / m[k])

    def edge(h0, h1, m0, m1):
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(e) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(e) > abs(3 * m0):
            return 3 * m0
        return e

    d[0] = edge(h[0], h[1], m[0], m[1])
    d[-1] = edge(h[-1], h[-2], m[-1], m[-2])

    def f(t):  # Hermite cubic value, for the partial intervals at lo / hi
        k = min(max(np.searchsorted(x, t) - 1, 0), len(x) - 2)
        s = (t - x[k]) / h[k]
        h00, h10 = 2 * s ** 3 - 3 * s ** 2 + 1, s ** 3 - 2 * s ** 2 + s
        h01, h11 = -2 * s ** 3 + 3 * s ** 2, s ** 3 - s ** 2
        return h00 * y[k] + h10 * h[k] * d[k] + h01 * y[k + 1] + h11 * h[k] * d[k + 1]

    # Integrate exactly with 3-point Gauss-Legendre per piece (cubics are exact at 2+ points).
    nodes, weights = np.polynomial.legendre.leggauss(3)
    knots = np.unique(np.clip(np.concatenate([[lo, hi], x]), lo, hi))
    total = 0.0
    for a, b in zip(knots[:-1], knots[1:]):
        total += sum(w * f((b - a) / 2 * t + (a + b) / 2) for t, w in zip(nodes, weights)) * (b - a) / 2
    return total


def test_pchip_matches_an_independent_implementation():
    ra, qa = sort_curve(RATE, PSNR)
    rt, qt = sort_curve(RATE_T, PSNR_T)
    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    mean = (_pchip_integral(qt, np.log10(rt), lo, hi) - _pchip_integral(qa, np.log10(ra), lo, hi)) \
        / (hi - lo)
    expected = (10 ** mean - 1) * 100
    got = bd_rate(RATE, PSNR, RATE_T, PSNR_T, method="pchip").value
    assert got == pytest.approx(expected, abs=1e-9)
    assert -10 < got < 0  # the test curve is slightly better
    assert bd_rate(RATE, PSNR, RATE_T, PSNR_T, method="akima").value == pytest.approx(got, abs=1.0)


def test_point_order_does_not_matter():
    a = bd_rate(RATE, PSNR, RATE_T, PSNR_T).value
    b = bd_rate(RATE[::-1], PSNR[::-1], [RATE_T[i] for i in (2, 0, 3, 1)],
                [PSNR_T[i] for i in (2, 0, 3, 1)]).value
    assert a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("rate, quality, match", [
    ([1, 2, 3], [30, 31, 32], "at least 4"),
    ([1, 2, 3, 4], [30, 31, 32], "rates but"),
    ([1, 2, float("nan"), 4], [30, 31, 32, 33], "NaN"),
    ([1, 2, 3, 4], [30, 31, float("inf"), 33], "NaN"),
    ([1, 2, 0, 4], [30, 31, 32, 33], "> 0"),
    ([1, 3, 2, 4], [30, 31, 32, 33], "not monotonic"),
    ([1, 2, 3, 4], [30, 31, 31, 33], "repeated"),
])
def test_bad_input_raises_value_error(rate, quality, match):
    with pytest.raises(ValueError, match=match):
        bd_rate(rate, quality, RATE, PSNR)
    with pytest.raises(ValueError, match=match):
        bd_psnr(RATE, PSNR, rate, quality)


def test_disjoint_curves_and_unknown_method_raise():
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate(RATE, PSNR, RATE, [p + 20 for p in PSNR])
    with pytest.raises(ValueError, match="method"):
        bd_rate(RATE, PSNR, RATE, PSNR, method="cubic-spline")


def test_small_overlap_is_flagged_and_logged(caplog):
    shifted = [p + 3.5 for p in PSNR]  # shares ~0.2 of the 8.7 dB combined range
    with caplog.at_level(logging.WARNING, logger="mcodec.eval.bdrate"):
        r = bd_rate(RATE, PSNR, RATE, shifted)
    assert r.overlap < 0.5 and r.warning and "overlap" in r.warning
    assert any("overlap" in rec.message for rec in caplog.records)
    assert bd_rate(RATE, PSNR, RATE, shifted, min_overlap=0.0).warning is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.3, 3.0), min_size=4, max_size=8),
       st.lists(st.floats(0.05, 2.0), min_size=8, max_size=8),
       st.floats(0.1, 10.0))
def test_scaling_all_rates_by_k_gives_k_minus_one(log_steps, dq, k):
    n = len(log_steps)
    log_r = np.cumsum(log_steps)
    q = 25 + np.cumsum(dq[:n])
    r = 10 ** log_r
    for method in METHODS:
        got = bd_rate(r, q, k * r, q, method=method).value
        assert math.isclose(got, (k - 1) * 100, rel_tol=1e-7, abs_tol=1e-7)
