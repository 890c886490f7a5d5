"""Patch masks: exact random masks, coded mask maps (exact, compact, robust), RD helpers."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcodec.codec.masking import (choose_mask, decode_mask, encode_mask, patch_sse,
                                  plane_patch_sse, random_mask, tube_mask)
from mcodec.codec.video_io import Frame
from mcodec.errors import BitstreamError


@pytest.mark.parametrize("shape,ratio,expected", [((14, 14), 0.75, 147), ((3, 5), 0.5, 8),
                                                  ((4, 4), 0.0, 0), ((4, 4), 1.0, 16),
                                                  ((0, 7), 0.5, 0), ((1, 1), 0.5, 1)])
def test_random_mask_exact_count(shape: tuple[int, int], ratio: float, expected: int) -> None:
    m = random_mask(shape, ratio, np.random.default_rng(0))
    assert m.shape == shape and m.dtype == bool and int(m.sum()) == expected
    b = random_mask(shape, ratio, np.random.default_rng(0), batch=5)
    assert b.shape == (5, *shape) and (b.reshape(5, -1).sum(axis=1) == expected).all()


def test_random_mask_is_uniform_reproducible_and_independent() -> None:
    masks = random_mask((6, 8), 0.25, np.random.default_rng(1), batch=4000)
    freq = masks.mean(axis=0)                                # each patch ~ 0.25
    assert np.abs(freq - 0.25).max() < 0.035
    assert len({m.tobytes() for m in masks[:50]}) == 50      # batch entries differ
    a = random_mask((6, 8), 0.25, np.random.default_rng(7))
    b = random_mask((6, 8), 0.25, np.random.default_rng(7))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        random_mask((2, 2), 1.5, np.random.default_rng(0))


def test_tube_mask_repeats_over_time() -> None:
    t = tube_mask((5, 7), 8, 0.9, np.random.default_rng(2))
    assert t.shape == (8, 5, 7) and (t == t[0]).all() and int(t[0].sum()) == 32
    tb = tube_mask((5, 7), 3, 0.5, np.random.default_rng(2), batch=2)
    assert tb.shape == (2, 3, 5, 7) and (tb == tb[:, :1]).all()
    with pytest.raises(ValueError):
        tube_mask((5, 7), 0, 0.5, np.random.default_rng(2))


def _structured(shape: tuple[int, int]) -> list[np.ndarray]:
    hp, wp = shape
    r, c = np.mgrid[:hp, :wp]
    return [np.zeros(shape, bool), np.ones(shape, bool), (r + c) % 2 == 0, r % 3 == 0, c < wp // 2,
            (r - hp / 2) ** 2 + (c - wp / 2) ** 2 < (min(hp, wp) / 3) ** 2]


@pytest.mark.parametrize("shape", [(36, 45), (15, 26), (1, 1), (1, 9), (9, 1), (0, 5), (5, 0)])
def test_mask_roundtrip(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(3)
    masks = _structured(shape) + [rng.random(shape) < p for p in (0.02, 0.3, 0.5, 0.9)]
    for m in masks:
        back = decode_mask(encode_mask(m), shape)
        assert back.dtype == bool and np.array_equal(back, m)


def test_uniform_masks_cost_a_few_bytes() -> None:
    for shape in [(36, 45), (68, 120), (3, 3)]:
        assert len(encode_mask(np.zeros(shape, bool))) <= 8
        assert len(encode_mask(np.ones(shape, bool))) <= 8
    blob = np.zeros((36, 45), bool)
    blob[10:20, 5:30] = True                                 # one region: still small
    assert len(encode_mask(blob)) < 30


def test_random_mask_costs_near_one_bit_per_patch() -> None:
    m = random_mask((36, 45), 0.5, np.random.default_rng(4))
    assert len(encode_mask(m)) * 8 < 1.1 * m.size


@given(st.lists(st.lists(st.booleans(), min_size=4, max_size=4), max_size=12))
@settings(max_examples=100, deadline=None)
def test_mask_roundtrip_property(rows: list[list[bool]]) -> None:
    m = np.array(rows, dtype=bool).reshape(len(rows), 4)
    assert np.array_equal(decode_mask(encode_mask(m), m.shape), m)


@given(st.binary(max_size=64), st.integers(0, 20), st.integers(0, 20))
@settings(max_examples=300, deadline=None)
def test_decode_mask_arbitrary_bytes(data: bytes, hp: int, wp: int) -> None:
    t = time.perf_counter()
    try:
        m = decode_mask(data, (hp, wp))
    except BitstreamError:
        pass
    else:
        assert m.shape == (hp, wp) and m.dtype == bool
    assert time.perf_counter() - t < 1.0


def test_plane_patch_sse_partial_patches() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (17, 33), dtype=np.uint8)
    b = rng.integers(0, 256, (17, 33), dtype=np.uint8)
    s = plane_patch_sse(a, b, 8)
    assert s.shape == (3, 5) and s.dtype == np.int64
    d = (a.astype(np.int64) - b) ** 2
    for i in range(3):
        for j in range(5):
            assert s[i, j] == d[8 * i:8 * i + 8, 8 * j:8 * j + 8].sum()
    assert s.sum() == d.sum()


def test_patch_sse_yuv420() -> None:
    rng = np.random.default_rng(6)

    def frame() -> Frame:
        return Frame(rng.integers(0, 256, (17, 33), dtype=np.uint8),
                     rng.integers(0, 256, (9, 17), dtype=np.uint8),
                     rng.integers(0, 256, (9, 17), dtype=np.uint8))

    a, b = frame(), frame()
    s = patch_sse(a, b, 16)                                  # luma 16, chroma 8
    expected = (plane_patch_sse(a.y, b.y, 16) + plane_patch_sse(a.u, b.u, 8)
                + plane_patch_sse(a.v, b.v, 8))
    assert s.shape == (2, 3) and np.array_equal(s, expected)
    assert np.array_equal(patch_sse(a.planes(), b.planes(), 16), s)
    w = patch_sse(a, b, 16, chroma_weight=0.5)
    assert np.allclose(w, plane_patch_sse(a.y, b.y, 16) + 0.5 * (expected - plane_patch_sse(a.y, b.y, 16)))
    assert not patch_sse(a, a, 16).any()
    with pytest.raises(ValueError):
        patch_sse(a, b, 15)


def test_choose_mask_rule() -> None:
    d_mask = np.array([[10.0, 50.0], [100.0, 30.0]])
    d_code = np.array([[5.0, 5.0], [5.0, 30.0]])
    r_code = np.array([[10.0, 10.0], [10.0, 0.0]])
    # masked iff D_mask <= D_code + lam * R_code; ties mask (no bits spent).
    assert choose_mask(d_mask, d_code, r_code, 1.0).tolist() == [[True, False], [False, True]]
    assert choose_mask(d_mask, d_code, r_code, 4.5).tolist() == [[True, True], [False, True]]
    assert choose_mask(d_mask, d_code, r_code, 0.0).tolist() == [[False, False], [False, True]]
    with pytest.raises(ValueError):
        choose_mask(d_mask, d_code, r_code, -1.0)
