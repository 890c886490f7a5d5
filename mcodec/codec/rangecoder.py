"""Adaptive binary range coder (pure Python, integer-only, bit-exact everywhere).

Used for side information that is small but must be compact and robust: motion
vectors (`mcodec.codec.motion`) and patch mask maps (`mcodec.codec.masking`).

Design (the LZMA range coder with a count-based probability estimator):

* 32-bit range, carry handled with LZMA's cache + 0xFF-run scheme.
* Probabilities are 16-bit (`p0` = P(bit == 0) * 65536, always in [1, 65535]),
  so a well-predicted bit costs as little as ~0.0007 bit; long runs of one
  symbol (an all-zero mask, a static scene's motion) cost almost nothing.
* `AdaptiveBitModel` adapts with step 1/(n+2) while it has seen n < limit-2
  bits (the Krichevsky-Trofimov estimate: it learns "always 0" after a few
  symbols) and with a fixed step 1/limit afterwards (tracks drifting statistics).
* Compact termination: the flush picks the value in the final interval with the
  most trailing zero bytes, the always-zero leading byte is not written, and
  trailing zero bytes are dropped (the decoder reads zeros past the end). A
  stream of only "most probable" zero decisions therefore costs 0 bytes.

Robustness: any byte string can be fed to `RangeDecoder`. It never reads
unboundedly (one byte per renormalisation; callers bound the number of
decisions), raises `BitstreamError` when the first four bytes cannot start a
valid stream, and `finish()` raises when bytes were left unread (a valid stream
is consumed exactly). All arithmetic is on Python ints, so results are
identical on every machine.
"""

from __future__ import annotations

import functools
import math

from mcodec.errors import BitstreamError

PROB_BITS = 16
PROB_ONE = 1 << PROB_BITS          # probabilities are p0 / PROB_ONE
_HALF = PROB_ONE // 2
_TOP = 1 << 24                      # renormalise when range drops below this
_MASK32 = 0xFFFFFFFF


class AdaptiveBitModel:
    """Adaptive probability of one binary context.

    Attributes:
        p0: P(bit == 0) in units of 1/65536, in [1, 65535].
        count: bits seen, saturating at `limit` - 2.
        limit: largest adaptation divisor (window ~ `limit` symbols).
    """

    __slots__ = ("p0", "count", "limit")

    def __init__(self, limit: int = 32) -> None:
        if not 2 <= limit <= 1024:
            raise ValueError(f"limit {limit} out of range [2, 1024]")
        self.p0 = _HALF
        self.count = 0
        self.limit = limit

    def update(self, bit: int) -> None:
        """Move p0 towards the observed bit (KT estimator, then exponential window)."""
        d = self.count + 2
        if d < self.limit:
            self.count += 1
        else:
            d = self.limit
        # Both steps are strictly smaller than the distance to 0 / 65536 (d >= 2),
        # so p0 stays in [1, 65535] and both sub-intervals stay non-empty.
        if bit:
            self.p0 -= self.p0 // d
        else:
            self.p0 += (PROB_ONE - self.p0) // d


def models(n: int, limit: int = 32) -> list[AdaptiveBitModel]:
    """`n` fresh adaptive contexts."""
    return [AdaptiveBitModel(limit) for _ in range(n)]


class RangeEncoder:
    """Encoder: feed bits with `encode_bit` / `encode_bypass`, then call `finish()` once."""

    def __init__(self) -> None:
        self._low = 0               # up to 33 bits: bit 32 is a pending carry
        self._range = _MASK32
        self._cache = 0             # last byte not yet written (may still get a carry)
        self._cache_size = 1        # cache byte + number of pending 0xFF bytes
        self._out = bytearray()
        self._done = False

    def _shift_low(self) -> None:
        low = self._low
        if low < 0xFF000000 or low > _MASK32:
            carry = low >> 32
            temp = self._cache
            while True:
                self._out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self._cache_size -= 1
                if self._cache_size == 0:
                    break
            self._cache = (low >> 24) & 0xFF
        self._cache_size += 1
        self._low = (low << 8) & _MASK32

    def _encode(self, bit: int, p0: int) -> None:
        bound = (self._range >> PROB_BITS) * p0
        if bit:
            self._low += bound
            self._range -= bound
        else:
            self._range = bound
        while self._range < _TOP:
            self._range <<= 8
            self._shift_low()

    def encode_bit(self, bit: int | bool, model: AdaptiveBitModel) -> None:
        """Code one bit with an adaptive context, then update the context."""
        b = 1 if bit else 0
        self._encode(b, model.p0)
        model.update(b)

    def encode_bypass(self, bit: int | bool) -> None:
        """Code one equiprobable bit (no context)."""
        self._encode(1 if bit else 0, _HALF)

    def encode_bits(self, value: int, nbits: int) -> None:
        """Code the low `nbits` bits of `value` (MSB first) as bypass bits."""
        for i in range(nbits - 1, -1, -1):
            self._encode((value >> i) & 1, _HALF)

    def finish(self) -> bytes:
        """Terminate and return the stream (shortest form: see the module docstring)."""
        if self._done:
            raise RuntimeError("RangeEncoder.finish() called twice")
        self._done = True
        # Any value in [low, low + range) decodes correctly; take the one with the
        # most trailing zero bytes, which the decoder will then read as padding.
        hi = self._low + self._range          # exclusive
        for k in (32, 24, 16, 8, 0):
            m = (1 << k) - 1
            v = (self._low + m) & ~m
            if v < hi:
                self._low = v
                break
        for _ in range(5):
            self._shift_low()
        out = bytes(self._out)
        assert out[0] == 0, "range coder leading byte must be zero"
        return out[1:].rstrip(b"\x00")


class RangeDecoder:
    """Decoder for `RangeEncoder` streams; mirror the encoder's calls exactly.

    Raises BitstreamError if `data` cannot be the start of a stream; reads past
    the end of `data` return zero bytes (the encoder drops trailing zeros).
    """

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)
        self._pos = 0
        code = 0
        for _ in range(4):
            code = (code << 8) | self._next_byte()
        self._range = _MASK32
        if code >= self._range:
            raise BitstreamError("range coder stream starts with an impossible code value", 0)
        self._code = code

    def _next_byte(self) -> int:
        pos = self._pos
        self._pos = pos + 1
        return self._data[pos] if pos < len(self._data) else 0

    def _decode(self, p0: int) -> int:
        bound = (self._range >> PROB_BITS) * p0
        if self._code < bound:
            self._range = bound
            bit = 0
        else:
            self._code -= bound
            self._range -= bound
            bit = 1
        while self._range < _TOP:
            self._range <<= 8
            self._code = ((self._code << 8) | self._next_byte()) & _MASK32
        return bit

    def decode_bit(self, model: AdaptiveBitModel) -> int:
        """Decode one bit with an adaptive context, then update the context."""
        bit = self._decode(model.p0)
        model.update(bit)
        return bit

    def decode_bypass(self) -> int:
        """Decode one equiprobable bit."""
        return self._decode(_HALF)

    def decode_bits(self, nbits: int) -> int:
        """Decode `nbits` bypass bits, MSB first."""
        v = 0
        for _ in range(nbits):
            v = (v << 1) | self._decode(_HALF)
        return v

    @property
    def bytes_consumed(self) -> int:
        """Bytes read so far, including zero padding past the end of the data."""
        return self._pos

    def finish(self) -> None:
        """Check the whole input was used: a valid stream is consumed exactly
        (its dropped trailing zeros are read as padding), so unread bytes mean
        corruption or trailing garbage."""
        if self._pos < len(self._data):
            raise BitstreamError(f"range coder stream has {len(self._data) - self._pos} "
                                 "unread trailing byte(s)", self._pos)


def encode_ueg(enc: RangeEncoder, value: int, prefix: list[AdaptiveBitModel],
               max_prefix: int = 31) -> None:
    """Adaptive Elias-gamma code of `value` >= 1.

    k = bit_length(value) - 1 is sent in unary with contexts prefix[min(i, len-1)]
    (the terminating 0 is omitted when k == max_prefix), then the k bits below the
    leading one as bypass bits. Values must satisfy value < 2 ** (max_prefix + 1).
    """
    if value < 1 or value.bit_length() - 1 > max_prefix:
        raise ValueError(f"value {value} outside [1, 2**{max_prefix + 1})")
    k = value.bit_length() - 1
    last = len(prefix) - 1
    for i in range(k):
        enc.encode_bit(1, prefix[min(i, last)])
    if k < max_prefix:
        enc.encode_bit(0, prefix[min(k, last)])
    enc.encode_bits(value, k)


def decode_ueg(dec: RangeDecoder, prefix: list[AdaptiveBitModel], max_prefix: int = 31) -> int:
    """Inverse of `encode_ueg`; bounded work (at most 2 * max_prefix + 1 decisions)."""
    last = len(prefix) - 1
    k = 0
    while k < max_prefix and dec.decode_bit(prefix[min(k, last)]):
        k += 1
    return (1 << k) | dec.decode_bits(k)


@functools.lru_cache(maxsize=1)
def _cost_table() -> tuple[float, ...]:
    """-log2(p / PROB_ONE) for every p in [0, PROB_ONE) (index 0 unused: p >= 1)."""
    return (0.0, *(-math.log2(p / PROB_ONE) for p in range(1, PROB_ONE)))


class BitCounter:
    """A stand-in for `RangeEncoder` that writes nothing: it adds up the ideal cost in
    bits (-log2 of each decision's probability, 1 per bypass bit) in `bits`, and, with
    `update`, adapts the contexts exactly as the real encoder would. The encoder's
    searches cost a candidate with `update=False` (contexts untouched) and commit the
    chosen one with `update=True`."""

    def __init__(self, update: bool = False) -> None:
        self.update = update
        self.bits = 0.0

    def encode_bit(self, bit: int | bool, model: AdaptiveBitModel) -> None:
        b = 1 if bit else 0
        p0 = model.p0
        self.bits += _cost_table()[PROB_ONE - p0 if b else p0]
        if self.update:
            model.update(b)

    def encode_bypass(self, bit: int | bool) -> None:
        self.bits += 1.0

    def encode_bits(self, value: int, nbits: int) -> None:
        self.bits += nbits
