"""Exact 2x resampling of YUV 4:2:0 frames for coding at twice the resolution.

Why: the shipped networks carry one 96-channel latent per 16x16 patch, too
little to represent fine texture; coded at twice the width and height, each
latent covers an 8x8 patch of the original and the quality ceiling rises by
several dB (docs/model.md, "Coding at 2x"). The encoder upsamples the source
(`upsample_frame`, any good filter would do: the decoder never runs it); the
decoder reconstructs at 2x, keeps that as the reference of the next frame, and
outputs `downsample_frame` of it, which is normative (docs/bitstream.md).

Both filters are centre-aligned (output sample i of the 2x grid sits at source
position i/2 - 1/4), integer-only and edge-replicating:
    up:   Catmull-Rom cubic at phases 1/4 and 3/4: taps (-3, 29, 111, -9)/128 and
          (-9, 111, 29, -3)/128, rounded, clipped to 0..255;
    down: the mean of each 2x2 block, (a + b + c + d + 2) >> 2.
"""

from __future__ import annotations

import numpy as np

from mcodec.codec.frame import Frame

# Catmull-Rom weights (x128) of source samples k-1, k, k+1, k+2 for the output at
# position k + 1/4 (phase "late") and k - 1/4 (phase "early": the mirror image).
_TAPS_LATE = (-9, 111, 29, -3)     # output 2k+1, between k and k+1, nearer k
_TAPS_EARLY = (-3, 29, 111, -9)    # output 2k, between k-1 and k, nearer k


def _up_axis0(x: np.ndarray) -> np.ndarray:
    """(n, ...) int32 -> (2n, ...) int32 scaled by 128 (no rounding yet)."""
    p = np.concatenate([x[:1], x[:1], x, x[-1:], x[-1:]], axis=0)   # edge-replicated by 2
    n = x.shape[0]
    s = [p[i:i + n] for i in range(5)]                               # s[j] = sample k + j - 2
    out = np.empty((2 * n, *x.shape[1:]), np.int32)
    out[0::2] = sum(t * s[j] for j, t in zip(range(0, 4), _TAPS_EARLY))  # k-2+... : k-2,k-1,k,k+1
    out[1::2] = sum(t * s[j] for j, t in zip(range(1, 5), _TAPS_LATE))   # k-1,k,k+1,k+2
    return out


def upsample_plane(plane: np.ndarray) -> np.ndarray:
    """(h, w) uint8 -> (2h, 2w) uint8, separable cubic, rounded and clipped."""
    if plane.ndim != 2 or plane.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 plane, got {plane.shape} {plane.dtype}")
    rows = _up_axis0(plane.astype(np.int32))                          # x128
    both = _up_axis0(rows.T).T                                        # x128^2
    return np.clip((both + (1 << 13)) >> 14, 0, 255).astype(np.uint8)


def downsample_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """(>= 2h-1, >= 2w-1) uint8 -> (height, width) uint8: 2x2 means, rounded.

    A missing last row or column of an odd-sized source is replicated.
    """
    if plane.ndim != 2 or plane.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 plane, got {plane.shape} {plane.dtype}")
    ph, pw = 2 * height, 2 * width
    if plane.shape[0] < ph - 1 or plane.shape[1] < pw - 1:
        raise ValueError(f"plane {plane.shape} too small for a {height}x{width} 2x downsample")
    x = plane[:ph, :pw].astype(np.int32)
    if x.shape[0] < ph:
        x = np.concatenate([x, x[-1:]], axis=0)
    if x.shape[1] < pw:
        x = np.concatenate([x, x[:, -1:]], axis=1)
    s = x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]
    return ((s + 2) >> 2).astype(np.uint8)


def upsample_frame(frame: Frame) -> Frame:
    """The frame at twice its width and height (4:2:0 of the larger size)."""
    h, w = frame.height, frame.width
    return Frame(upsample_plane(frame.y), upsample_plane(frame.u)[:h, :w],
                 upsample_plane(frame.v)[:h, :w])


def downsample_frame(frame: Frame, width: int, height: int) -> Frame:
    """A frame coded at 2x brought back to `width` x `height` (the decoder's output)."""
    ch, cw = (height + 1) // 2, (width + 1) // 2
    return Frame(downsample_plane(frame.y, height, width), downsample_plane(frame.u, ch, cw),
                 downsample_plane(frame.v, ch, cw))
