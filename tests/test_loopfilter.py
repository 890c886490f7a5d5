"""The Wiener loop filter: syntax round trip, the integer filter against a per-sample
reading of the spec (docs/bitstream.md section 10), and the encoder's fit."""

from __future__ import annotations

import numpy as np
import pytest

from mcodec.codec import loopfilter as lf
from mcodec.codec import resample
from mcodec.codec.frame import Frame
from mcodec.errors import BitstreamError


def _planes(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ch, cw = (h + 1) // 2, (w + 1) // 2
    return (rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(0, 256, (ch, cw), dtype=np.uint8),
            rng.integers(0, 256, (ch, cw), dtype=np.uint8))


def _smooth(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Textured but band-limited planes (so that a blur of them is predictable)."""
    yy, xx = np.mgrid[0:h, 0:w]
    y = 128 + 60 * np.sin(xx / 2.3 + rng.uniform(0, 6)) * np.cos(yy / 3.1) + rng.normal(0, 3, (h, w))
    ch, cw = (h + 1) // 2, (w + 1) // 2
    u = 128 + 0.4 * (y[0::2, 0::2][:ch, :cw] - 128)
    v = 128 - 0.3 * (y[0::2, 0::2][:ch, :cw] - 128)
    return tuple(np.clip(np.round(p), 0, 255).astype(np.uint8) for p in (y, u, v))  # type: ignore[return-value]


def _blur(p: np.ndarray) -> np.ndarray:
    q = np.pad(p.astype(np.int32), 1, mode="edge")
    s = q[:-2, 1:-1] + q[2:, 1:-1] + q[1:-1, :-2] + q[1:-1, 2:] + 4 * q[1:-1, 1:-1]
    return ((s + 4) >> 3).astype(np.uint8)


def test_syntax_round_trip() -> None:
    rng = np.random.default_rng(1)
    cases = [
        lf.LoopFilter((None, None, None)),
        lf.LoopFilter(((1, -1, 0, 0, 7, -1024), None, (0,) * 6 + (1024,))),
        lf.LoopFilter(tuple(tuple(int(c) for c in rng.integers(-lf.MAX_COEF, lf.MAX_COEF + 1, n))
                            for n in (lf.N_LUMA, lf.N_CHROMA, lf.N_CHROMA))),
    ]
    for filt in cases:
        assert lf.decode(lf.encode(filt)) == filt
    assert lf.encode(cases[0]) == b""  # "all off" costs nothing inside its segment
    with pytest.raises(ValueError):
        lf.encode(lf.LoopFilter(((1, 2), None, None)))  # wrong coefficient count
    with pytest.raises(ValueError):
        lf.encode(lf.LoopFilter(((lf.MAX_COEF + 1,) + (0,) * 5, None, None)))


def test_malformed_segments_are_bitstream_errors() -> None:
    # Segments that are not a valid coding of this syntax (the range decoder's own
    # checks, a magnitude above MAX_COEF, bytes left over) raise BitstreamError and nothing else.
    rng = np.random.default_rng(2)
    errors = 0
    for n in range(300):
        data = rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes()
        try:
            filt = lf.decode(data)
        except BitstreamError:
            errors += 1
            continue
        assert all(c is None or all(abs(x) <= lf.MAX_COEF for x in c) for c in filt.planes)
    assert errors > 0


def _reference_apply(planes, filt):
    """Per-sample reading of docs/bitstream.md section 10 (independent of loopfilter.py)."""
    y, u, v = (p.astype(np.int64) for p in planes)
    h, w = y.shape
    ch, cw = u.shape

    def at(p, r, c):
        return int(p[min(max(r, 0), p.shape[0] - 1), min(max(c, 0), p.shape[1] - 1)])

    def luma2(r, c):  # luma edge-replicated to twice the chroma size: rows < 2*ch exist
        return at(y, min(r, h - 1), min(c, w - 1))

    def s(r, c):
        r, c = min(max(r, 0), ch - 1), min(max(c, 0), cw - 1)
        return sum(luma2(2 * r + a, 2 * c + b) for a in (0, 1) for b in (0, 1))

    out = []
    for i, p in enumerate((y, u, v)):
        coefs = filt.planes[i]
        if coefs is None:
            out.append(p.astype(np.uint8))
            continue
        o = np.empty(p.shape, dtype=np.uint8)
        taps = lf.LUMA_TAPS if i == 0 else lf.CHROMA_TAPS
        for r in range(p.shape[0]):
            for c in range(p.shape[1]):
                f = [at(p, r + dy, c + dx) + at(p, r - dy, c - dx) - 2 * at(p, r, c) for dy, dx in taps]
                if i:
                    f += [4 * s(r, c) - s(r - 1, c) - s(r + 1, c) - s(r, c - 1) - s(r, c + 1),
                          s(r, c + 1) - s(r, c - 1), s(r + 1, c) - s(r - 1, c),
                          luma2(2 * r, 2 * c) - luma2(2 * r + 1, 2 * c + 1),
                          luma2(2 * r, 2 * c + 1) - luma2(2 * r + 1, 2 * c)]
                acc = sum(k * x for k, x in zip(coefs, f))
                o[r, c] = min(max(int(p[r, c]) + ((acc + 64) >> 7), 0), 255)
        out.append(o)
    return tuple(out)


@pytest.mark.parametrize("h, w", [(9, 13), (16, 6), (5, 5)])
def test_apply_matches_the_spec_sample_by_sample(h: int, w: int) -> None:
    rng = np.random.default_rng(h * 100 + w)
    planes = _planes(rng, h, w)
    for trial in range(3):
        filt = lf.LoopFilter(tuple(
            None if trial == 1 and i == 1 else
            tuple(int(c) for c in rng.integers(-300, 301, n))
            for i, n in enumerate((lf.N_LUMA, lf.N_CHROMA, lf.N_CHROMA))))
        got = lf.apply(planes, filt)
        want = _reference_apply(planes, filt)
        for g, t in zip(got, want):
            assert g.dtype == np.uint8 and np.array_equal(g, t)


def test_fit_restores_a_blurred_frame_and_respects_lambda() -> None:
    rng = np.random.default_rng(3)
    target = _smooth(rng, 64, 80)
    recon = tuple(_blur(p) for p in target)
    filt, out = lf.fit(recon, target, (0.75, 0.5, 0.5), lam=1.0)
    assert filt.planes[0] is not None and filt.active
    assert all(np.array_equal(a, b) for a, b in zip(out, lf.apply(recon, filt)))  # what it returns
    for i, (r, o, t) in enumerate(zip(recon, out, target)):
        if filt.planes[i] is not None:
            sse = lambda a: float(np.square(a.astype(np.float64) - t).sum())  # noqa: E731
            assert sse(o) < 0.8 * sse(r)
    # A rate weight far above any gain turns every plane off.
    off, same = lf.fit(recon, target, (0.75, 0.5, 0.5), lam=1e9)
    assert not off.active and all(a is b for a, b in zip(same, recon))
    # A perfect reconstruction needs no filter.
    assert not lf.fit(target, target, (0.75, 0.5, 0.5), lam=1.0)[0].active


def test_fit_at_2x_targets_the_displayed_frame() -> None:
    rng = np.random.default_rng(4)
    target = _smooth(rng, 31, 41)
    src = Frame(*target)
    up = resample.upsample_frame(src)
    recon = tuple(_blur(_blur(p)) for p in up.planes())

    def output(planes):
        return resample.downsample_frame(Frame(*planes), src.width, src.height).planes()

    filt, _ = lf.fit(recon, target, (0.75, 0.5, 0.5), 1.0, output, scale=2)
    assert filt.planes[0] is not None
    before, after = output(recon), output(lf.apply(recon, filt))
    sse = lambda a, t: float(np.square(a.astype(np.float64) - t).sum())  # noqa: E731
    for i in range(3):
        if filt.planes[i] is not None:
            assert sse(after[i], target[i]) < sse(before[i], target[i])
