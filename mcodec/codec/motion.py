"""Classical block motion: estimation, bit-exact compensation, vector coding.

The temporal predictor of a P frame needs no training: the encoder block-matches
the current luma against the previous *decoded* luma, sends one quarter-pel
vector per block, and both sides build the same prediction with integer-only
interpolation. The learned parts of the codec then code what it misses.

Conventions:
    * Planes are uint8 YUV 4:2:0: y (H, W), u and v (ceil(H/2), ceil(W/2)).
    * One vector per `block` x `block` luma block, Hb = ceil(H / block),
      Wb = ceil(W / block); edge blocks may be partial. Chroma blocks are
      block/2 on the chroma grid, which covers the same Hb x Wb blocks.
    * Vectors are int16 (dy, dx) in quarter luma pixels; the prediction of luma
      pixel (r, c) is ref(r + dy/4, c + dx/4), taken from the reference extended
      by edge replication to infinity, so any vector is valid.
    * Luma interpolation is H.264's: 6-tap (1, -5, 20, 20, -5, 1)/32 half
      samples (the centre one from unrounded intermediates, /1024), quarter
      samples as the rounded-up mean of the two nearest integer/half samples
      (diagonal quarters: of the two nearest half samples). Chroma uses the same
      vector as eighth chroma pixels with H.264's bilinear filter. Everything is
      numpy int32, so the prediction is bit-exact on every machine.
    * `compensate_obmc` (overlapped block motion compensation, a header flag of
      the stream) blends, near block edges, the predictions made with the
      neighbouring blocks' vectors into each block's own (integer weights).

Motion search (`estimate_motion`), vectorised over all blocks: full search on a
2x2-averaged pyramid (1/4 resolution for 16x16 blocks), +-1 refinement per
level, then at full resolution the best of {pyramid vector, zero, neighbours'
vectors, their median} and an iterated +-1 square search, then half- and
quarter-pel refinement and two passes that re-cost every block against the
median predictor of its final sub-pel neighbours. Cost = SAD + lam * estimated
bits of the vector difference. Work is bounded: (2*ceil(search/4)+1)^2 shifts
of a 1/16-size frame, then at most ~190 block-cost evaluations per block
(typically ~60; iterations stop where vectors stop moving).

Measured speed of `estimate_motion` (block 16, search 16, subpel 4, lam 4; one
CPU core via taskset, numpy 1.26, shared 2-core machine under load; median of 5
runs on frames of the development clips):
    720x576 (and 704x576): ~0.24 s      720x480: ~0.16-0.20 s      416x240: ~0.06 s
Its integer stage reaches within ~2 % of exhaustive +-16 search SAD.
compensate: ~0.02 s at 720x576; encode_motion / decode_motion: ~3 / ~6 ms.

Vector coding (`encode_motion` / `decode_motion`): vectors in raster order,
predicted by the component-wise median of left / top / top-right neighbours
(fallbacks at the picture edges, see `median_predictor`); the difference is
coded with the adaptive binary range coder of `mcodec.codec.rangecoder`: a
"zero difference" flag (context: how many of the left and top blocks had a
non-zero difference), per-component non-zero flags, adaptive Elias-gamma
magnitudes and bypass signs. A static scene costs 0 bytes, a uniform pan a
handful.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcodec.codec.rangecoder import (AdaptiveBitModel, RangeDecoder, RangeEncoder, decode_ueg,
                                     encode_ueg, models)
from mcodec.errors import BitstreamError

# Largest decoded-vector magnitude difference: int16 vectors and int16 predictors
# differ by less than 2**16, so Elias-gamma prefixes never exceed 16.
_MAX_PREFIX = 16
_MAX_BLOCKS = 1 << 22          # sanity bound on decode_motion's block count


@dataclass(frozen=True, eq=False)
class MotionField:
    """One motion vector per luma block.

    Attributes:
        block: luma block size in pixels (even, >= 2).
        vectors: (Hb, Wb, 2) int16, (dy, dx) in quarter luma pixels; read-only.
    """

    block: int
    vectors: np.ndarray

    def __post_init__(self) -> None:
        if not (isinstance(self.block, (int, np.integer)) and self.block >= 2 and self.block % 2 == 0):
            raise ValueError(f"block {self.block!r} must be an even int >= 2")
        v = np.asarray(self.vectors)
        if v.ndim != 3 or v.shape[2] != 2:
            raise ValueError(f"vectors shape {v.shape}, expected (Hb, Wb, 2)")
        if not np.issubdtype(v.dtype, np.integer):
            raise ValueError(f"vectors dtype {v.dtype}, expected integers")
        if v.dtype != np.int16:
            if v.size and (v.min() < -32768 or v.max() > 32767):
                raise ValueError("vectors do not fit int16")
            v = v.astype(np.int16)
        v = v.copy()
        v.flags.writeable = False
        object.__setattr__(self, "block", int(self.block))
        object.__setattr__(self, "vectors", v)

    @property
    def shape_in_blocks(self) -> tuple[int, int]:
        return int(self.vectors.shape[0]), int(self.vectors.shape[1])

    @classmethod
    def zeros(cls, shape_in_blocks: tuple[int, int], block: int) -> MotionField:
        """All-zero field (no motion)."""
        return cls(block, np.zeros((*shape_in_blocks, 2), np.int16))

    def equals(self, other: MotionField) -> bool:
        return self.block == other.block and np.array_equal(self.vectors, other.vectors)


def blocks_shape(height: int, width: int, block: int) -> tuple[int, int]:
    """(Hb, Wb) = (ceil(height / block), ceil(width / block))."""
    return -(-height // block), -(-width // block)


# --------------------------------------------------------------------------- interpolation

def _six_tap(x: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Unscaled H.264 6-tap sums along `axis`: output i uses inputs i..i+5 (int32)."""
    def s(k: int) -> np.ndarray:
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(k, k + n)
        return x[tuple(idx)]
    return s(0) - 5 * s(1) + 20 * s(2) + 20 * s(3) - 5 * s(4) + s(5)


def _half_grid(win: np.ndarray, n: int) -> np.ndarray:
    """Half-pel sample grid of windows.

    win: (N, n+5, n+5) integer samples, win[:, i, j] at position (i-2, j-2).
    Returns (N, 2n+1, 2n+1) int32 G with G[:, a, b] = sample at (a/2, b/2),
    positions 0..n: full samples at even/even, H.264 half samples elsewhere.
    """
    w = win.astype(np.int32)
    N = w.shape[0]
    g = np.empty((N, 2 * n + 1, 2 * n + 1), np.int32)
    g[:, 0::2, 0::2] = w[:, 2:n + 3, 2:n + 3]
    b1 = _six_tap(w, 2, n)                                   # (N, n+5, n)   rows -2..n+2
    g[:, 0::2, 1::2] = np.clip((b1[:, 2:n + 3] + 16) >> 5, 0, 255)
    h1 = _six_tap(w[:, :, 2:n + 3], 1, n)                    # (N, n, n+1)
    g[:, 1::2, 0::2] = np.clip((h1 + 16) >> 5, 0, 255)
    j1 = _six_tap(b1, 1, n)                                  # (N, n, n) from unrounded b1
    g[:, 1::2, 1::2] = np.clip((j1 + 512) >> 10, 0, 255)
    return g


def _qpel_from_grid(g: np.ndarray, qy: int, qx: int, n: int) -> np.ndarray:
    """(N, n, n) prediction at quarter offset (qy, qx) >= 0 from a half grid `g`.

    Quarter samples average the two nearest samples on the half grid; when both
    quarter phases are odd (H.264's e, g, p, r) the two nearest *half* samples.
    """
    iy, fy, ix, fx = qy >> 2, qy & 3, qx >> 2, qx & 3
    L = 2 * n - 1

    def at(hy: int, hx: int) -> np.ndarray:
        return g[:, hy:hy + L:2, hx:hx + L:2]

    if fy & 1 and fx & 1:
        a = at(2 * iy + fy - 1, 2 * ix + 1)
        b = at(2 * iy + 1, 2 * ix + fx - 1)
    else:
        ry = [2 * iy + fy // 2] if not fy & 1 else [2 * iy + (fy - 1) // 2, 2 * iy + (fy + 1) // 2]
        rx = [2 * ix + fx // 2] if not fx & 1 else [2 * ix + (fx - 1) // 2, 2 * ix + (fx + 1) // 2]
        if len(ry) == 1 and len(rx) == 1:
            return at(ry[0], rx[0])
        a = at(ry[0], rx[0])
        b = at(ry[-1], rx[-1])
    return (a + b + 1) >> 1


def _gather(plane: np.ndarray, r0: np.ndarray, c0: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size) windows with top-left (r0, c0), edge-replicated (clipped indices)."""
    h, w = plane.shape
    ar = np.arange(size, dtype=np.int64)
    rows = np.clip(r0[:, None].astype(np.int64) + ar, 0, h - 1)          # (N, size)
    cols = np.clip(c0[:, None].astype(np.int64) + ar, 0, w - 1)          # (N, size)
    return plane[rows[:, :, None], cols[:, None, :]]


def _blocks_to_plane(blocks: np.ndarray, hb: int, wb: int, h: int, w: int) -> np.ndarray:
    """(Hb*Wb, b, b) -> (h, w) uint8, cropping partial edge blocks."""
    b = blocks.shape[1]
    plane = blocks.reshape(hb, wb, b, b).transpose(0, 2, 1, 3).reshape(hb * b, wb * b)
    return np.ascontiguousarray(plane[:h, :w]).astype(np.uint8)


def _check_planes(ref_y: np.ndarray, ref_u: np.ndarray, ref_v: np.ndarray) -> None:
    for name, p in (("y", ref_y), ("u", ref_u), ("v", ref_v)):
        if p.ndim != 2 or p.dtype != np.uint8:
            raise ValueError(f"ref_{name}: expected a 2-D uint8 plane, got {p.shape} {p.dtype}")
    h, w = ref_y.shape
    cs = ((h + 1) // 2, (w + 1) // 2)
    if ref_u.shape != cs or ref_v.shape != cs:
        raise ValueError(f"chroma planes {ref_u.shape}, {ref_v.shape}; expected {cs} for luma {ref_y.shape}")


def compensate_luma(ref_y: np.ndarray, field: MotionField) -> np.ndarray:
    """Luma prediction (H, W) uint8 of `field` from `ref_y` (H, W) uint8."""
    h, w = ref_y.shape
    B = field.block
    hb, wb = field.shape_in_blocks
    if (hb, wb) != blocks_shape(h, w, B):
        raise ValueError(f"field has {hb}x{wb} blocks, frame {h}x{w} needs "
                         f"{blocks_shape(h, w, B)} blocks of {B}")
    q = field.vectors.reshape(-1, 2).astype(np.int64)                    # (N, 2) quarter pel
    by = np.repeat(np.arange(hb) * B, wb)                                # (N,) block origin
    bx = np.tile(np.arange(wb) * B, hb)
    iy, fy, ix, fx = q[:, 0] >> 2, q[:, 0] & 3, q[:, 1] >> 2, q[:, 1] & 3
    out = np.empty((hb * wb, B, B), np.uint8)
    full = (fy == 0) & (fx == 0)
    if full.any():
        out[full] = _gather(ref_y, by[full] + iy[full], bx[full] + ix[full], B)
    if not full.all():
        # 6-tap needs 2 samples before and 3 after the block on each axis.
        sub = np.flatnonzero(~full)
        g = _half_grid(_gather(ref_y, by[sub] + iy[sub] - 2, bx[sub] + ix[sub] - 2, B + 5), B)
        phase = fy[sub] * 4 + fx[sub]
        for ph in np.unique(phase):
            sel = phase == ph
            out[sub[sel]] = _qpel_from_grid(g[sel], int(ph) >> 2, int(ph) & 3, B)
    return _blocks_to_plane(out, hb, wb, h, w)


def compensate_chroma(ref_c: np.ndarray, field: MotionField) -> np.ndarray:
    """Chroma prediction (Hc, Wc) uint8: luma quarter-pel vectors read as eighth
    chroma pixels, H.264 bilinear ((8-fx)(8-fy)A + fx(8-fy)B + (8-fx)fy C + fx fy D + 32) >> 6."""
    hc, wc = ref_c.shape
    bc = field.block // 2
    hb, wb = field.shape_in_blocks
    if (hb, wb) != blocks_shape(hc, wc, bc):
        raise ValueError(f"field has {hb}x{wb} blocks, chroma {hc}x{wc} needs "
                         f"{blocks_shape(hc, wc, bc)} blocks of {bc}")
    q = field.vectors.reshape(-1, 2).astype(np.int64)                    # (N, 2) eighth chroma pel
    by = np.repeat(np.arange(hb) * bc, wb)
    bx = np.tile(np.arange(wb) * bc, hb)
    win = _gather(ref_c, by + (q[:, 0] >> 3), bx + (q[:, 1] >> 3), bc + 1).astype(np.int32)
    fy = (q[:, 0] & 7).astype(np.int32)[:, None, None]                   # (N, 1, 1)
    fx = (q[:, 1] & 7).astype(np.int32)[:, None, None]
    pred = ((8 - fx) * (8 - fy) * win[:, :-1, :-1] + fx * (8 - fy) * win[:, :-1, 1:]
            + (8 - fx) * fy * win[:, 1:, :-1] + fx * fy * win[:, 1:, 1:] + 32) >> 6
    return _blocks_to_plane(pred, hb, wb, hc, wc)


def compensate(ref_y: np.ndarray, ref_u: np.ndarray, ref_v: np.ndarray,
               field: MotionField) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Motion-compensated prediction (pred_y, pred_u, pred_v), same shapes as the
    reference planes, uint8. Integer-only and deterministic (bit-exact decoder)."""
    _check_planes(ref_y, ref_u, ref_v)
    return (compensate_luma(ref_y, field), compensate_chroma(ref_u, field),
            compensate_chroma(ref_v, field))


def _obmc_own_weights(size: int, block: int) -> np.ndarray:
    """(size,) int32 weight, out of 8, of a sample's own block along one axis.

    8 in the block's inner half, falling to 4 at its edges over a quarter block
    (luma 16: 4 5 6 7 8 ... 8 7 6 5 4; chroma 8: 4 6 8 8 8 8 6 4); the
    neighbour across the nearer edge gets 8 minus it, so two adjacent blocks
    weigh 4:4 at their boundary and the blend is continuous.
    """
    p = np.arange(size) % block
    d = np.minimum(p, block - 1 - p)
    return np.minimum(8, 4 + (d * 16) // block).astype(np.int32)


def _half_block_fields(field: MotionField, shape: tuple[int, int]) -> list[MotionField]:
    """Own, horizontal-, vertical- and diagonal-neighbour fields on the half-block grid.

    Each block splits into 2x2 half blocks; a half block's neighbour along an
    axis is the block across its nearer edge (itself at the picture edge).
    `shape` is the half-block grid of the frame (its partial last row/column cropped).
    """
    v = field.vectors
    hb, wb = v.shape[:2]
    r2, c2 = np.arange(shape[0]), np.arange(shape[1])
    rows = r2 // 2
    cols = c2 // 2
    rows_nb = np.clip(rows + np.where(r2 % 2 == 0, -1, 1), 0, hb - 1)   # (H2,)
    cols_nb = np.clip(cols + np.where(c2 % 2 == 0, -1, 1), 0, wb - 1)   # (W2,)
    half = field.block // 2
    return [MotionField(half, np.ascontiguousarray(v[r][:, c]))
            for r, c in ((rows, cols), (rows, cols_nb), (rows_nb, cols), (rows_nb, cols_nb))]


def _obmc_plane(preds: list[np.ndarray], block: int) -> np.ndarray:
    """Blend own/horizontal/vertical/diagonal predictions (H, W) uint8 with separable weights."""
    h, w = preds[0].shape
    wy = _obmc_own_weights(h, block)[:, None]
    wx = _obmc_own_weights(w, block)[None, :]
    own, hor, ver, dia = (p.astype(np.int32) for p in preds)
    acc = wy * (wx * own + (8 - wx) * hor) + (8 - wy) * (wx * ver + (8 - wx) * dia)
    return ((acc + 32) >> 6).astype(np.uint8)


def compensate_obmc(ref_y: np.ndarray, ref_u: np.ndarray, ref_v: np.ndarray,
                    field: MotionField) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlapped block motion compensation: same shapes and exactness as `compensate`.

    Every sample is the blend (weights `_obmc_own_weights`, out of 64 with
    rounding) of the predictions made with its own block's vector and with the
    vectors of the blocks across its nearer horizontal, vertical and diagonal
    edges. Where neighbouring vectors agree it equals `compensate`; where they
    differ, the block edges of the prediction are smoothed over a quarter block
    on each side instead of leaving a step the residual must code (or a
    masked patch must show). Needs a block size divisible by 4.
    Measured on training clips (benchmarks/tune_encoder.py obmc 0,1): see docs/model.md.
    """
    _check_planes(ref_y, ref_u, ref_v)
    if field.block % 4:
        raise ValueError(f"OBMC needs a block size divisible by 4, got {field.block}")
    v = field.vectors
    if v.size == 0 or bool((v == v.reshape(-1, 2)[0]).all()):
        return compensate(ref_y, ref_u, ref_v, field)     # uniform field: no edges to blend
    h, w = ref_y.shape
    shape = blocks_shape(h, w, field.block // 2)
    preds = [compensate(ref_y, ref_u, ref_v, f) for f in _half_block_fields(field, shape)]
    return (_obmc_plane([p[0] for p in preds], field.block),
            _obmc_plane([p[1] for p in preds], field.block // 2),
            _obmc_plane([p[2] for p in preds], field.block // 2))


# --------------------------------------------------------------------------- prediction + rate

def median_predictor(vectors: np.ndarray) -> np.ndarray:
    """(Hb, Wb, 2) predictors of every vector from its causal neighbours in `vectors`.

    Row 0: the left vector (zero for the first block). Other rows: the component-wise
    median of A = left (top when there is no left), B = top, C = top-right (top-left
    at the right edge, top when the row has one block). `encode_motion` and
    `decode_motion` use exactly this rule.
    """
    v = vectors.astype(np.int32)
    hb, wb = v.shape[:2]
    pred = np.zeros_like(v)
    if hb == 0 or wb == 0:
        return pred
    pred[0, 1:] = v[0, :-1]
    if hb > 1:
        top = v[:-1]                                                     # (Hb-1, Wb, 2)
        a = np.concatenate([top[:, :1], v[1:, :-1]], axis=1)             # left, top at c=0
        if wb > 1:
            c = np.concatenate([top[:, 1:], top[:, -2:-1]], axis=1)      # top-right, top-left at edge
        else:
            c = top
        pred[1:] = np.median(np.stack([a, top, c]), axis=0).astype(np.int32)
    return pred


def _scalar_pred(v: np.ndarray, r: int, c: int, wb: int) -> tuple[int, int]:
    """median_predictor for one block, from already decoded vectors (Python ints)."""
    if r == 0:
        return (int(v[0, c - 1, 0]), int(v[0, c - 1, 1])) if c > 0 else (0, 0)
    top = v[r - 1, c]
    a = v[r, c - 1] if c > 0 else top
    if c + 1 < wb:
        cc = v[r - 1, c + 1]
    elif c > 0:
        cc = v[r - 1, c - 1]
    else:
        cc = top
    return tuple(sorted((int(a[k]), int(top[k]), int(cc[k])))[1] for k in range(2))  # type: ignore[return-value]


def mv_bits(d: np.ndarray) -> np.ndarray:
    """Approximate coded bits of vector-difference components `d` (quarter pel):
    1 for zero, else 3 + 2 * floor(log2 |d|) (flag, Elias-gamma, sign)."""
    a = np.abs(d.astype(np.int64))
    lg = np.zeros(a.shape, np.int64)
    nz = a > 0
    lg[nz] = np.floor(np.log2(a[nz])).astype(np.int64)
    return np.where(nz, 3 + 2 * lg, 1)


# --------------------------------------------------------------------------- estimation

def _downsample(x: np.ndarray) -> np.ndarray:
    """2x2 rounded mean of an int32 plane with even dims."""
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2] + 2) >> 2


class _Level:
    """One pyramid level: current blocks, padded reference and block origins."""

    def __init__(self, cur: np.ndarray, ref_pad: np.ndarray, pad: int, b: int,
                 hb: int, wb: int, valid: np.ndarray | None) -> None:
        self.b, self.pad = b, pad
        self.ref = np.ascontiguousarray(ref_pad.astype(np.int16))
        self.stride = self.ref.shape[1]
        self.cur = cur.reshape(hb, b, wb, b).transpose(0, 2, 1, 3).reshape(hb * wb, b, b).astype(np.int16)
        by = np.repeat(np.arange(hb) * b, wb)
        bx = np.tile(np.arange(wb) * b, hb)
        self.base = (by + pad) * self.stride + (bx + pad)                # (N,) flat origin
        ar = np.arange(b)
        self.off = ar[:, None] * self.stride + ar[None, :]               # (b, b)
        self.valid = valid                                               # (N, b, b) bool or None

    def sad(self, vec: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """SAD of integer vectors vec (n, 2) for blocks idx (all when None) -> (n,)."""
        base = self.base if idx is None else self.base[idx]
        cur = self.cur if idx is None else self.cur[idx]
        flat = base + vec[:, 0] * self.stride + vec[:, 1]
        d = np.abs(cur - self.ref.ravel()[flat[:, None, None] + self.off])   # (n, b, b)
        if self.valid is not None:
            d *= self.valid if idx is None else self.valid[idx]
        return d.sum(axis=(1, 2), dtype=np.int64)


def estimate_motion(cur_y: np.ndarray, ref_y: np.ndarray, block: int = 16, search: int = 16,
                    subpel: int = 4, lam: float = 4.0) -> MotionField:
    """Block motion of `cur_y` (H, W) uint8 relative to `ref_y` (H, W) uint8.

    Args:
        block: luma block size (even, 4..128).
        search: largest integer vector component in pixels (0..256).
        subpel: 1 (integer), 2 (half) or 4 (quarter-pel) precision.
        lam: Lagrangian multiplier in SAD units (8-bit luma) per estimated bit of
            the vector difference from its median predictor (keeps fields smooth
            and cheap). For a codec running at SSE-lambda L (SSE per bit), H.264's
            rule of thumb is lam = sqrt(L). 0 gives pure SAD matching.

    Returns:
        MotionField with (Hb, Wb, 2) int16 quarter-pel vectors. Encoder-only: the
        decoder never runs this, so it need not be bit-exact (it is, though).
    """
    if cur_y.shape != ref_y.shape or cur_y.ndim != 2:
        raise ValueError(f"cur {cur_y.shape} and ref {ref_y.shape} must be equal 2-D shapes")
    if not (4 <= block <= 128 and block % 2 == 0):
        raise ValueError(f"block {block} must be even in [4, 128]")
    if not 0 <= search <= 256:
        raise ValueError(f"search {search} out of [0, 256]")
    if subpel not in (1, 2, 4):
        raise ValueError(f"subpel {subpel} must be 1, 2 or 4")
    h, w = cur_y.shape
    hb, wb = blocks_shape(h, w, block)
    if hb == 0 or wb == 0:
        return MotionField.zeros((hb, wb), block)
    hp, wp = hb * block, wb * block
    n = hb * wb

    # Pyramid depth: coarse blocks stay >= 4 px and the search needs the depth.
    depth = 0
    while (depth < 2 and block % (2 << depth) == 0 and block >> (depth + 1) >= 4
           and search >> depth >= 4):
        depth += 1
    unit = 1 << depth
    pad = -(-(search + 8) // (4 * unit)) * 4 * unit                      # divisible by 4 * 2**depth

    cur = np.pad(cur_y, ((0, hp - h), (0, wp - w)), mode="edge").astype(np.int32)
    ref = np.pad(ref_y, ((pad, pad + hp - h), (pad, pad + wp - w)), mode="edge").astype(np.int32)
    valid = None
    if (hp, wp) != (h, w):
        vm = np.zeros((hp, wp), bool)
        vm[:h, :w] = True
        valid = vm.reshape(hb, block, wb, block).transpose(0, 2, 1, 3).reshape(n, block, block)

    curs, refs, valids = [cur], [ref], [valid]
    for _ in range(depth):
        curs.append(_downsample(curs[-1]))
        refs.append(_downsample(refs[-1]))
        vv = valids[-1]
        valids.append(None if vv is None else vv[:, 0::2, 0::2] | vv[:, 1::2, 1::2])

    # Coarsest level: exhaustive search by shifting the whole frame (vectorised over blocks).
    bL, pL, sL = block >> depth, pad >> depth, -(-search // unit)
    cL, rL = curs[depth], refs[depth]
    hL, wL = cL.shape
    vmask = None
    if valids[depth] is not None:
        vmask = valids[depth].reshape(hb, wb, bL, bL).transpose(0, 2, 1, 3).reshape(hL, wL)
    best = np.full((hb, wb), np.iinfo(np.int64).max, np.int64)
    vec = np.zeros((hb, wb, 2), np.int64)
    lam_l = lam / unit
    for dy in range(-sL, sL + 1):
        for dx in range(-sL, sL + 1):
            d = np.abs(cL - rL[pL + dy:pL + dy + hL, pL + dx:pL + dx + wL])
            if vmask is not None:
                d *= vmask
            cost = d.reshape(hb, bL, wb, bL).sum(axis=(1, 3))
            # Small bias towards short vectors: ties in flat areas resolve to zero.
            cost += int(round(lam_l * int(mv_bits(np.array([dy * 4, dx * 4])).sum())))
            better = cost < best
            best[better] = cost[better]
            vec[better] = (dy, dx)
    vec = vec.reshape(n, 2)

    # Finer pyramid levels: double and refine +-1.
    square = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], np.int64)
    for lev in range(depth - 1, 0, -1):
        L = _Level(curs[lev], refs[lev], pad >> lev, block >> lev, hb, wb, valids[lev])
        lim = -(-search // (1 << lev))
        vec = 2 * vec
        cands = np.clip(vec[None] + square[:, None], -lim, lim)          # (9, N, 2)
        costs = np.stack([L.sad(c) for c in cands])                      # (9, N)
        vec = cands[np.argmin(costs, axis=0), np.arange(n)]
    if depth:
        vec = 2 * vec

    L0 = _Level(cur, ref, pad, block, hb, wb, valid)
    vec = _refine_integer(L0, vec, hb, wb, search, lam)
    q = (vec * 4).astype(np.int64)
    if subpel > 1:
        q = _refine_subpel(cur, ref, pad, block, hb, wb, valid, vec, subpel, lam)
    return MotionField(block, q.reshape(hb, wb, 2).astype(np.int16))


def _rate(vec_q: np.ndarray, pred_q: np.ndarray) -> np.ndarray:
    """Estimated bits of quarter-pel vectors vec_q (n, 2) against predictors (n, 2)."""
    return mv_bits(vec_q - pred_q).sum(axis=1)


def _refine_integer(L: _Level, vec: np.ndarray, hb: int, wb: int, search: int,
                    lam: float) -> np.ndarray:
    """Full-resolution integer search: predictive candidates, then +-1 square steps.

    vec: (N, 2) integer-pel starting vectors. Predictors come from the current
    field (a Jacobi approximation of the raster-order median predictor).
    """
    n = hb * wb
    ar = np.arange(n)
    vec = np.clip(vec, -search, search)
    square = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx], np.int64)
    for _ in range(2):
        f = vec.reshape(hb, wb, 2)
        pred = median_predictor(f * 4).reshape(n, 2).astype(np.int64)            # quarter pel
        # Candidates: current, zero, the four neighbours' vectors, the median predictor.
        padded = np.pad(f, ((1, 1), (1, 1), (0, 0)), mode="edge")
        cands = [vec, np.zeros_like(vec), (pred + 2) >> 2,
                 padded[1:-1, :-2].reshape(n, 2), padded[1:-1, 2:].reshape(n, 2),
                 padded[:-2, 1:-1].reshape(n, 2), padded[2:, 1:-1].reshape(n, 2)]
        cands = np.clip(np.stack(cands), -search, search)                          # (7, N, 2)
        costs = np.stack([L.sad(c) + lam * _rate(c * 4, pred) for c in cands])
        vec = cands[np.argmin(costs, axis=0), ar]
        cost = costs.min(axis=0)
        # Square search from every block, continuing only where the vector moved.
        active = ar
        for _ in range(8):
            if active.size == 0:
                break
            base = vec[active]
            cs = np.clip(base[None] + square[:, None], -search, search)            # (8, n, 2)
            cc = np.stack([L.sad(c, active) + lam * _rate(c * 4, pred[active]) for c in cs])
            k = np.argmin(cc, axis=0)
            m = cc[k, np.arange(active.size)] < cost[active]
            moved = active[m]
            vec[moved] = cs[k[m], np.flatnonzero(m)]
            cost[moved] = cc[k[m], np.flatnonzero(m)]
            active = moved
    return vec


def _refine_subpel(cur: np.ndarray, ref: np.ndarray, pad: int, block: int, hb: int, wb: int,
                   valid: np.ndarray | None, vec: np.ndarray, subpel: int,
                   lam: float) -> np.ndarray:
    """Half-, then quarter-pel refinement around integer vectors vec (N, 2) -> (N, 2) quarter pel.

    One half grid per block covers vec +- 1 pixel, so every candidate is a strided
    slice of it and equals what `compensate` produces for that vector.
    """
    n = hb * wb
    B = block
    ar = np.arange(n)
    cb = cur.reshape(hb, B, wb, B).transpose(0, 2, 1, 3).reshape(n, B, B)
    by = np.repeat(np.arange(hb) * B, wb) + pad
    bx = np.tile(np.arange(wb) * B, hb) + pad
    # Window origin (vec - 1) - 2 taps; size (B+2) + 5; all inside the padded ref.
    win = _gather(ref, by + vec[:, 0] - 3, bx + vec[:, 1] - 3, B + 7)
    g = _half_grid(win, B + 2)                                           # (N, 2B+5, 2B+5)
    step_q = 4 // subpel                                                 # finest step, quarter pel

    def cost(d: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Costs (N,) of quarter offsets d (N, 2) around 4*vec, each d in [-4, 4]."""
        out = np.empty(n, np.float64)
        rel = d + 4                                                      # quarter offset in the grid
        key = rel[:, 0] * 16 + rel[:, 1]
        for k in np.unique(key):
            sel = np.flatnonzero(key == k)
            p = _qpel_from_grid(g[sel], int(k) >> 4, int(k) & 15, B)
            e = np.abs(cb[sel] - p)
            if valid is not None:
                e *= valid[sel]
            out[sel] = e.sum(axis=(1, 2))
        return out + lam * _rate(vec * 4 + d, pred)

    def improve(d: np.ndarray, best: np.ndarray, cand: np.ndarray, pred: np.ndarray) -> None:
        """Take cand (N, 2) where it is cheaper (in place)."""
        cand = np.clip(cand, -4, 4)
        if step_q > 1:
            cand = cand - cand % step_q                                  # keep the precision
        c = cost(cand, pred)
        m = c < best
        best[m] = c[m]
        d[m] = cand[m]

    # Greedy half-pel then quarter-pel search, predictors from the integer field.
    pred = median_predictor((vec * 4).reshape(hb, wb, 2)).reshape(n, 2).astype(np.int64)
    d = np.zeros((n, 2), np.int64)
    best = cost(d, pred)
    for step in (2, 1)[: 2 if subpel == 4 else 1]:
        center = d.copy()
        for oy in (-step, 0, step):
            for ox in (-step, 0, step):
                if oy or ox:
                    improve(d, best, center + (oy, ox), pred)
    # The coder predicts from the final sub-pel neighbours, not the integer ones:
    # re-cost against them and also try each block's new predictor, so that a
    # uniform sub-pel motion ends up with identical (free) vectors.
    for _ in range(2):
        pred = median_predictor((vec * 4 + d).reshape(hb, wb, 2)).reshape(n, 2).astype(np.int64)
        best = cost(d, pred)
        improve(d, best, pred - vec * 4, pred)
        center = d.copy()
        for oy in (-step_q, 0, step_q):
            for ox in (-step_q, 0, step_q):
                if oy or ox:
                    improve(d, best, center + (oy, ox), pred)
    return vec * 4 + d


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
    v = field.vectors.astype(np.int64)
    hb, wb = field.shape_in_blocks
    mvd = (v - median_predictor(v)).tolist()                             # (Hb, Wb, 2) lists
    ctx = _MVContexts()
    enc = RangeEncoder()
    nonzero = [[False] * wb for _ in range(hb)]
    for r in range(hb):
        for c in range(wb):
            dy, dx = mvd[r][c]
            k = (c > 0 and nonzero[r][c - 1]) + (r > 0 and nonzero[r - 1][c])
            nz = dy != 0 or dx != 0
            nonzero[r][c] = nz
            enc.encode_bit(nz, ctx.zero[k])
            if not nz:
                continue
            enc.encode_bit(dy != 0, ctx.nzy)
            if dy != 0:
                _encode_component(enc, dy, ctx.prefix[0])
                enc.encode_bit(dx != 0, ctx.nzx)
                if dx != 0:
                    _encode_component(enc, dx, ctx.prefix[1])
            else:
                _encode_component(enc, dx, ctx.prefix[1])                # dx != 0 is implied
    return enc.finish()


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
    hb, wb = (int(s) for s in shape_in_blocks)
    if hb < 0 or wb < 0 or hb * wb > _MAX_BLOCKS:
        raise ValueError(f"shape_in_blocks {shape_in_blocks} out of range")
    dec = RangeDecoder(data)
    ctx = _MVContexts()
    v = np.zeros((hb, wb, 2), np.int64)
    nonzero = [[False] * wb for _ in range(hb)]
    for r in range(hb):
        for c in range(wb):
            k = (c > 0 and nonzero[r][c - 1]) + (r > 0 and nonzero[r - 1][c])
            py, px = _scalar_pred(v, r, c, wb)
            if not dec.decode_bit(ctx.zero[k]):
                v[r, c] = (py, px)
                continue
            nonzero[r][c] = True
            if dec.decode_bit(ctx.nzy):
                dy = _decode_component(dec, ctx.prefix[0])
                dx = _decode_component(dec, ctx.prefix[1]) if dec.decode_bit(ctx.nzx) else 0
            else:
                dy, dx = 0, _decode_component(dec, ctx.prefix[1])
            y, x = py + dy, px + dx
            if not (-32768 <= y <= 32767 and -32768 <= x <= 32767):
                raise BitstreamError(f"motion vector ({y}, {x}) of block ({r}, {c}) outside int16")
            v[r, c] = (y, x)
    dec.finish()
    return MotionField(block, v.astype(np.int16))
