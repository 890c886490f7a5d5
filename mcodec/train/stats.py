"""Residual statistics: how (cur, pred) pairs of a bank compare with real consecutive frames.

r = cur - pred before clipping, in 8-bit levels (see `ResidualStats`). `bank_stats`
measures a pair bank (`mcodec.train.synth`), `measure_clips` real clips coded the
way the codec codes them (ME + MC from a degraded previous frame); measuring only,
nothing read here becomes training data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcodec.codec.distortion import psnr_from_mse
from mcodec.codec.motion import compensate
from mcodec.codec.motion_search import estimate_motion
from mcodec.train.data import load_pair_bank
from mcodec.train.degrade import Planes, degrade_reference

# Per-crop luma PSNR is capped here (a perfect prediction would be +inf).
PSNR_CAP_DB = 60.0


@dataclass(frozen=True)
class ResidualStats:
    """Statistics of residuals r = cur - pred (8-bit levels, before any clipping).

    Attributes:
        pairs: number of (cur, pred) crops.
        mean_abs_y, mean_abs_u, mean_abs_v: mean |r| per plane.
        clip_frac: fraction of all Y, U, V samples with |r| > 127 (clipped by the codec).
        p99_abs_y: 99th percentile of luma |r|.
        psnr_y: mean over pairs of luma PSNR(pred, cur) in dB, each capped at 60 dB.
        grad_y: texture of the current crops: mean |horizontal and vertical luma
            difference| of neighbouring pixels (levels); residuals grow with it.
    """

    pairs: int
    mean_abs_y: float
    mean_abs_u: float
    mean_abs_v: float
    clip_frac: float
    p99_abs_y: float
    psnr_y: float
    grad_y: float


class _StatsAcc:
    """Accumulates residual statistics pair by pair (bounded memory)."""

    def __init__(self) -> None:
        self.n = 0
        self.abs_sum = np.zeros(3)
        self.count = np.zeros(3)
        self.clipped = 0
        self.hist = np.zeros(256, np.int64)                # luma |r| histogram
        self.psnr: list[float] = []
        self.grad_sum = 0.0

    def add(self, cur: Planes, pred: Planes) -> None:
        for k in range(3):
            r = np.abs(cur[k].astype(np.int16) - pred[k].astype(np.int16))
            self.abs_sum[k] += r.sum()
            self.count[k] += r.size
            self.clipped += int((r > 127).sum())
            if k == 0:
                y = cur[0].astype(np.int16)
                self.grad_sum += 0.5 * (float(np.abs(np.diff(y, axis=1)).mean())
                                        + float(np.abs(np.diff(y, axis=0)).mean()))
                self.hist += np.bincount(r.ravel(), minlength=256)
                mse = float((r.astype(np.float64) ** 2).mean())
                self.psnr.append(float(psnr_from_mse(mse, cap=PSNR_CAP_DB)))
        self.n += 1

    def merge(self, other: _StatsAcc) -> None:
        self.n += other.n
        self.abs_sum += other.abs_sum
        self.count += other.count
        self.clipped += other.clipped
        self.hist += other.hist
        self.psnr += other.psnr
        self.grad_sum += other.grad_sum

    def result(self) -> ResidualStats:
        m = self.abs_sum / np.maximum(self.count, 1)
        cdf = np.cumsum(self.hist) / max(1, self.hist.sum())
        return ResidualStats(self.n, float(m[0]), float(m[1]), float(m[2]),
                             float(self.clipped / max(1, self.count.sum())),
                             float(np.searchsorted(cdf, 0.99)),
                             float(np.mean(self.psnr)) if self.psnr else 0.0,
                             self.grad_sum / max(1, self.n))


def residual_stats(cur: Planes, pred: Planes) -> ResidualStats:
    """Statistics of stacked crops: cur / pred = (y (N, H, W), u, v (N, H/2, W/2)) uint8."""
    acc = _StatsAcc()
    for i in range(cur[0].shape[0]):
        acc.add((cur[0][i], cur[1][i], cur[2][i]), (pred[0][i], pred[1][i], pred[2][i]))
    return acc.result()


def bank_stats(path: str | Path | dict, kinds: Sequence[int] | None = None) -> ResidualStats:
    """`residual_stats` of a bank (a path or `load_pair_bank`'s dict), optionally
    only of the pairs whose kind is in `kinds`."""
    d = path if isinstance(path, dict) else load_pair_bank(path)
    sel = np.arange(len(d["kind"])) if kinds is None else np.flatnonzero(np.isin(d["kind"], kinds))
    return residual_stats(tuple(d["cur_" + p][sel] for p in "yuv"),  # type: ignore[arg-type]
                          tuple(d["pred_" + p][sel] for p in "yuv"))  # type: ignore[arg-type]


def _measure_clip(path: str, crop: int, rng: np.random.Generator, degrade: bool,
                  crops_per_frame: int, acc: _StatsAcc) -> None:
    """Add one clip's consecutive-frame residual crops to `acc` (see `measure_clips`)."""
    from mcodec.codec.video_io import open_video

    c = crop // 2
    with open_video(path) as reader:
        prev = None
        for fr in reader:
            cur = (fr.y, fr.u, fr.v)
            if prev is not None:
                ref = degrade_reference(*prev, rng) if degrade else prev
                field = estimate_motion(cur[0], ref[0])
                pred = compensate(ref[0], ref[1], ref[2], field)
                h, w = cur[0].shape
                for _ in range(crops_per_frame):
                    oy = 16 * int(rng.integers(0, (h - crop) // 16 + 1))
                    ox = 16 * int(rng.integers(0, (w - crop) // 16 + 1))
                    ys, xs = slice(oy, oy + crop), slice(ox, ox + crop)
                    ycs, xcs = slice(oy // 2, oy // 2 + c), slice(ox // 2, ox // 2 + c)
                    acc.add((cur[0][ys, xs], cur[1][ycs, xcs], cur[2][ycs, xcs]),
                            (pred[0][ys, xs], pred[1][ycs, xcs], pred[2][ycs, xcs]))
            prev = cur


def measure_clips(paths: Sequence[str], crop: int = 128, seed: int = 0, degrade: bool = True,
                  crops_per_frame: int = 4) -> tuple[ResidualStats, list[ResidualStats]]:
    """Residual statistics of REAL consecutive frames, for comparison with a bank.

    For each clip and each frame t >= 1: reference = frame t-1 (degraded with
    `degrade_reference` when `degrade`), ME + MC of frame t on the full frame (as
    the codec does), then `crops_per_frame` random 16-aligned crop x crop windows.
    Measuring only: nothing read here is stored or used to make training data.

    Returns:
        (statistics over all clips, statistics of each clip in `paths` order).
    """
    total = _StatsAcc()
    per = []
    for k, path in enumerate(paths):
        acc = _StatsAcc()
        _measure_clip(path, crop, np.random.default_rng([seed, k]), degrade, crops_per_frame, acc)
        total.merge(acc)
        per.append(acc.result())
    return total.result(), per


def format_stats(rows: Sequence[tuple[str, ResidualStats]]) -> str:
    """Plain-text table of named `ResidualStats`."""
    lines = [f"{'source':<34} {'pairs':>6} {'|r|Y':>6} {'|r|U':>6} {'|r|V':>6} "
             f"{'clip%':>7} {'p99|r|Y':>8} {'PSNR-Y':>7} {'gradY':>6}"]
    for name, s in rows:
        lines.append(f"{name:<34} {s.pairs:>6} {s.mean_abs_y:>6.2f} {s.mean_abs_u:>6.2f} "
                     f"{s.mean_abs_v:>6.2f} {100 * s.clip_frac:>7.4f} {s.p99_abs_y:>8.0f} "
                     f"{s.psnr_y:>7.2f} {s.grad_y:>6.2f}")
    return "\n".join(lines)
