"""Patch masks: exact random masks, coded mask maps (exact, compact, robust)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcodec.codec.masking import decode_mask, encode_mask, random_mask, tube_mask
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
