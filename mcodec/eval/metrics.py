"""Quality metrics computed the same way for every codec.

Every codec in the bench is scored by this module alone, on frames decoded
from its actual output file and compared with the exact source frames it was
given (8-bit YUV 4:2:0). Frames are streamed one at a time, so memory does not
grow with clip length.

Definitions (all PSNR values in dB, peak 255):

* Per frame and plane: ``MSE = mean((ref - dist)^2)`` over the plane's
  samples, ``PSNR = 10 log10(255^2 / MSE)``, capped at :data:`PSNR_CAP_DB`
  (identical planes would give +inf; any value above the cap is clipped too, so
  averages stay finite and comparable).
* Per frame: ``PSNR-YUV = (6 PSNR-Y + PSNR-U + PSNR-V) / 8`` (the 6:1:1
  weighting of the per-plane PSNR used by the DCVC papers).
* Sequence, two ways, both reported:
  - **mean of per-frame values** (``psnr_y``, ``psnr_u``, ``psnr_v``,
    ``psnr_yuv``): the headline metric of the bench is ``psnr_yuv``, the mean
    over frames of the per-frame PSNR-YUV;
  - **PSNR of the mean MSE** (``psnr_*_mse``): per plane, the PSNR of the MSE
    averaged over frames (what ffmpeg's ``psnr`` filter prints in its summary);
    ``psnr_yuv_mse`` is the 6:1:1 weighting of those three.
* MS-SSIM on luma (pytorch-msssim, 5 scales, 11x11 Gaussian window, data range
  255), mean of per-frame values. pytorch-msssim needs the smaller frame side to
  exceed ``(11 - 1) * 2**4 = 160`` pixels; for smaller frames MS-SSIM is NaN.
* VMAF (optional, slow-ish): ffmpeg's ``libvmaf`` filter with its built-in
  default model, on two files (see :func:`vmaf_per_frame`).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from mcodec.codec import ffmpeg as ff
from mcodec.codec.distortion import (PSNR_CAP_DB, YUV_WEIGHTS, frame_mse, frame_psnr_yuv,  # noqa: F401
                                    plane_mse, psnr_from_mse, yuv_weighted)
from mcodec.codec.frame import Frame
from mcodec.errors import VideoIOError

# pytorch-msssim asserts min(H, W) > (win_size - 1) * 2**4 for its 5 scales.
MSSSIM_WIN = 11
MSSSIM_MIN_SIDE = (MSSSIM_WIN - 1) * 2 ** 4 + 1


def msssim_available(height: int, width: int) -> bool:
    """True when a frame of this size is large enough for 5-scale MS-SSIM."""
    return min(height, width) >= MSSSIM_MIN_SIDE


class _MsSsim:
    """Lazily imports torch / pytorch-msssim; scores luma planes one at a time."""

    def __init__(self) -> None:
        import torch  # lazy: torch costs ~1 s to import
        from pytorch_msssim import ms_ssim

        self._torch = torch
        self._ms_ssim = ms_ssim

    def __call__(self, ref_y: np.ndarray, dist_y: np.ndarray) -> float:
        if not msssim_available(*ref_y.shape):
            return math.nan
        t = self._torch
        # One intra-op thread: these small convolutions gain nothing from more,
        # and on a loaded 2-core machine OpenMP threads waiting for each other
        # made them ~100x slower. Restored at once, so callers see no change.
        prev = t.get_num_threads()
        t.set_num_threads(1)
        try:
            with t.no_grad():
                a = t.from_numpy(ref_y.astype(np.float32))[None, None]
                b = t.from_numpy(dist_y.astype(np.float32))[None, None]
                return float(self._ms_ssim(a, b, data_range=255, size_average=True,
                                           win_size=MSSSIM_WIN))
        finally:
            t.set_num_threads(prev)


@dataclass(frozen=True, eq=False)
class SequenceMetrics:
    """Quality of a decoded sequence against its source.

    Scalars are floats (PSNR in dB; MS-SSIM and VMAF unitless, NaN when not
    computed or not available). Per-frame arrays have shape ``(frames,)``,
    float64. See the module docstring for the exact definitions; the headline
    metric is ``psnr_yuv`` (mean of per-frame 6:1:1 PSNR-YUV).
    """

    frames: int
    width: int
    height: int
    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_yuv: float
    psnr_y_mse: float
    psnr_u_mse: float
    psnr_v_mse: float
    psnr_yuv_mse: float
    msssim_y: float
    vmaf: float
    frame_mse_y: np.ndarray
    frame_mse_u: np.ndarray
    frame_mse_v: np.ndarray
    frame_psnr_y: np.ndarray
    frame_psnr_u: np.ndarray
    frame_psnr_v: np.ndarray
    frame_psnr_yuv: np.ndarray
    frame_msssim_y: np.ndarray
    frame_vmaf: np.ndarray

    def summary(self) -> dict[str, float | int]:
        """The scalar fields as a dict (NaN kept as float('nan'))."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not f.name.startswith("frame_")}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: scalars, and per-frame arrays as lists (NaN -> None)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            val = getattr(self, f.name)
            if isinstance(val, np.ndarray):
                out[f.name] = [None if not np.isfinite(x) else float(x) for x in val]
            elif isinstance(val, float) and not math.isfinite(val):
                out[f.name] = None
            else:
                out[f.name] = val
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequenceMetrics:
        """Inverse of :meth:`to_dict`."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            val = data[f.name]
            if f.name.startswith("frame_"):
                kw[f.name] = np.array([math.nan if x is None else x for x in val], dtype=np.float64)
            elif f.name in ("frames", "width", "height"):
                kw[f.name] = int(val)
            else:
                kw[f.name] = math.nan if val is None else float(val)
        return cls(**kw)

    def with_vmaf(self, per_frame: np.ndarray) -> SequenceMetrics:
        """A copy with VMAF filled in from per-frame scores (shape ``(frames,)``)."""
        per_frame = np.asarray(per_frame, dtype=np.float64)
        if per_frame.shape != (self.frames,):
            raise VideoIOError(f"VMAF gave {per_frame.size} frame scores for {self.frames} frames")
        return replace(self, frame_vmaf=per_frame, vmaf=float(np.mean(per_frame)))


def sequence_metrics(reference: Iterable[Frame], distorted: Iterable[Frame], *,
                     msssim: bool = True) -> SequenceMetrics:
    """Score `distorted` against `reference`, frame by frame (bounded memory).

    Args:
        reference: source frames (yuv420p uint8), in display order.
        distorted: decoded frames, same count and size.
        msssim: compute MS-SSIM-Y (imports torch on first use).

    Raises:
        VideoIOError: the sequences differ in frame count or frame size, or are empty.
    """
    mses: list[tuple[float, float, float]] = []
    ssims: list[float] = []
    scorer: _MsSsim | None = None
    ref_it: Iterator[Frame] = iter(reference)
    dist_it: Iterator[Frame] = iter(distorted)
    width = height = 0
    while True:
        r = next(ref_it, None)
        d = next(dist_it, None)
        if r is None or d is None:
            if r is not None or d is not None:
                extra = 1 + sum(1 for _ in (ref_it if r is not None else dist_it))
                longer = "reference" if r is not None else "decoded sequence"
                raise VideoIOError(f"frame count mismatch: the {longer} has {extra} more "
                                   f"frame(s) than the other ({len(mses)} matched)")
            break
        if (r.width, r.height) != (d.width, d.height):
            raise VideoIOError(f"frame {len(mses)}: size {d.width}x{d.height} does not match "
                               f"source {r.width}x{r.height}")
        width, height = r.width, r.height
        mses.append(frame_mse(r, d))
        if msssim and msssim_available(r.height, r.width):
            if scorer is None:
                scorer = _MsSsim()
            ssims.append(scorer(r.y, d.y))
        else:
            ssims.append(math.nan)
    if not mses:
        raise VideoIOError("no frames to compare")
    return _summarise(np.asarray(mses, dtype=np.float64), np.asarray(ssims, dtype=np.float64),
                      width, height)


def _summarise(mse: np.ndarray, ssim: np.ndarray, width: int, height: int) -> SequenceMetrics:
    """Build SequenceMetrics from per-frame MSE ``(n, 3)`` and MS-SSIM ``(n,)``."""
    n = mse.shape[0]
    fp = [np.asarray(psnr_from_mse(mse[:, k])) for k in range(3)]
    fyuv = np.asarray(yuv_weighted(fp[0], fp[1], fp[2]))
    mean_mse = mse.mean(axis=0)
    pm = [float(psnr_from_mse(float(m))) for m in mean_mse]
    # nanmean of an all-NaN array warns; MS-SSIM is all-NaN for small frames.
    ms = float(np.mean(ssim)) if np.all(np.isfinite(ssim)) else math.nan
    return SequenceMetrics(
        frames=n, width=width, height=height,
        psnr_y=float(fp[0].mean()), psnr_u=float(fp[1].mean()), psnr_v=float(fp[2].mean()),
        psnr_yuv=float(fyuv.mean()),
        psnr_y_mse=pm[0], psnr_u_mse=pm[1], psnr_v_mse=pm[2],
        psnr_yuv_mse=float(yuv_weighted(pm[0], pm[1], pm[2])),
        msssim_y=ms, vmaf=math.nan,
        frame_mse_y=mse[:, 0].copy(), frame_mse_u=mse[:, 1].copy(), frame_mse_v=mse[:, 2].copy(),
        frame_psnr_y=fp[0], frame_psnr_u=fp[1], frame_psnr_v=fp[2], frame_psnr_yuv=fyuv,
        frame_msssim_y=ssim, frame_vmaf=np.full(n, math.nan))


_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./-]+$")


def vmaf_per_frame(reference_path: str, distorted_path: str, *, threads: int = 2,
                   ffmpeg: str | None = None) -> np.ndarray:
    """Per-frame VMAF of `distorted_path` against `reference_path`, shape ``(frames,)``.

    Both files must hold the same number of 8-bit 4:2:0 frames of the same size
    (the bench passes y4m files: its source cut and the decoded frames). Uses
    ffmpeg's ``libvmaf`` filter with its built-in default model (VMAF 0..100).

    Raises:
        FFmpegError: ffmpeg or libvmaf failed.
        VideoIOError: the log could not be read.
    """
    for p in (reference_path, distorted_path):
        if not os.path.isfile(p):
            raise VideoIOError(f"VMAF input not found: {p}")
    # The log path sits inside a filtergraph string, where ':' ',' '[' and
    # quotes are syntax; a fresh temp folder has a name free of them.
    with tempfile.TemporaryDirectory(prefix="mcodec-vmaf-") as tmp:
        log = os.path.join(tmp, "vmaf.json")
        if not _SAFE_PATH.match(log):
            raise VideoIOError(f"temporary path unsuitable for a filtergraph: {log}")
        args = ff.base_args(ffmpeg) + [
            *ff.SAFE_INPUT, "-i", ff.input_url(distorted_path),
            *ff.SAFE_INPUT, "-i", ff.input_url(reference_path),
            "-lavfi", f"[0:v][1:v]libvmaf=log_fmt=json:log_path={log}:n_threads={int(threads)}",
            "-f", "null", "-"]
        ff.run_ffmpeg(args, "VMAF computation failed")
        try:
            with open(log, encoding="utf-8") as fh:
                data = json.load(fh)
            return np.array([float(fr["metrics"]["vmaf"]) for fr in data["frames"]],
                            dtype=np.float64)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VideoIOError(f"cannot read libvmaf log: {exc}") from exc
