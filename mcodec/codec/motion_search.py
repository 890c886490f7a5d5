"""Motion search: the encoder's choice of vectors (the decoder never runs it).

As rav1e keeps `me.rs` apart from `mc.rs`: this module decides, and
`mcodec.codec.motion` holds what both sides share (the field, bit-exact
compensation, vector syntax and its rate estimate `mv_bits`).

Motion search (`estimate_motion`), vectorised over all blocks: full search on a
2x2-averaged pyramid (1/4 resolution for 16x16 blocks), +-1 refinement per
level, then at full resolution the best of {pyramid vector, zero, neighbours'
vectors, their median} and an iterated +-1 square search, then half- and
quarter-pel refinement and two passes that re-cost every block against the
median predictor of its final sub-pel neighbours. Cost = SAD + lam * estimated
bits of the vector difference. Those passes cost a block against predictors
from the field of the previous pass (a Jacobi approximation), which leaves
fields fragmented; with `exact` a last pass in coding order costs each block's
candidates with the bits the coder will really spend given the blocks before it
(`mvcoding.BlockCoder` writing into a `rangecoder.BitCounter`), and
`estimate_bi_motion(exact=True)` decides a bi frame's modes the same way. On
training frames this halves the bytes of a bi frame's vectors at a lower J. Work is bounded: (2*ceil(search/4)+1)^2 shifts
of a 1/16-size frame, then at most ~190 block-cost evaluations per block
(typically ~60; iterations stop where vectors stop moving).

Measured speed of `estimate_motion` (block 16, search 16, subpel 4, lam 4; one
CPU core via taskset, numpy 1.26, shared 2-core machine under load; median of 5
runs on frames of the development clips):
    720x576 (and 704x576): ~0.24 s      720x480: ~0.16-0.20 s      416x240: ~0.06 s
Its integer stage reaches within ~2 % of exhaustive +-16 search SAD.
compensate: ~0.02 s at 720x576; encode_motion / decode_motion: ~3 / ~6 ms.
"""

from __future__ import annotations

import numpy as np

from mcodec.codec.motion import (
    BI_BACKWARD,
    BI_BOTH,
    BI_FORWARD,
    BiField,
    MotionField,
    blocks_shape,
    compensate_luma,
    gather_window,
    half_grid,
    median_predictor,
    mv_bits,
    predict_block,
    qpel_from_grid,
    scaled,
)
from mcodec.codec.mvcoding import (
    BiBlockCoder,
    BlockCoder,
    decode_bi_motion,
    encode_bi_motion,
)
from mcodec.codec.rangecoder import BitCounter


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
                    subpel: int = 4, lam: float = 4.0, exact: bool = False) -> MotionField:
    """Block motion of `cur_y` (H, W) uint8 relative to `ref_y` (H, W) uint8.

    Args:
        block: luma block size (even, 4..128).
        search: largest integer vector component in pixels (0..256).
        subpel: 1 (integer), 2 (half) or 4 (quarter-pel) precision.
        lam: Lagrangian multiplier in SAD units (8-bit luma) per estimated bit of
            the vector difference from its median predictor (keeps fields smooth
            and cheap). For a codec running at SSE-lambda L (SSE per bit), H.264's
            rule of thumb is lam = sqrt(L). 0 gives pure SAD matching.
        exact: a last pass in coding order in which every block takes the least
            SAD + lam * exact bits (`mvcoding.BlockCoder`) of its vector, its real
            predictor, its left and top neighbours' vectors and zero.

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
    q = q.reshape(hb, wb, 2)
    if exact:
        q = _decide_exactly(cur_y, ref_y, q, block, lam)
    return MotionField(block, q.astype(np.int16))


def _decide_exactly(cur_y: np.ndarray, ref_y: np.ndarray, vec: np.ndarray, block: int,
                    lam: float) -> np.ndarray:
    """Per block in coding order, the least SAD + lam * exact bits (`mvcoding.BlockCoder`)
    of: its searched vector, its predictor given the blocks already decided (a zero
    difference), its left and top neighbours' final vectors and zero. The search
    costs vectors against a Jacobi approximation of the predictors; here each
    block sees the field the decoder will. vec: (Hb, Wb, 2) quarter pel."""
    hb, wb = vec.shape[:2]
    one = _OneBlock(cur_y, ref_y, block)
    searched = _block_sad(cur_y, compensate_luma(ref_y, MotionField(block, vec.astype(np.int16))), block)
    coder = BlockCoder((hb, wb))
    commit = BitCounter(update=True)
    out = vec.astype(np.int64).copy()
    for r in range(hb):
        for c in range(wb):
            own = (int(out[r, c, 0]), int(out[r, c, 1]))
            counter = BitCounter()
            coder.write(counter, r, c, own)
            best, best_j = own, float(searched[r, c]) + lam * counter.bits
            options = [coder.predictor(r, c), (0, 0)]
            if c:
                options.append((int(out[r, c - 1, 0]), int(out[r, c - 1, 1])))
            if r:
                options.append((int(out[r - 1, c, 0]), int(out[r - 1, c, 1])))
            seen = {own}
            for v in options:
                if v in seen:
                    continue
                seen.add(v)
                counter = BitCounter()
                coder.write(counter, r, c, v)
                rate = lam * counter.bits
                if rate >= best_j:       # SAD >= 0: it cannot win, skip its compensation
                    continue
                j = one.sad(r, c, np.array(v)) + rate
                if j < best_j:
                    best, best_j = v, j
            coder.write(commit, r, c, best)
            out[r, c] = best
    return out


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
    cb = cur.reshape(hb, B, wb, B).transpose(0, 2, 1, 3).reshape(n, B, B)
    by = np.repeat(np.arange(hb) * B, wb) + pad
    bx = np.tile(np.arange(wb) * B, hb) + pad
    # Window origin (vec - 1) - 2 taps; size (B+2) + 5; all inside the padded ref.
    win = gather_window(ref, by + vec[:, 0] - 3, bx + vec[:, 1] - 3, B + 7)
    g = half_grid(win, B + 2)                                           # (N, 2B+5, 2B+5)
    step_q = 4 // subpel                                                 # finest step, quarter pel

    def cost(d: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Costs (N,) of quarter offsets d (N, 2) around 4*vec, each d in [-4, 4]."""
        out = np.empty(n, np.float64)
        rel = d + 4                                                      # quarter offset in the grid
        key = rel[:, 0] * 16 + rel[:, 1]
        for k in np.unique(key):
            sel = np.flatnonzero(key == k)
            p = qpel_from_grid(g[sel], int(k) >> 4, int(k) & 15, B)
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


def _block_sad(a: np.ndarray, b: np.ndarray, block: int) -> np.ndarray:
    """(Hb, Wb) int64 SAD of (H, W) planes a and b per `block` x `block` block (edge blocks partial)."""
    h, w = a.shape
    hb, wb = blocks_shape(h, w, block)
    d = np.zeros((hb * block, wb * block), np.int64)
    d[:h, :w] = np.abs(a.astype(np.int64) - b)
    return d.reshape(hb, block, wb, block).sum(axis=(1, 3))


def estimate_bi_motion(cur_y: np.ndarray, past_y: np.ndarray, future_y: np.ndarray, block: int = 16,
                       search: int = 16, lam: float = 4.0, distances: tuple[int, int] = (1, 1),
                       direct: np.ndarray | None = None, exact: bool = False) -> BiField:
    """Bi-directional motion of `cur_y` (H, W) uint8 between a past and a future reference
    `distances` = (df, db) frames away; `direct`: the temporal direct forward vectors
    (`motion.direct_vectors`, (Hb, Wb, 2)) when the future reference has a field.

    A field is searched into each reference (`estimate_motion`); every block
    then takes the least SAD + lam * bits of: past only, future only, the mean
    of both searched vectors, the mean with the backward vector mirrored from
    the forward one (constant motion), and the mean of the direct vectors
    (two flags, see `encode_bi_motion`). Bits are estimated from each field's
    median predictor plus the mode flags; with `exact` they are the bits each
    block really costs in coding order, and a single-reference block may also
    take its predictor (`_decide_bi_exactly`). Returns the field as the decoder
    will see it (vectors a block does not use set to their predictors).
    """
    df, db = distances
    fwd = estimate_motion(cur_y, past_y, block=block, search=search, lam=lam)
    bwd = estimate_motion(cur_y, future_y, block=block, search=search, lam=lam)
    fv, bv = fwd.vectors.astype(np.int64), bwd.vectors.astype(np.int64)
    mir_v = scaled(fv, -db, df)                                           # = motion.mirrored per block
    p0, p1 = compensate_luma(past_y, fwd), compensate_luma(future_y, bwd)

    def mean_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ((a.astype(np.uint16) + b + 1) >> 1).astype(np.uint8)

    def field(v: np.ndarray) -> MotionField:
        return MotionField(block, np.clip(v, -32768, 32767))

    bits = [mv_bits(v - median_predictor(v)).sum(axis=2) for v in (fv, bv)]   # (Hb, Wb) each
    f_both = bits[0] if direct is None else mv_bits(fv - direct).sum(axis=2)
    # Candidates (SAD, estimated bits, forward vectors, backward vectors), all (Hb, Wb[, 2]).
    cands = [(_block_sad(cur_y, p0, block), bits[0] + 2, fv, bv),
             (_block_sad(cur_y, p1, block), bits[1] + 2, fv, bv),
             (_block_sad(cur_y, mean_of(p0, p1), block), f_both + mv_bits(bv - mir_v).sum(axis=2) + 1, fv, bv),
             (_block_sad(cur_y, mean_of(p0, compensate_luma(future_y, field(mir_v))), block), f_both + 2 + 1,
              fv, mir_v)]
    if direct is not None:
        d_b = scaled(direct, -db, df)
        pd = mean_of(compensate_luma(past_y, field(direct)), compensate_luma(future_y, field(d_b)))
        cands.append((_block_sad(cur_y, pd, block), np.full(bits[0].shape, 3), direct, d_b))
    assert (BI_FORWARD, BI_BACKWARD, BI_BOTH) == (0, 1, 2)  # the candidates' order above
    if exact:
        modes, f_out, b_out = _decide_bi_exactly(cands, lam, distances, direct, cur_y, (past_y, future_y),
                                                 block)
    else:
        choice = np.argmin(np.stack([sad + lam * bits for sad, bits, _, _ in cands]), axis=0)
        modes = np.minimum(choice, BI_BOTH).astype(np.uint8)
        f_out, b_out = fv.copy(), bv.copy()
        for k in range(3, len(cands)):
            sel = choice == k
            f_out[sel], b_out[sel] = cands[k][2][sel], cands[k][3][sel]
    bi = BiField(modes, field(f_out), field(b_out))
    return decode_bi_motion(encode_bi_motion(bi, distances, direct), modes.shape, block, distances, direct)


def _decide_bi_exactly(cands: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], lam: float,
                       distances: tuple[int, int], direct: np.ndarray | None,
                       cur_y: np.ndarray, refs: tuple[np.ndarray, np.ndarray], block: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block in coding order, the candidate of least SAD + lam * its exact bits.

    `cands[k]` = (SAD, estimated bits (Hb, Wb), forward, backward vectors (Hb, Wb, 2));
    candidate k's mode is min(k, BI_BOTH). The estimate's rate term (bits against
    each searched field's own median predictor) is replaced by what the block costs
    in `write_bi_motion` given the blocks already decided: in a mixed field a
    forward or backward block is predicted from neighbours that may be BI_BOTH
    blocks on direct vectors, which the estimate does not see.
    Returns (modes (Hb, Wb) uint8, forward, backward (Hb, Wb, 2) int64).
    """
    hb, wb = cands[0][0].shape
    mode_of = [min(k, BI_BOTH) for k in range(len(cands))]
    lists = [(sad.tolist(), f.tolist(), b.tolist()) for sad, _, f, b in cands]   # Python scalars: fast
    coder = BiBlockCoder((hb, wb), distances, direct)
    cur64 = cur_y.astype(np.int64)                     # shared by both references' blocks
    one = [_OneBlock(cur64, refs[0], block), _OneBlock(cur64, refs[1], block)]
    modes = np.zeros((hb, wb), np.uint8)
    f_out = np.zeros((hb, wb, 2), np.int64)
    b_out = np.zeros((hb, wb, 2), np.int64)
    commit, counter = BitCounter(update=True), BitCounter()
    for r in range(hb):
        for c in range(wb):
            best, best_j = None, np.inf
            tried = set()
            for k, (sad, fk, bk) in enumerate(lists):
                mode, sad_k, f, b = mode_of[k], sad[r][c], tuple(fk[r][c]), tuple(bk[r][c])
                key = (mode, f if mode != BI_BACKWARD else None, b if mode != BI_FORWARD else None)
                if sad_k >= best_j or key in tried:   # rate >= 0: it cannot win
                    continue
                tried.add(key)
                counter.bits = 0.0
                coder.write(counter, r, c, mode, f, b)
                j = sad_k + lam * counter.bits
                if j < best_j:
                    best, best_j = (mode, f, b), j
            # Single-reference blocks on their predictor (a zero difference): the merge a
            # fragmented field lacks. Their SAD is computed here, one block, when the
            # rate alone leaves them a chance.
            for k, mode in ((0, BI_FORWARD), (1, BI_BACKWARD)):
                pred = coder.predictor(k, r, c, mode)
                vecs = [(0, 0), (0, 0)]
                vecs[k] = pred
                key = (mode, vecs[0] if k == 0 else None, vecs[1] if k == 1 else None)
                if key in tried:
                    continue
                counter.bits = 0.0
                coder.write(counter, r, c, mode, vecs[0], vecs[1])
                rate = lam * counter.bits
                if rate >= best_j:
                    continue
                j = one[k].sad(r, c, np.array(pred)) + rate
                if j < best_j:
                    best, best_j = (mode, vecs[0], vecs[1]), j
            mode, f, b = best
            coder.write(commit, r, c, mode, f, b)
            modes[r, c], f_out[r, c], b_out[r, c] = mode, f, b
    return modes, f_out, b_out


class _OneBlock:
    """SAD of one block of `cur_y` against its prediction from `ref_y` with one
    quarter-pel vector (the same samples `compensate_luma` gives; edge blocks count
    only their pixels inside the frame)."""

    def __init__(self, cur_y: np.ndarray, ref_y: np.ndarray, block: int) -> None:
        self.cur, self.ref, self.block = np.asarray(cur_y, np.int64), ref_y, block   # no copy if int64

    def sad(self, r: int, c: int, vec: np.ndarray) -> float:
        b = self.block
        y0, x0 = r * b, c * b
        pred = predict_block(self.ref, vec, y0, x0, b)
        cur = self.cur[y0:y0 + b, x0:x0 + b]
        return float(np.abs(cur - pred[:cur.shape[0], :cur.shape[1]]).sum())


def _neighbour_vectors(v: np.ndarray) -> list[np.ndarray]:
    """The four fields (Hb, Wb, 2) whose block (r, c) holds the vector of its left, right,
    top and bottom neighbour in `v` (edges replicate)."""
    p = np.pad(v, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return [p[1:-1, :-2], p[1:-1, 2:], p[:-2, 1:-1], p[2:, 1:-1]]


def estimate_bilateral_motion(past_y: np.ndarray, future_y: np.ndarray, distances: tuple[int, int],
                              target_y: np.ndarray | None = None, visible: np.ndarray | None = None,
                              block: int = 16, search: int | None = None,
                              lam: float = 4.0) -> tuple[MotionField, MotionField]:
    """Motion of a frame *between* two references that the frame itself need not show.

    The frame at `distances` = (dp, df) frames after `past_y` and before
    `future_y` ((H, W) uint8 each) is assumed to lie on straight trajectories
    between them. Two fields are searched between the references
    (`estimate_motion`, both ways), each projected onto the frame's block grid
    (past vector = total * dp / (dp + df), future vector = past - total, so the
    pair stays consistent), and every block takes, among those two, their four
    neighbours' and zero, the pair whose two compensated references agree best
    (bilateral SAD). Where `target_y` has `visible` pixels ((H, W) bool, True =
    the pixel is known), disagreement with them counts twice as much: a hole
    with a known ring is matched to its ring. This is the masked-frame rebuild
    of a frame sent with no patch, without the vectors the encoder would send.

    Returns:
        (forward, backward): quarter-pel fields into the past and the future reference.
    """
    dp, df = distances
    if dp < 1 or df < 1:
        raise ValueError(f"distances {distances} must be >= 1")
    if past_y.shape != future_y.shape or past_y.ndim != 2:
        raise ValueError(f"past {past_y.shape} and future {future_y.shape} must be equal 2-D shapes")
    if search is None:
        search = min(64, 8 * (dp + df))
    total = dp + df
    # future(x) ~ past(x + f2p): the whole trajectory from the future's point of view, and back.
    f2p = estimate_motion(future_y, past_y, block=block, search=search, lam=lam).vectors.astype(np.int64)
    p2f = estimate_motion(past_y, future_y, block=block, search=search, lam=lam).vectors.astype(np.int64)

    def pair(tot_past: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vector into past, vector into future) of a total past-minus-future displacement."""
        fwd = np.round(tot_past * dp / total).astype(np.int64)
        return fwd, fwd - tot_past

    bases = [pair(f2p), pair(-p2f), (np.zeros_like(f2p), np.zeros_like(f2p))]
    cands = list(bases[:2])
    for fwd, bwd in bases[:2]:
        cands += [(nf, nb) for nf, nb in zip(_neighbour_vectors(fwd), _neighbour_vectors(bwd))]
    cands.append(bases[2])
    known = None
    if target_y is not None and visible is not None and visible.any():
        known = visible.astype(np.int64)
    costs = []
    for fwd, bwd in cands:
        # Candidates are compared at full-pel precision (the fast copy path of compensation):
        # the choice is between whole trajectories, not their last quarter pixel.
        p0 = compensate_luma(past_y, MotionField(block, np.clip(fwd, -32768, 32767)))
        p1 = compensate_luma(future_y, MotionField(block, np.clip(bwd, -32768, 32767)))
        d = np.abs(p0.astype(np.int64) - p1)
        if known is not None:
            mean = (p0.astype(np.int64) + p1 + 1) >> 1
            d = d + 2 * known * np.abs(target_y.astype(np.int64) - mean)
        cost = _block_sum(d, block).astype(np.float64)
        cost += lam * (mv_bits(fwd - median_predictor(fwd)).sum(axis=2))
        costs.append(cost)
    choice = np.argmin(np.stack(costs), axis=0)                              # (Hb, Wb)
    fwd = np.choose(choice[..., None], [c[0] for c in cands])
    bwd = np.choose(choice[..., None], [c[1] for c in cands])
    return (MotionField(block, np.clip(fwd, -32768, 32767)), MotionField(block, np.clip(bwd, -32768, 32767)))


def _block_sum(d: np.ndarray, block: int) -> np.ndarray:
    """(Hb, Wb) sums of an (H, W) array over `block` x `block` blocks (edge blocks partial)."""
    h, w = d.shape
    hb, wb = blocks_shape(h, w, block)
    p = np.zeros((hb * block, wb * block), d.dtype)
    p[:h, :w] = d
    return p.reshape(hb, block, wb, block).sum(axis=(1, 3))
