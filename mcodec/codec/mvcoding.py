"""Motion-vector syntax: the entropy coding of motion fields (both sides).

P fields (`encode_motion` / `decode_motion`): vectors in raster order, predicted
by the component-wise median of left / top / top-right neighbours (fallbacks at
the picture edges, `motion.median_predictor`); the difference is coded with the
adaptive binary range coder of `mcodec.codec.rangecoder`: a "zero difference"
flag (context: how many of the left and top blocks had a non-zero difference),
per-component non-zero flags, adaptive Elias-gamma magnitudes and bypass signs.
A static scene costs 0 bytes, a uniform pan a handful.

Bi fields (`encode_bi_motion` / `decode_bi_motion`): per block its mode, then
the vector of each reference it uses (temporal direct and mirrored prediction
in BI_BOTH blocks).

`BlockCoder` and `BiBlockCoder` write one block at a time with the writers'
exact state, so that the encoder's search can cost a candidate with the bits it
will really spend (`mcodec.codec.motion_search`).
"""

from __future__ import annotations

import numpy as np

from mcodec.codec.motion import (
    BI_BACKWARD,
    BI_BOTH,
    BI_FORWARD,
    BiField,
    MotionField,
    mirrored,
    scalar_predictor,
)
from mcodec.codec.rangecoder import (
    AdaptiveBitModel,
    RangeDecoder,
    RangeEncoder,
    decode_ueg,
    encode_ueg,
    models,
)
from mcodec.errors import BitstreamError

# Largest decoded-vector magnitude difference: int16 vectors and int16 predictors
# differ by less than 2**16, so Elias-gamma prefixes never exceed 16.
_MAX_PREFIX = 16
_MAX_BLOCKS = 1 << 22          # sanity bound on decode_motion's block count


# --------------------------------------------------------------------------- vector coding

class _MVContexts:
    """Adaptive contexts of the vector coder (fresh per field)."""

    def __init__(self) -> None:
        self.zero = models(3)                  # "difference != (0, 0)", ctx = #non-zero left/top
        self.nzy = AdaptiveBitModel()          # "dy != 0" (when dy == 0, dx != 0 is implied)
        self.nzx = AdaptiveBitModel()          # "dx != 0" given dy != 0
        self.prefix = [models(8), models(8)]   # per component Elias-gamma prefix contexts


def encode_motion(field: MotionField) -> bytes:
    """Entropy-code a field's vectors (block size and shape are not included:
    the container knows them). Static fields cost 0 bytes."""
    enc = RangeEncoder()
    write_motion(enc, field)
    return enc.finish()


def write_motion(enc: RangeEncoder, field: MotionField) -> None:
    """`encode_motion` into an open range coder (format version 4 codes a frame's side
    information in one stream)."""
    hb, wb = field.shape_in_blocks
    vectors = field.vectors.tolist()                                     # (Hb, Wb, 2) lists
    coder = BlockCoder((hb, wb))
    for r in range(hb):
        for c in range(wb):
            coder.write(enc, r, c, vectors[r][c])


class BlockCoder:
    """The block-by-block state of `write_motion` (the vectors so far, the adaptive
    contexts): `write` codes one block's vector against the median predictor of the
    blocks before it, so that the encoder's search can cost a candidate exactly (into a
    `BitCounter` that leaves the contexts alone) before committing one; `write_motion`
    is every block written in raster order."""

    def __init__(self, shape_in_blocks: tuple[int, int]) -> None:
        hb, wb = shape_in_blocks
        self.wb = wb
        self.v = np.zeros((hb, wb, 2), np.int64)
        self.nonzero = [[False] * wb for _ in range(hb)]
        self.ctx = _MVContexts()

    def predictor(self, r: int, c: int) -> tuple[int, int]:
        return scalar_predictor(self.v, r, c, self.wb)

    def write(self, enc, r: int, c: int, vec) -> None:
        py, px = scalar_predictor(self.v, r, c, self.wb)
        self.v[r, c] = (int(vec[0]), int(vec[1]))
        _encode_difference(enc, int(vec[0]) - py, int(vec[1]) - px, self.ctx, self.nonzero, r, c)


def _checked_blocks(shape_in_blocks: tuple[int, int]) -> tuple[int, int]:
    """(Hb, Wb) as ints, refused (ValueError) beyond the decoders' block bound."""
    hb, wb = (int(s) for s in shape_in_blocks)
    if hb < 0 or wb < 0 or hb * wb > _MAX_BLOCKS:
        raise ValueError(f"shape_in_blocks {shape_in_blocks} out of range")
    return hb, wb


def _checked_vector(y: int, x: int, r: int, c: int) -> tuple[int, int]:
    """A decoded vector of block (r, c), refused (BitstreamError) outside int16."""
    if not (-32768 <= y <= 32767 and -32768 <= x <= 32767):
        raise BitstreamError(f"motion vector ({y}, {x}) of block ({r}, {c}) outside int16")
    return y, x


def _encode_component(enc: RangeEncoder, d: int, prefix: list[AdaptiveBitModel]) -> None:
    encode_ueg(enc, abs(d), prefix, _MAX_PREFIX)
    enc.encode_bypass(d < 0)


def _decode_component(dec: RangeDecoder, prefix: list[AdaptiveBitModel]) -> int:
    m = decode_ueg(dec, prefix, _MAX_PREFIX)
    return -m if dec.decode_bypass() else m


def decode_motion(data: bytes, shape_in_blocks: tuple[int, int], block: int) -> MotionField:
    """Inverse of `encode_motion` for a field of `shape_in_blocks` (Hb, Wb).

    Raises BitstreamError for data that is not a valid stream (a vector outside
    int16, unread trailing bytes, an impossible start); work is bounded by the
    block count (at most ~70 binary decisions per block).
    """
    dec = RangeDecoder(data)
    field = read_motion(dec, shape_in_blocks, block)
    dec.finish()
    return field


def read_motion(dec: RangeDecoder, shape_in_blocks: tuple[int, int], block: int) -> MotionField:
    """`decode_motion` from an open range decoder."""
    hb, wb = _checked_blocks(shape_in_blocks)
    ctx = _MVContexts()
    v = np.zeros((hb, wb, 2), np.int64)
    nonzero = [[False] * wb for _ in range(hb)]
    for r in range(hb):
        for c in range(wb):
            py, px = scalar_predictor(v, r, c, wb)
            dy, dx = _decode_difference(dec, ctx, nonzero, r, c)
            v[r, c] = _checked_vector(py + dy, px + dx, r, c)
    return MotionField(block, v.astype(np.int16))



class _BiContexts:
    def __init__(self) -> None:
        self.both = models(3)          # "mode == BI_BOTH", ctx = #left/top blocks with BI_BOTH
        self.backward = models(3)      # "mode == BI_BACKWARD" given not both, ctx = #left/top backward
        self.lists = (_MVContexts(), _MVContexts())


def _mode_context(m: list[list[int]], r: int, c: int, value: int) -> int:
    return (c > 0 and m[r][c - 1] == value) + (r > 0 and m[r - 1][c] == value)



def encode_bi_motion(field: BiField, distances: tuple[int, int] = (1, 1),
                     direct: np.ndarray | None = None) -> bytes:
    """Entropy-code a bi field: per block in raster order its mode, then the vector of
    each reference it uses, as a difference from its prediction: the median
    predictor of that reference's vectors, except in a BI_BOTH block, where the
    forward vector is predicted by `direct` (the temporal direct vectors,
    `direct_vectors`, when the future reference has a field) and the backward
    one by `mirrored` from the forward one (constant motion through the frame,
    `distances` = frames to the past and future references): a block moving
    steadily costs two flags.

    A vector a block does not use is not sent; both sides set it to its
    predictor, so neighbours predict from it as if it had been coded.
    """
    enc = RangeEncoder()
    write_bi_motion(enc, field, distances, direct)
    return enc.finish()


def write_bi_motion(enc: RangeEncoder, field: BiField, distances: tuple[int, int] = (1, 1),
                    direct: np.ndarray | None = None) -> None:
    """`encode_bi_motion` into an open range coder."""
    hb, wb = field.modes.shape
    modes = field.modes.tolist()
    src = (field.forward.vectors.astype(np.int64), field.backward.vectors.astype(np.int64))
    coder = BiBlockCoder((hb, wb), distances, direct)
    for r in range(hb):
        for c in range(wb):
            coder.write(enc, r, c, modes[r][c], src[0][r, c], src[1][r, c])


class BiBlockCoder:
    """The block-by-block state of `write_bi_motion` (modes so far, the vectors both
    sides hold, the adaptive contexts), so that the encoder's search can cost a
    candidate for a block exactly as it would be coded (`write` into a bit-counting
    encoder that leaves the contexts alone) before committing one (`write` into the
    real encoder, or one that only updates the contexts)."""

    def __init__(self, shape_in_blocks: tuple[int, int], distances: tuple[int, int] = (1, 1),
                 direct: np.ndarray | None = None) -> None:
        hb, wb = shape_in_blocks
        self.wb, self.distances, self.direct = wb, distances, direct
        self.modes = [[0] * wb for _ in range(hb)]
        self.v = [np.zeros((hb, wb, 2), np.int64), np.zeros((hb, wb, 2), np.int64)]
        self.nonzero = [[[False] * wb for _ in range(hb)] for _ in range(2)]
        self.ctx = _BiContexts()

    def predictor(self, k: int, r: int, c: int, mode: int) -> tuple[int, int]:
        """The prediction of block (r, c)'s vector into reference k (0 past, 1 future) in
        `mode`, given the blocks before it (a BI_BOTH block's backward predictor needs
        its forward vector in `v[0][r, c]`)."""
        if mode == BI_BOTH:
            if k:
                return mirrored(self.v[0][r, c], self.distances)
            if self.direct is not None:
                return int(self.direct[r, c, 0]), int(self.direct[r, c, 1])
        return scalar_predictor(self.v[k], r, c, self.wb)

    def write(self, enc, r: int, c: int, mode: int, fwd, bwd) -> None:
        """Code block (r, c): its mode, then each vector it uses (`fwd`, `bwd`: (2,) quarter
        pel) as a difference from its predictor; an unused vector becomes its predictor."""
        modes, ctx = self.modes, self.ctx
        modes[r][c] = mode
        enc.encode_bit(mode == BI_BOTH, ctx.both[_mode_context(modes, r, c, BI_BOTH)])
        if mode != BI_BOTH:
            enc.encode_bit(mode == BI_BACKWARD, ctx.backward[_mode_context(modes, r, c, BI_BACKWARD)])
        for k, vec in ((0, fwd), (1, bwd)):
            if mode == (BI_BACKWARD if k == 0 else BI_FORWARD):
                self.v[k][r, c] = scalar_predictor(self.v[k], r, c, self.wb)
                # As in a fresh coder (a trial write of another mode may have set it).
                self.nonzero[k][r][c] = False
                continue
            pred = self.predictor(k, r, c, mode)
            dy, dx = int(vec[0]) - pred[0], int(vec[1]) - pred[1]
            self.v[k][r, c] = (int(vec[0]), int(vec[1]))
            _encode_difference(enc, dy, dx, ctx.lists[k], self.nonzero[k], r, c)


def _encode_difference(enc: RangeEncoder, dy: int, dx: int, ctx: _MVContexts,
                       nonzero: list[list[bool]], r: int, c: int) -> None:
    """One vector difference (flags, Elias-gamma magnitudes, bypass signs); `nonzero`
    records which blocks had one, the zero flag's context."""
    k = (c > 0 and nonzero[r][c - 1]) + (r > 0 and nonzero[r - 1][c])
    nz = dy != 0 or dx != 0
    nonzero[r][c] = nz
    enc.encode_bit(nz, ctx.zero[k])
    if not nz:
        return
    enc.encode_bit(dy != 0, ctx.nzy)
    if dy != 0:
        _encode_component(enc, dy, ctx.prefix[0])
        enc.encode_bit(dx != 0, ctx.nzx)
        if dx != 0:
            _encode_component(enc, dx, ctx.prefix[1])
    else:
        _encode_component(enc, dx, ctx.prefix[1])


def _decode_difference(dec: RangeDecoder, ctx: _MVContexts, nonzero: list[list[bool]],
                       r: int, c: int) -> tuple[int, int]:
    k = (c > 0 and nonzero[r][c - 1]) + (r > 0 and nonzero[r - 1][c])
    if not dec.decode_bit(ctx.zero[k]):
        return 0, 0
    nonzero[r][c] = True
    if dec.decode_bit(ctx.nzy):
        dy = _decode_component(dec, ctx.prefix[0])
        return dy, (_decode_component(dec, ctx.prefix[1]) if dec.decode_bit(ctx.nzx) else 0)
    return 0, _decode_component(dec, ctx.prefix[1])


def decode_bi_motion(data: bytes, shape_in_blocks: tuple[int, int], block: int,
                     distances: tuple[int, int] = (1, 1), direct: np.ndarray | None = None) -> BiField:
    """Inverse of `encode_bi_motion` (BitstreamError on invalid data, bounded work)."""
    dec = RangeDecoder(data)
    field = read_bi_motion(dec, shape_in_blocks, block, distances, direct)
    dec.finish()
    return field


def read_bi_motion(dec: RangeDecoder, shape_in_blocks: tuple[int, int], block: int,
                   distances: tuple[int, int] = (1, 1), direct: np.ndarray | None = None) -> BiField:
    """`decode_bi_motion` from an open range decoder."""
    hb, wb = _checked_blocks(shape_in_blocks)
    ctx = _BiContexts()
    modes = [[0] * wb for _ in range(hb)]
    v = [np.zeros((hb, wb, 2), np.int64), np.zeros((hb, wb, 2), np.int64)]
    nonzero = [[[False] * wb for _ in range(hb)] for _ in range(2)]
    for r in range(hb):
        for c in range(wb):
            if dec.decode_bit(ctx.both[_mode_context(modes, r, c, BI_BOTH)]):
                mode = BI_BOTH
            else:
                mode = BI_BACKWARD if dec.decode_bit(ctx.backward[_mode_context(modes, r, c, BI_BACKWARD)]) \
                    else BI_FORWARD
            modes[r][c] = mode
            for k in (0, 1):
                py, px = scalar_predictor(v[k], r, c, wb)
                if mode == (BI_BACKWARD if k == 0 else BI_FORWARD):
                    v[k][r, c] = (py, px)
                    continue
                if mode == BI_BOTH:
                    py, px = mirrored(v[0][r, c], distances) if k else \
                        (py, px) if direct is None else (int(direct[r, c, 0]), int(direct[r, c, 1]))
                dy, dx = _decode_difference(dec, ctx.lists[k], nonzero[k], r, c)
                v[k][r, c] = _checked_vector(py + dy, px + dx, r, c)
    return BiField(np.array(modes, np.uint8).reshape(hb, wb), MotionField(block, v[0].astype(np.int16)),
                   MotionField(block, v[1].astype(np.int16)))
