"""Classical block motion: the field, vector prediction and bit-exact compensation (both sides).

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

Motion *search* (the encoder's decision) is in `mcodec.codec.motion_search`;
the vectors' entropy coding in `mcodec.codec.mvcoding`; this module is what both
sides share besides: the fields, their predictors and bit-exact compensation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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

def six_tap(x: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Unscaled H.264 6-tap sums along `axis`: output i uses inputs i..i+5 (int32)."""
    def s(k: int) -> np.ndarray:
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(k, k + n)
        return x[tuple(idx)]
    return s(0) - 5 * s(1) + 20 * s(2) + 20 * s(3) - 5 * s(4) + s(5)


def half_grid(win: np.ndarray, n: int) -> np.ndarray:
    """Half-pel sample grid of windows.

    win: (N, n+5, n+5) integer samples, win[:, i, j] at position (i-2, j-2).
    Returns (N, 2n+1, 2n+1) int32 G with G[:, a, b] = sample at (a/2, b/2),
    positions 0..n: full samples at even/even, H.264 half samples elsewhere.
    """
    w = win.astype(np.int32)
    N = w.shape[0]
    g = np.empty((N, 2 * n + 1, 2 * n + 1), np.int32)
    g[:, 0::2, 0::2] = w[:, 2:n + 3, 2:n + 3]
    b1 = six_tap(w, 2, n)                                   # (N, n+5, n)   rows -2..n+2
    g[:, 0::2, 1::2] = np.clip((b1[:, 2:n + 3] + 16) >> 5, 0, 255)
    h1 = six_tap(w[:, :, 2:n + 3], 1, n)                    # (N, n, n+1)
    g[:, 1::2, 0::2] = np.clip((h1 + 16) >> 5, 0, 255)
    j1 = six_tap(b1, 1, n)                                  # (N, n, n) from unrounded b1
    g[:, 1::2, 1::2] = np.clip((j1 + 512) >> 10, 0, 255)
    return g


def qpel_from_grid(g: np.ndarray, qy: int, qx: int, n: int) -> np.ndarray:
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


def gather_window(plane: np.ndarray, r0: np.ndarray, c0: np.ndarray, size: int) -> np.ndarray:
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
    by, bx = _block_origins(hb, wb, B)
    return _blocks_to_plane(_luma_blocks(ref_y, field.vectors.reshape(-1, 2), by, bx, B), hb, wb, h, w)


def _block_origins(hb: int, wb: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,) top rows and left columns of the blocks of an hb x wb grid, raster order."""
    return np.repeat(np.arange(hb) * size, wb), np.tile(np.arange(wb) * size, hb)


def _luma_blocks(ref_y: np.ndarray, vectors: np.ndarray, by: np.ndarray, bx: np.ndarray,
                 B: int) -> np.ndarray:
    """(N, B, B) uint8 luma predictions of the blocks at (by, bx) with quarter-pel `vectors` (N, 2)."""
    q = vectors.astype(np.int64)
    iy, fy, ix, fx = q[:, 0] >> 2, q[:, 0] & 3, q[:, 1] >> 2, q[:, 1] & 3
    out = np.empty((len(q), B, B), np.uint8)
    full = (fy == 0) & (fx == 0)
    if full.any():
        out[full] = gather_window(ref_y, by[full] + iy[full], bx[full] + ix[full], B)
    if not full.all():
        # 6-tap needs 2 samples before and 3 after the block on each axis.
        sub = np.flatnonzero(~full)
        g = half_grid(gather_window(ref_y, by[sub] + iy[sub] - 2, bx[sub] + ix[sub] - 2, B + 5), B)
        phase = fy[sub] * 4 + fx[sub]
        for ph in np.unique(phase):
            sel = phase == ph
            out[sub[sel]] = qpel_from_grid(g[sel], int(ph) >> 2, int(ph) & 3, B)
    return out


def predict_block(ref_y: np.ndarray, vector: np.ndarray, y0: int, x0: int, block: int) -> np.ndarray:
    """(block, block) uint8 luma prediction of the block at (y0, x0) with one quarter-pel
    `vector` (2,): the samples `compensate_luma` gives there (before any crop at the edge)."""
    v = np.asarray(vector, np.int64).reshape(1, 2)
    return _luma_blocks(ref_y, v, np.array([y0]), np.array([x0]), block)[0]


def compensate_chroma(ref_c: np.ndarray, field: MotionField) -> np.ndarray:
    """Chroma prediction (Hc, Wc) uint8: luma quarter-pel vectors read as eighth
    chroma pixels, H.264 bilinear ((8-fx)(8-fy)A + fx(8-fy)B + (8-fx)fy C + fx fy D + 32) >> 6."""
    hc, wc = ref_c.shape
    bc = field.block // 2
    hb, wb = field.shape_in_blocks
    if (hb, wb) != blocks_shape(hc, wc, bc):
        raise ValueError(f"field has {hb}x{wb} blocks, chroma {hc}x{wc} needs "
                         f"{blocks_shape(hc, wc, bc)} blocks of {bc}")
    by, bx = _block_origins(hb, wb, bc)
    return _blocks_to_plane(_chroma_blocks(ref_c, field.vectors.reshape(-1, 2), by, bx, bc), hb, wb, hc, wc)


def _chroma_blocks(ref_c: np.ndarray, vectors: np.ndarray, by: np.ndarray, bx: np.ndarray,
                   bc: int) -> np.ndarray:
    """(N, bc, bc) chroma predictions of the blocks at (by, bx); `vectors` (N, 2) in
    eighth chroma pels (the luma quarter-pel vectors)."""
    q = vectors.astype(np.int64)
    win = gather_window(ref_c, by + (q[:, 0] >> 3), bx + (q[:, 1] >> 3), bc + 1).astype(np.int32)
    fy = (q[:, 0] & 7).astype(np.int32)[:, None, None]                   # (N, 1, 1)
    fx = (q[:, 1] & 7).astype(np.int32)[:, None, None]
    return ((8 - fx) * (8 - fy) * win[:, :-1, :-1] + fx * (8 - fy) * win[:, :-1, 1:]
            + (8 - fx) * fy * win[:, 1:, :-1] + fx * fy * win[:, 1:, 1:] + 32) >> 6


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
    half = field.block // 2
    shape = blocks_shape(h, w, half)
    fields = _half_block_fields(field, shape)
    # Each neighbour prediction differs from the own one only in the half blocks whose
    # neighbour vector differs: only those are interpolated (same samples, less work).
    own = fields[0].vectors.reshape(-1, 2)
    by, bx = _block_origins(*shape, half)
    cby, cbx = by // 2, bx // 2
    planes = ((ref_y, h, w), (ref_u, *ref_u.shape), (ref_v, *ref_v.shape))
    blocks = [[_luma_blocks(ref_y, own, by, bx, half)],
              [_chroma_blocks(ref_u, own, cby, cbx, half // 2)],
              [_chroma_blocks(ref_v, own, cby, cbx, half // 2)]]
    for f in fields[1:]:
        vec = f.vectors.reshape(-1, 2)
        diff = np.flatnonzero((vec != own).any(axis=1))
        for k, (ref, _, _) in enumerate(planes):
            b = blocks[k][0].copy()
            if diff.size:
                b[diff] = (_luma_blocks(ref, vec[diff], by[diff], bx[diff], half) if k == 0 else
                           _chroma_blocks(ref, vec[diff], cby[diff], cbx[diff], half // 2))
            blocks[k].append(b)
    return tuple(_obmc_plane([_blocks_to_plane(b, *shape, ph, pw) for b in blocks[k]],
                             field.block if k == 0 else half)
                 for k, (_, ph, pw) in enumerate(planes))  # type: ignore[return-value]


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


def scalar_predictor(v: np.ndarray, r: int, c: int, wb: int) -> tuple[int, int]:
    """`median_predictor` of block (r, c) alone, from the vectors before it (Python ints):
    what the vector coder predicts while it decodes a field block by block."""
    if r == 0:
        return (int(v[0, c - 1, 0]), int(v[0, c - 1, 1])) if c > 0 else (0, 0)
    ty, tx = int(v[r - 1, c, 0]), int(v[r - 1, c, 1])
    if c > 0:
        ay, ax = int(v[r, c - 1, 0]), int(v[r, c - 1, 1])
    else:
        ay, ax = ty, tx
    if c + 1 < wb:
        cy, cx = int(v[r - 1, c + 1, 0]), int(v[r - 1, c + 1, 1])
    elif c > 0:
        cy, cx = int(v[r - 1, c - 1, 0]), int(v[r - 1, c - 1, 1])
    else:
        cy, cx = ty, tx
    # median of three = the sum less the largest and the smallest
    return (ay + ty + cy - max(ay, ty, cy) - min(ay, ty, cy),
            ax + tx + cx - max(ax, tx, cx) - min(ax, tx, cx))


def mv_bits(d: np.ndarray) -> np.ndarray:
    """Approximate coded bits of vector-difference components `d` (quarter pel):
    1 for zero, else 3 + 2 * floor(log2 |d|) (flag, Elias-gamma, sign)."""
    a = np.abs(d.astype(np.int64))
    lg = np.zeros(a.shape, np.int64)
    nz = a > 0
    lg[nz] = np.floor(np.log2(a[nz])).astype(np.int64)
    return np.where(nz, 3 + 2 * lg, 1)


# --------------------------------------------------------------------------- bi-directional

BI_FORWARD, BI_BACKWARD, BI_BOTH = 0, 1, 2   # per-block prediction modes of a bi frame


@dataclass(frozen=True, eq=False)
class BiField:
    """The motion of a bi-predicted frame: a mode per block and a field per reference.

    Attributes:
        modes: (Hb, Wb) uint8: BI_FORWARD (past reference only), BI_BACKWARD
            (future reference only) or BI_BOTH (the rounded mean of both).
        forward: vectors into the past reference (meaningful where mode != BI_BACKWARD).
        backward: vectors into the future reference (meaningful where mode != BI_FORWARD).
    """

    modes: np.ndarray
    forward: MotionField
    backward: MotionField

    def __post_init__(self) -> None:
        m = np.asarray(self.modes)
        if m.shape != self.forward.shape_in_blocks or m.shape != self.backward.shape_in_blocks \
                or self.forward.block != self.backward.block:
            raise ValueError("modes and both fields must cover the same blocks")
        if m.size and int(m.max()) > BI_BOTH:
            raise ValueError("bi modes must be 0, 1 or 2")
        m = m.astype(np.uint8).copy()
        m.flags.writeable = False
        object.__setattr__(self, "modes", m)


def _select_blocks(planes: list[np.ndarray], modes: np.ndarray, block: int) -> np.ndarray:
    """Per pixel, planes[mode of its block] ((H, W) uint8 each; `block` pixels per block)."""
    h, w = planes[0].shape
    m = np.repeat(np.repeat(modes, block, axis=0), block, axis=1)[:h, :w]
    return np.choose(m, planes).astype(np.uint8)


def compensate_bi(past: tuple[np.ndarray, np.ndarray, np.ndarray],
                  future: tuple[np.ndarray, np.ndarray, np.ndarray], field: BiField,
                  compensate_fn=compensate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bi-directional prediction (y, u, v) uint8 of `field` from the past and future planes.

    Each reference is compensated with its own field (`compensate_fn`: `compensate`
    or `compensate_obmc`, the stream's), BI_BOTH blocks take (p0 + p1 + 1) >> 1,
    and each block picks its mode's prediction. Integer-only, bit-exact.
    """
    modes = field.modes
    p0 = compensate_fn(*past, field.forward) if (modes != BI_BACKWARD).any() else None
    p1 = compensate_fn(*future, field.backward) if (modes != BI_FORWARD).any() else None
    if p1 is None:
        return p0  # type: ignore[return-value]
    if p0 is None:
        return p1
    out = []
    for k, (a, b) in enumerate(zip(p0, p1)):
        mean = ((a.astype(np.uint16) + b + 1) >> 1).astype(np.uint8)
        out.append(_select_blocks([a, b, mean], modes, field.forward.block // (2 if k else 1)))
    return out[0], out[1], out[2]


def mirrored(vector: tuple[int, int] | np.ndarray, distances: tuple[int, int]) -> tuple[int, int]:
    """The backward vector of constant motion through a forward vector: -v * db / df,
    rounded half away from zero in integers (`distances` = (df, db) frames to the past
    and future references)."""
    df, db = distances

    def one(x: int) -> int:
        n = -int(x) * db
        q = (abs(n) * 2 + df) // (2 * df)
        return q if n >= 0 else -q
    return one(vector[0]), one(vector[1])


def scaled(vectors: np.ndarray, num: int, den: int) -> np.ndarray:
    """vectors * num / den, rounded half away from zero in integers ((..., 2) int64)."""
    n = vectors.astype(np.int64) * num
    return np.sign(n) * ((np.abs(n) * 2 + den) // (2 * den))


def direct_vectors(colocated: MotionField, colocated_distance: int, distance: int) -> np.ndarray:
    """Temporal direct prediction of a bi frame's forward vectors, (Hb, Wb, 2) int64.

    `colocated` is the future reference's own field into *its* past reference,
    `colocated_distance` frames back; constant motion through it puts the bi
    frame's content `distance` frames after its past reference at
    colocated * distance / colocated_distance (H.264's temporal direct mode).
    """
    return scaled(colocated.vectors, distance, colocated_distance)
