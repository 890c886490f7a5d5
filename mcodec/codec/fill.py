"""Rebuilding hidden pixels from their context: the fill-in of masked patches and frames.

The codec rebuilds a masked frame from the decoded frames on both sides
(`motion.compensate_bi`), and a masked patch from its visible neighbours (the
networks' masked latents). `mcodec restore` and `mcodec anomaly` use the same
two predictors on pixels nobody sent: restore keeps their output where the
input is damaged, anomaly scores how badly they predict what is there.

    past (visible or restored) ──┐
                                  ├─ estimate_bilateral_motion ─> compensate (OBMC) both ─> blend
    future (with its own holes) ──┘     (+ the frame's visible ring)        by distance, per-pixel validity
    no reference at all:  push-pull prefill ─> intra network, hidden latents = entropy means ─> patch

Conventions: a `hidden` mask is (H, W) bool at luma resolution, True = the
pixel is missing; chroma sample (i, j) is hidden when any of its 2x2 luma
samples is. Visible pixels are never changed (`composite`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcodec.codec import motion
from mcodec.codec.frame import Frame
from mcodec.codec.motion_search import estimate_bilateral_motion

BLOCK = 16          # motion block = the networks' latent patch (16x16 luma)


def chroma_mask(hidden: np.ndarray) -> np.ndarray:
    """(ceil(H/2), ceil(W/2)) bool: a chroma sample is hidden when any of its luma samples is."""
    h, w = hidden.shape
    p = np.zeros((h + (h & 1), w + (w & 1)), bool)
    p[:h, :w] = hidden
    return p.reshape(p.shape[0] // 2, 2, p.shape[1] // 2, 2).any(axis=(1, 3))


def composite(target: Frame, prediction: Frame, hidden: np.ndarray) -> Frame:
    """`target` with its hidden pixels taken from `prediction` (visible pixels untouched)."""
    hc = chroma_mask(hidden)
    planes = [np.where(m, p, t) for t, p, m in zip(target.planes(), prediction.planes(), (hidden, hc, hc))]
    return Frame(*planes)


@dataclass(frozen=True)
class Reference:
    """A frame used as context, and which of its pixels can be trusted.

    Attributes:
        frame: the picture (restored frames are fully valid).
        distance: frames between it and the frame being rebuilt (>= 1).
        hidden: (H, W) bool of its own missing pixels, or None (all valid).
    """

    frame: Frame
    distance: int
    hidden: np.ndarray | None = None


def _warp_valid(hidden: np.ndarray | None, field: motion.MotionField) -> np.ndarray | None:
    """(H, W) bool: where the compensated reference used only valid pixels (None: all valid)."""
    if hidden is None or not hidden.any():
        return None
    # A hidden reference pixel spoils every prediction sample interpolated from it:
    # dilate by the 6-tap support (3 px) before warping with integer vectors.
    h, w = hidden.shape
    grown = hidden.copy()
    for dy, dx in ((-3, 0), (3, 0), (0, -3), (0, 3)):
        grown |= np.roll(hidden, (dy, dx), axis=(0, 1))
    warped = motion.compensate_luma(np.where(grown, 255, 0).astype(np.uint8),
                                    motion.MotionField(field.block, (field.vectors >> 2) << 2))
    return warped == 0


def predict_between(past: Reference | None, future: Reference | None, target: Frame | None = None,
                    visible: np.ndarray | None = None) -> Frame:
    """The frame between `past` and `future` rebuilt from them (at least one is needed).

    With both, the bilateral motion between them (`estimate_bilateral_motion`,
    matched to `target`'s `visible` pixels where given) compensates each with
    OBMC and blends them, the nearer weighing more; pixels whose compensated
    future sample was itself hidden come from the past alone. With one, a
    forward (or backward) field matched to the visible pixels compensates it,
    zero motion when nothing is visible.
    """
    if past is None and future is None:
        raise ValueError("predict_between needs at least one reference")
    if past is not None and future is not None:
        fwd, bwd = estimate_bilateral_motion(past.frame.y, future.frame.y, (past.distance, future.distance),
                                             target_y=None if target is None else target.y, visible=visible,
                                             block=BLOCK)
        p0 = motion.compensate_obmc(*past.frame.planes(), fwd)
        p1 = motion.compensate_obmc(*future.frame.planes(), bwd)
        total = past.distance + future.distance
        w0 = future.distance                                   # the nearer reference weighs more
        ok0, ok1 = _warp_valid(past.hidden, fwd), _warp_valid(future.hidden, bwd)
        out = []
        for k, (a, b) in enumerate(zip(p0, p1)):
            blend = ((a.astype(np.int32) * w0 + b.astype(np.int32) * (total - w0) + total // 2)
                     // total).astype(np.uint8)
            for ok, only in ((ok1, a), (ok0, b)):
                if ok is not None:
                    m = ok if k == 0 else ~chroma_mask(~ok)
                    blend = np.where(m, blend, only)
            out.append(blend)
        return Frame(*out)
    ref = past if past is not None else future
    assert ref is not None
    field = motion.MotionField.zeros(motion.blocks_shape(ref.frame.height, ref.frame.width, BLOCK), BLOCK)
    if target is not None and visible is not None and visible.any():
        from mcodec.codec.motion_search import estimate_motion

        # Hidden target pixels take the reference's value so they cost nothing in the match.
        probe = np.where(visible, target.y, ref.frame.y)
        field = estimate_motion(probe, ref.frame.y, block=BLOCK, search=min(64, 8 * ref.distance))
    return Frame(*motion.compensate_obmc(*ref.frame.planes(), field))


def push_pull(plane: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """`plane` (H, W) uint8 with hidden samples filled smoothly from the visible ones.

    Pull: average the visible samples down a 2x pyramid until every sample has
    support; push: fill each level's holes from the level below, upsampled.
    No visible sample at all gives mid-grey.
    """
    val = plane.astype(np.float64)
    wt = (~hidden).astype(np.float64)
    if not wt.any():
        return np.full(plane.shape, 128, np.uint8)
    levels = [(val * wt, wt)]
    while min(levels[-1][1].shape) > 1 and (levels[-1][1] == 0).any():
        v, w = levels[-1]
        h2, w2 = -(-v.shape[0] // 2), -(-v.shape[1] // 2)
        vp = np.zeros((2 * h2, 2 * w2)); wp = np.zeros((2 * h2, 2 * w2))
        vp[:v.shape[0], :v.shape[1]] = v
        wp[:w.shape[0], :w.shape[1]] = w
        levels.append((vp.reshape(h2, 2, w2, 2).sum(axis=(1, 3)), wp.reshape(h2, 2, w2, 2).sum(axis=(1, 3))))
    v, w = levels[-1]
    est = np.where(w > 0, v / np.maximum(w, 1e-12), v.sum() / max(w.sum(), 1e-12))
    for v, w in reversed(levels[:-1]):
        up = np.repeat(np.repeat(est, 2, axis=0), 2, axis=1)[:v.shape[0], :v.shape[1]]
        est = np.where(w > 0, v / np.maximum(w, 1e-12), up)
        # Smooth the filled part a little so the pyramid's blocks do not show.
        sm = (np.roll(est, 1, 0) + np.roll(est, -1, 0) + np.roll(est, 1, 1) + np.roll(est, -1, 1) + 4 * est) / 8
        est = np.where(w > 0, est, sm)
    out = np.where(hidden, np.clip(np.round(est), 0, 255), plane)
    return out.astype(np.uint8)


def fill_spatial(frame: Frame, hidden: np.ndarray, nets=None, quality: int | None = None) -> Frame:
    """`frame` with hidden pixels rebuilt from the visible ones of the same frame.

    Push-pull fills the holes smoothly; with `nets` (`zoo.CodecNetworks`) the
    intra network then codes that picture with every latent patch that touches
    a hole masked (its latents replaced by the entropy model's means, as the
    decoder does for masked patches) at `quality` (default: the top level), and
    the hidden pixels take its synthesis.
    """
    hc = chroma_mask(hidden)
    pre = Frame(push_pull(frame.y, hidden), push_pull(frame.u, hc), push_pull(frame.v, hc))
    if nets is None or not hidden.any():
        return composite(frame, pre, hidden)
    import torch

    from mcodec.codec import packing

    q = nets.levels - 1 if quality is None else quality
    x, geo = packing.yuv420_to_tensor(*pre.planes())
    rows, cols = x.shape[2] // 8, x.shape[3] // 8
    hp = np.zeros((rows * 16, cols * 16), bool)
    hp[:hidden.shape[0], :hidden.shape[1]] = hidden
    latent_mask = torch.from_numpy(hp.reshape(rows, 16, cols, 16).any(axis=(1, 3)))
    net = nets.intra
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            x_hat = net(x.to(nets.device), q, mask=latent_mask.to(nets.device)).x_hat
    finally:
        net.train(was_training)
    rebuilt = Frame(*packing.tensor_to_yuv420(torch.round(x_hat.cpu() * 255) / 255, geo))
    return composite(frame, rebuilt, hidden)


def masked_field(field: motion.MotionField) -> motion.MotionField:
    """Every block's vector replaced by the component-wise median of its (up to 8) neighbours'.

    What a block's motion would be if the block itself were masked: predicted
    from the patches around it only, so content the neighbours do not share
    (an object that appears, a flash on one patch) is not explained away by
    its own vector.
    """
    v = field.vectors.astype(np.int32)
    hb, wb = v.shape[:2]
    p = np.pad(v, ((1, 1), (1, 1), (0, 0)), mode="constant")
    ok = np.pad(np.ones((hb, wb), bool), 1)
    nbrs = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    stack = np.stack([p[1 + dy:1 + dy + hb, 1 + dx:1 + dx + wb] for dy, dx in nbrs]).astype(np.float64)
    valid = np.stack([ok[1 + dy:1 + dy + hb, 1 + dx:1 + dx + wb] for dy, dx in nbrs])
    stack[~valid] = np.nan
    if hb * wb == 1:
        return field
    med = np.nanmedian(stack, axis=0)
    return motion.MotionField(field.block, np.round(med).astype(np.int16))


def predict_masked_patches(ref: Frame, target: Frame, distance: int) -> Frame:
    """`target` predicted from `ref` (`distance` frames away) with every patch masked in turn:
    the motion is searched on the whole frame, then each block uses its neighbours'
    vectors (`masked_field`), compensated with OBMC."""
    from mcodec.codec.motion_search import estimate_motion

    field = estimate_motion(target.y, ref.y, block=BLOCK, search=min(64, 8 * distance))
    return Frame(*motion.compensate_obmc(*ref.planes(), masked_field(field)))


def patch_errors(prediction: Frame, target: Frame, patch: int = BLOCK) -> np.ndarray:
    """(Hp, Wp) float32 mean squared error per `patch` x `patch` luma patch (edge patches
    partial), YUV weighted 6:1:1."""
    h, w = target.height, target.width
    hb, wb = motion.blocks_shape(h, w, patch)
    out = np.zeros((hb, wb), np.float64)
    for k, (p, t) in enumerate(zip(prediction.planes(), target.planes())):
        b = patch if k == 0 else patch // 2
        d = (p.astype(np.float64) - t) ** 2
        pad = np.zeros((hb * b, wb * b))
        cnt = np.zeros((hb * b, wb * b))
        pad[:d.shape[0], :d.shape[1]] = d
        cnt[:d.shape[0], :d.shape[1]] = 1
        mse = pad.reshape(hb, b, wb, b).sum(axis=(1, 3)) / np.maximum(cnt.reshape(hb, b, wb, b).sum(axis=(1, 3)), 1)
        out += (6.0 if k == 0 else 1.0) * mse
    return (out / 8.0).astype(np.float32)
