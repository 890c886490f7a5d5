"""YUV 4:2:0 planes <-> the networks' 6-channel tensor (exact both ways).

Luma is space-to-depth'ed by 2 into 4 channels and stacked with U and V, giving
one (1, 6, H/2, W/2) float32 tensor in [0, 1] per frame; no RGB conversion
anywhere. Channel order: y[0::2,0::2], y[0::2,1::2], y[1::2,0::2],
y[1::2,1::2], u, v. Frames are replicate-padded to a multiple of the analysis
transform's stride; `tensor_to_yuv420` rounds, clamps and crops back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# Downsampling factor of the analysis transform on the 6-channel half-resolution
# tensor (16 in luma samples); frames are padded to a multiple of it.
STRIDE = 8


@dataclass(frozen=True)
class FrameGeometry:
    """How a frame was padded into a tensor, so `tensor_to_yuv420` can crop it back.

    Attributes:
        height, width: luma size of the original frame (pixels).
        padded_height, padded_width: luma size after replicate padding (multiples of 2*stride).
    """

    height: int
    width: int
    padded_height: int
    padded_width: int


def _pad_plane(plane: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Replicate-pad a 2-D plane at the bottom/right to (rows, cols)."""
    return np.pad(plane, ((0, rows - plane.shape[0]), (0, cols - plane.shape[1])), mode="edge")


def yuv420_to_tensor(y: np.ndarray, u: np.ndarray, v: np.ndarray,
                     stride: int = STRIDE) -> tuple[Tensor, FrameGeometry]:
    """Pack yuv420p planes into one (1, 6, Hp/2, Wp/2) float32 tensor in [0, 1].

    Args:
        y: (H, W) uint8 luma; any size >= 1x1, odd allowed.
        u, v: (ceil(H/2), ceil(W/2)) uint8 chroma.
        stride: the tensor's spatial size is padded (replicating edges) to a
            multiple of this; luma to a multiple of 2*stride.

    Returns:
        (x, geometry): x is (1, 6, Hp/2, Wp/2) with values k/255.
    """
    h, w = y.shape
    ch, cw = (h + 1) // 2, (w + 1) // 2
    if y.dtype != np.uint8 or u.dtype != np.uint8 or v.dtype != np.uint8:
        raise ValueError("planes must be uint8")
    if u.shape != (ch, cw) or v.shape != (ch, cw):
        raise ValueError(f"chroma {u.shape}/{v.shape} does not match luma {y.shape} for 4:2:0")
    m = 2 * stride
    hp, wp = -(-h // m) * m, -(-w // m) * m
    yp = _pad_plane(y, hp, wp)
    planes = [yp[0::2, 0::2], yp[0::2, 1::2], yp[1::2, 0::2], yp[1::2, 1::2],
              _pad_plane(u, hp // 2, wp // 2), _pad_plane(v, hp // 2, wp // 2)]
    arr = np.stack(planes)[None].astype(np.float32) / np.float32(255.0)
    return torch.from_numpy(arr), FrameGeometry(h, w, hp, wp)


def tensor_to_yuv420(x: Tensor, geometry: FrameGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact inverse of `yuv420_to_tensor`: round, clamp to uint8 and crop.

    Args:
        x: (1, 6, Hp/2, Wp/2) tensor in [0, 1] (values outside are clamped).
        geometry: as returned by `yuv420_to_tensor`.

    Returns:
        (y, u, v) uint8 planes of the original size.
    """
    g = geometry
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 6 or \
            x.shape[2] * 2 != g.padded_height or x.shape[3] * 2 != g.padded_width:
        raise ValueError(f"tensor {tuple(x.shape)} does not match {g}")
    q = torch.round(x.detach().to(torch.float32).cpu() * 255.0).clamp_(0, 255).to(torch.uint8)[0].numpy()
    y = np.empty((g.padded_height, g.padded_width), dtype=np.uint8)
    y[0::2, 0::2], y[0::2, 1::2], y[1::2, 0::2], y[1::2, 1::2] = q[0], q[1], q[2], q[3]
    ch, cw = (g.height + 1) // 2, (g.width + 1) // 2
    return (np.ascontiguousarray(y[:g.height, :g.width]), np.ascontiguousarray(q[4, :ch, :cw]),
            np.ascontiguousarray(q[5, :ch, :cw]))
