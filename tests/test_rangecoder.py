"""Adaptive binary range coder: exact round trips, compactness, robustness to garbage."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcodec.codec.rangecoder import (AdaptiveBitModel, RangeDecoder, RangeEncoder, decode_ueg,
                                     encode_ueg, models)
from mcodec.errors import BitstreamError


def _roundtrip(ops: list[tuple[int, int]], n_ctx: int = 4) -> bytes:
    """ops: (context index or -1 for bypass, bit). Encodes, decodes, checks, returns the stream."""
    enc, ctx = RangeEncoder(), models(n_ctx)
    for k, bit in ops:
        enc.encode_bypass(bit) if k < 0 else enc.encode_bit(bit, ctx[k])
    data = enc.finish()
    dec, ctx = RangeDecoder(data), models(n_ctx)
    out = [dec.decode_bypass() if k < 0 else dec.decode_bit(ctx[k]) for k, _ in ops]
    assert out == [b for _, b in ops]
    dec.finish()
    return data


@pytest.mark.parametrize("seed", range(20))
def test_random_roundtrip(seed: int) -> None:
    rnd = random.Random(seed)
    p = rnd.random()
    n = rnd.choice([0, 1, 2, 7, 100, 3000])
    _roundtrip([(rnd.randrange(-1, 4), int(rnd.random() < p)) for _ in range(n)])


@given(st.lists(st.tuples(st.integers(-1, 3), st.integers(0, 1)), max_size=400))
@settings(max_examples=150, deadline=None)
def test_roundtrip_property(ops: list[tuple[int, int]]) -> None:
    _roundtrip(ops)


def test_runs_cost_almost_nothing() -> None:
    assert _roundtrip([(0, 0)] * 10000) == b""          # zeros: empty stream
    assert len(_roundtrip([(0, 1)] * 10000)) <= 2
    assert len(_roundtrip([(0, 0)] * 5000 + [(0, 1)] + [(0, 0)] * 5000)) <= 4


def test_close_to_entropy() -> None:
    rnd = random.Random(7)
    p, n = 0.05, 20000
    data = _roundtrip([(0, int(rnd.random() < p)) for _ in range(n)])
    h = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    assert len(data) * 8 / n < 1.12 * h


def test_bypass_is_one_bit_each() -> None:
    rnd = random.Random(3)
    data = _roundtrip([(-1, rnd.randrange(2)) for _ in range(8000)])
    assert 995 <= len(data) <= 1005


def test_model_probability_stays_in_range() -> None:
    m = AdaptiveBitModel(limit=2)
    for _ in range(100):
        m.update(0)
    assert m.p0 == 65535
    for _ in range(100):
        m.update(1)
    assert m.p0 == 1
    with pytest.raises(ValueError):
        AdaptiveBitModel(limit=1)


@pytest.mark.parametrize("value", [1, 2, 3, 7, 8, 255, 65535, 65536, 2**31 - 1, 2**31])
def test_elias_gamma_roundtrip(value: int) -> None:
    max_prefix = 31
    enc, ctx = RangeEncoder(), models(8)
    encode_ueg(enc, value, ctx, max_prefix)
    encode_ueg(enc, 5, ctx, max_prefix)
    dec, ctx = RangeDecoder(enc.finish()), models(8)
    assert decode_ueg(dec, ctx, max_prefix) == value
    assert decode_ueg(dec, ctx, max_prefix) == 5
    dec.finish()
    with pytest.raises(ValueError):
        encode_ueg(RangeEncoder(), 0, ctx)
    with pytest.raises(ValueError):
        encode_ueg(RangeEncoder(), 1 << 17, ctx, max_prefix=16)


def test_corrupt_streams_are_detected() -> None:
    with pytest.raises(BitstreamError):
        RangeDecoder(b"\xff\xff\xff\xff")                 # code >= range: impossible start
    enc, ctx = RangeEncoder(), models(1)
    for b in [1, 0, 1, 1, 0, 1] * 10:
        enc.encode_bit(b, ctx[0])
    data = enc.finish()
    # A few appended bytes may only replace the dropped zero padding; 8 cannot.
    dec, ctx = RangeDecoder(data + bytes(range(1, 9))), models(1)
    for _ in range(60):
        dec.decode_bit(ctx[0])
    with pytest.raises(BitstreamError):
        dec.finish()                                     # trailing garbage left unread


def test_finish_twice_is_an_error() -> None:
    enc = RangeEncoder()
    enc.finish()
    with pytest.raises(RuntimeError):
        enc.finish()


@given(st.binary(max_size=64), st.integers(0, 600))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_never_crash(data: bytes, n: int) -> None:
    try:
        dec, ctx = RangeDecoder(data), models(2)
        for i in range(n):
            dec.decode_bit(ctx[i & 1]) if i % 3 else dec.decode_bypass()
        assert dec.bytes_consumed <= 4 + 4 * n                # bounded reading
        dec.finish()
    except BitstreamError:
        pass
