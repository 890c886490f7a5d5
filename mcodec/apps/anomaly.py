"""`mcodec anomaly`: score each frame and 16x16 patch by how badly the codec's masked-patch
predictors rebuild it from its context.

    frame t, every patch masked in turn, predicted from:
      short range  the masked-frame rebuild from t-1 and t+1 (bilateral, t unseen), and t-1 or
                   t+1 alone with each patch's vector taken from its neighbours (fill.masked_field)
      long range   two frames far away alone, the same way: t-LONG and t+LONG (near the clip's
                   ends t+-LONG and t+-2*LONG): content that does not belong to the clip (a
                   pasted object, a foreign segment) survives a short-range copy, not this
    error per patch = YUV 6:1:1 MSE of the best prediction of each range (fill.patch_errors)
    patch score  = log((error + EPS_HIGH) / (that patch's median error over the clip + EPS_HIGH)),
                   the larger of the two ranges
    frame score  = the larger robust z-score (median / MAD over the clip's frames) of two
                   components (`scores_from_errors`, chosen on training video): the mean of
                   its worst patches' long-range log-ratios (something that does not belong),
                   and with EPS_LOW the mean of its most over-predictable patches' short-range
                   ones (too predictable: a frozen picture, a rigid pasted overlay)

Errors are kept per patch for the whole clip (a few floats per patch); frames are
streamed through a window of 4 * LONG + 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from mcodec.codec import fill
from mcodec.codec.frame import Frame

LONG = 8             # long-range context distance, frames (> the longest segment to notice)
EPS_HIGH = 4.0       # MSE floor of the "new content" log-ratio (camera noise level, 8-bit)
EPS_LOW = 0.05       # MSE floor of the "too predictable" log-ratio (exact repeats reach 0)
TOP_SHARE = 0.05     # share of a frame's patches whose mean score is its "new content" value
MAD_FLOOR = 0.05     # smallest spread of a frame-level component (log units)
ANALYSIS_WIDTH = 480  # wider frames are scored on their 2x2 mean (8x8 patches there = 16x16 here)


@dataclass(frozen=True)
class AnomalyResult:
    """Scores of one clip.

    Attributes:
        scores: (n,) float64 per frame, display order; higher = more anomalous
            (a robust z-score: ~0 typical, > 3 unusual).
        patch_scores: (n, Hb, Wb) float32 per 16x16 luma patch (log-ratio of its
            prediction error to its usual error; > 0 = worse predicted than usual).
        short_errors, long_errors: (n, Hb, Wb) float32 raw prediction MSE per patch.
        width, height: frame size (pixels); fps: frame rate.
    """

    scores: np.ndarray
    patch_scores: np.ndarray
    short_errors: np.ndarray
    long_errors: np.ndarray
    width: int
    height: int
    fps: Fraction

    def worst(self, top: int) -> list[int]:
        """Indices of the `top` highest-scoring frames, highest first."""
        return [int(i) for i in np.argsort(-self.scores, kind="stable")[:top]]

    def summary(self, top: int = 5) -> str:
        lines = [f"{len(self.scores)} frames scored ({self.width}x{self.height}); most anomalous:"]
        lines += [f"  frame {i:5d}  score {self.scores[i]:8.2f}" for i in self.worst(top)]
        return "\n".join(lines)


Candidates = dict[str, np.ndarray]   # predictor name -> (Hb, Wb) float32 patch errors


def context_errors(frames: Iterable[Frame], long: int = LONG) -> Iterator[tuple[Candidates, Candidates]]:
    """For each frame in order, its (short-range, long-range) candidate patch errors (see module doc):
    names "both" (the masked-frame rebuild), "past" and "future"; a frame near the clip's
    ends has fewer. A one-frame clip has no temporal context: its errors are the spatial
    fill-in's (push-pull from a checkerboard of visible patches), named "spatial".
    """
    source = iter(frames)
    window: dict[int, Frame] = {}
    n_read = 0
    done = False

    def read_to(k: int) -> None:
        nonlocal n_read, done
        while not done and n_read <= k:
            try:
                window[n_read] = _analysis_frame(next(source))
                n_read += 1
            except StopIteration:
                done = True

    t = 0
    while True:
        read_to(t + 2 * long)
        if t not in window:
            return
        cur = window[t]
        patch = fill.BLOCK // 2 if getattr(cur, "halved", False) else fill.BLOCK
        prev, nxt = window.get(t - 1), window.get(t + 1)
        short: Candidates = {}
        if prev is not None and nxt is not None:
            bi = fill.predict_between(fill.Reference(prev, 1), fill.Reference(nxt, 1))
            short["both"] = fill.patch_errors(bi, cur, patch)
        for name, ref in (("past", prev), ("future", nxt)):
            if ref is not None:
                short[name] = fill.patch_errors(fill.predict_masked_patches(ref, cur, 1), cur, patch)
        # Two long-range contexts per frame, the same number everywhere so that scores compare:
        # LONG frames back and ahead, else 2*LONG on the side that has them, else (a short
        # clip) the farthest frames. One anomalous frame is then never a frame's only context.
        picks = [k for k in (t - long, t + long, t + 2 * long, t - 2 * long) if k in window]
        picks += sorted((k for k in window if k != t and k not in picks), key=lambda k: (-abs(k - t), k))
        far = {name: k for name, k in zip(("a", "b"), picks[:2])}
        longe: Candidates = {name: fill.patch_errors(fill.predict_masked_patches(window[k], cur, abs(k - t)),
                                                     cur, patch)
                             for name, k in far.items()}
        if not short:
            short = longe = {"spatial": _spatial_errors(cur, patch)}
        yield short, longe
        window.pop(t - 2 * long, None)
        t += 1


def best_errors(candidates: list[Candidates]) -> np.ndarray:
    """(n, Hb, Wb) float32: per frame, the least error of its candidate predictors, made comparable
    across frames with fewer candidates (the clip's ends): the minimum over a subset is scaled by
    how much higher that subset's minimum runs than the full minimum on the frames that have more
    (the largest candidate set that contains it)."""
    mins = [np.minimum.reduce(list(c.values())) for c in candidates]
    out = []
    for c, m in zip(candidates, mins):
        richer = [d for d in candidates if c.keys() < d.keys()]
        if richer:
            most = max(len(d) for d in richer)
            richer = [d for d in richer if len(d) == most]
            sub = float(np.median([np.minimum.reduce([d[k] for k in c]) for d in richer]))
            ref = float(np.median([np.minimum.reduce(list(d.values())) for d in richer]))
            if sub > 0:
                m = m * (ref / sub)
        out.append(m)
    return np.stack(out).astype(np.float32)


class _Halved(Frame):
    """A frame scored at half size (`_analysis_frame`)."""

    halved = True


def _analysis_frame(frame: Frame) -> Frame:
    """The frame as scored: itself, or its 2x2 mean when wider than ANALYSIS_WIDTH (the
    scores stay per 16x16 patch of the input; only the search and the errors get cheaper)."""
    if frame.width <= ANALYSIS_WIDTH:
        return frame
    from mcodec.codec.resample import downsample_frame

    small = downsample_frame(frame, (frame.width + 1) // 2, (frame.height + 1) // 2)
    return _Halved(small.y, small.u, small.v)


def _spatial_errors(frame: Frame, patch: int) -> np.ndarray:
    """Patch errors of a frame rebuilt from itself: each checkerboard half masked in turn."""
    hb, wb = -(-frame.height // patch), -(-frame.width // patch)
    err = np.zeros((hb, wb), np.float32)
    cb = (np.arange(hb)[:, None] + np.arange(wb)[None, :]) % 2 == 0
    for half in (cb, ~cb):
        hidden = np.repeat(np.repeat(half, patch, 0), patch, 1)[:frame.height, :frame.width]
        e = fill.patch_errors(fill.fill_spatial(frame, hidden), frame, patch)
        err[half] = e[half]
    return err


def _robust_z(a: np.ndarray) -> np.ndarray:
    med = np.median(a)
    mad = 1.4826 * np.median(np.abs(a - med))
    return (a - med) / max(mad, MAD_FLOOR)


def _top_mean(x: np.ndarray) -> float:
    flat = np.sort(x.ravel())[::-1]
    k = max(1, int(round(TOP_SHARE * flat.size)))
    return float(flat[:k].mean())


COMPONENTS = ("new_short", "new_long", "frozen", "still")
# Chosen on training material (benchmarks/tune_anomaly.py, 32 runs: foreman x2, flower, carphone
# x 4 types x 2 seeds; frame-level ROC AUC object/flash/frozen/foreign, mean):
#   new_long + still                          0.927 / 0.973 / 0.971 / 0.992, mean 0.966
#   all four                                  0.890 / 0.935 / 0.981 / 0.957, mean 0.941
#   new_short + new_long + frozen             0.815 / 0.946 / 0.981 / 0.956, mean 0.924
# (TOP_SHARE 0.02 / 0.1, EPS_HIGH 1 / 16, EPS_LOW 0.01 / 0.25 moved the best mean by <= 0.006.)
DEFAULT_COMPONENTS = ("new_long", "still")


def scores_from_errors(short: np.ndarray, long: np.ndarray,
                       components: tuple[str, ...] = DEFAULT_COMPONENTS) -> tuple[np.ndarray, np.ndarray]:
    """(frame scores (n,) float64, patch scores (n, Hb, Wb) float32) from (n, Hb, Wb) errors.

    Frame-level components (each a robust z-score over the clip; the score is the maximum of
    those in `components`, by default DEFAULT_COMPONENTS):
        new_short  mean of the worst TOP_SHARE patches' short-range log-ratio (something appears)
        new_long   the same, long range (something that does not belong to the clip)
        frozen     minus the median short-range log-ratio at EPS_LOW (the whole frame too predictable)
        still      mean of the TOP_SHARE most over-predictable patches (a rigid overlay, a frozen region)
    """
    if short.shape != long.shape or short.ndim != 3 or short.shape[0] == 0:
        raise ValueError(f"errors must be two equal (n>0, Hb, Wb) arrays, got {short.shape} {long.shape}")
    unknown = set(components) - set(COMPONENTS)
    if unknown or not components:
        raise ValueError(f"components {components!r}: choose among {COMPONENTS}")
    s = short.astype(np.float64)
    lg = long.astype(np.float64)
    high_s = np.log((s + EPS_HIGH) / (np.median(s, axis=0) + EPS_HIGH))
    high_l = np.log((lg + EPS_HIGH) / (np.median(lg, axis=0) + EPS_HIGH))
    low_s = -np.log((s + EPS_LOW) / (np.median(s, axis=0) + EPS_LOW))
    comps = {"new_short": lambda: np.array([_top_mean(x) for x in high_s]),
             "new_long": lambda: np.array([_top_mean(x) for x in high_l]),
             "frozen": lambda: np.median(low_s.reshape(len(s), -1), axis=1),
             "still": lambda: np.array([_top_mean(x) for x in low_s])}
    scores = np.max(np.stack([_robust_z(comps[c]()) for c in components]), axis=0)
    return scores, np.maximum(np.maximum(high_s, high_l), low_s).astype(np.float32)


def score_frames(frames: Iterable[Frame], *, progress: Callable[[], None] | None = None,
                 long: int = LONG) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(scores, patch_scores, short_errors, long_errors) of frames (see AnomalyResult)."""
    shorts, longs = [], []
    for s, lg in context_errors(frames, long=long):
        shorts.append(s)
        longs.append(lg)
        if progress is not None:
            progress()
    if not shorts:
        raise ValueError("no frames to score")
    short, longe = best_errors(shorts), best_errors(longs)
    scores, patches = scores_from_errors(short, longe)
    return scores, patches, short, longe


def score_video(src: str, *, max_frames: int | None = None, progress: bool = False,
                size: str | None = None, fps: str | None = None, pix_fmt: str | None = None,
                warn: Callable[[str], None] | None = None) -> AnomalyResult:
    """Anomaly scores of video `src` (any ffmpeg-readable file, raw .yuv with `size`, or ``-``).

    Raises:
        VideoIOError: unreadable input or a video with no frames.
    """
    from tqdm import tqdm

    from mcodec.codec.video_io import open_video
    from mcodec.errors import VideoIOError

    with open_video(src, size=size, fps=Fraction(fps) if fps else None, pix_fmt=pix_fmt,
                    max_frames=max_frames, warn=warn) as reader, \
            tqdm(desc="anomaly", unit="frame", disable=not progress, file=sys.stderr) as bar:
        try:
            scores, patches, short, longe = score_frames(reader, progress=lambda: bar.update(1))
        except ValueError:
            raise VideoIOError(f"{src} has no frames") from None
        info = reader.info
    return AnomalyResult(scores=scores, patch_scores=patches, short_errors=short, long_errors=longe,
                         width=info.width, height=info.height, fps=info.fps)


REPORT_FILES = ("scores.csv", "patch_scores.npy", "scores.png")


def write_report(result: AnomalyResult, folder: str, *, source: str = "", worst: int = 3,
                 overwrite: bool = False, frames: dict[int, Frame] | None = None) -> list[str]:
    """Write the report files into `folder` (created): scores.csv (`frame,score`), patch_scores.npy
    ((n, Hb, Wb) float32), scores.png (score over time) and heatmap_NNNNN.png for the `worst`
    frames (the frame from `source` under its patch scores). Returns the paths written.

    Raises:
        VideoIOError: a report file exists (without `overwrite`) or cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mcodec.atomic import atomic_path
    from mcodec.errors import VideoIOError

    worst_frames = sorted(result.worst(worst))
    names = list(REPORT_FILES) + [f"heatmap_{i:05d}.png" for i in worst_frames]
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise VideoIOError(f"cannot create report folder {folder}: {exc.strerror}") from None
    paths = [os.path.join(folder, n) for n in names]
    if not overwrite:
        existing = [p for p in paths if os.path.exists(p)]
        if existing:
            raise VideoIOError(f"report file exists: {existing[0]} (use -y to overwrite)")
    if frames is None and source and worst_frames:
        frames = _read_frames(source, set(worst_frames))
    with atomic_path(paths[0]) as tmp:
        with open(tmp, "w", encoding="ascii") as f:
            f.write("frame,score\n")
            for i, s in enumerate(result.scores):
                f.write(f"{i},{s:.6f}\n")
    with atomic_path(paths[1]) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, result.patch_scores)
    fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
    ax.plot(np.arange(len(result.scores)), result.scores, marker=".", lw=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("anomaly score (robust z)")
    ax.set_title(os.path.basename(source) or "anomaly score")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save_figure(fig, paths[2])
    vmax = max(1.0, float(np.percentile(result.patch_scores, 99.9)))
    for i, path in zip(worst_frames, paths[3:]):
        fig, ax = plt.subplots(figsize=(6, 6 * result.height / max(result.width, 1) + 0.6), dpi=100)
        if frames and i in frames:
            ax.imshow(frames[i].y, cmap="gray", vmin=0, vmax=255, extent=(0, result.width, result.height, 0))
        hb, wb = result.patch_scores.shape[1:]
        im = ax.imshow(np.clip(result.patch_scores[i], 0, None), cmap="inferno", alpha=0.55, vmin=0, vmax=vmax,
                       extent=(0, wb * fill.BLOCK, hb * fill.BLOCK, 0), interpolation="nearest")
        ax.set_xlim(0, result.width)
        ax.set_ylim(result.height, 0)
        ax.set_title(f"frame {i}: score {result.scores[i]:.2f}")
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.04, label="patch score")
        fig.tight_layout()
        _save_figure(fig, path)
    return paths


def _save_figure(fig, path: str) -> None:
    import matplotlib.pyplot as plt

    from mcodec.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


def _read_frames(source: str, wanted: set[int]) -> dict[int, Frame]:
    from mcodec.codec.video_io import open_video

    out: dict[int, Frame] = {}
    if source == "-":
        return out
    with open_video(source, max_frames=max(wanted) + 1) as reader:
        for i, frame in enumerate(reader):
            if i in wanted:
                out[i] = frame
    return out
