"""Inserted anomalies for evaluating ``mcodec anomaly``: the generator, the frame-difference
baseline and frame-level ROC AUC.

Four kinds of event (:data:`ANOMALY_KINDS`), each inserted once into an otherwise untouched
clip (a list of :class:`~mcodec.codec.frame.Frame`, display order) and deterministic from an
integer seed:

* ``object``  -- a foreign object (a patch cut from a photo or another clip) of 3-8 % of the
  frame area, pasted at a fixed or slowly drifting position over 4-8 frames;
* ``flash``   -- 1-2 frames brightened strongly (luma +60..+100, clipped, or blended toward
  white by 50-70 %);
* ``frozen``  -- a segment of 4-8 frames replaced by exact copies of its first frame (the
  copies, all but the first, are the anomalous frames);
* ``foreign`` -- a segment of 4-8 frames replaced by frames of another clip, scaled and
  centre-cropped to this clip's size.

Every generator returns an :class:`Inserted` that unpacks as ``frames, labels``: ``labels``
is a bool array with one entry per frame, True for an anomalous frame. Frames not labelled
are the source's frames, byte for byte. The event never starts before frame
``max(2, n // 8)`` and leaves at least two normal frames after it.

:func:`roc_auc` is the Mann-Whitney AUC (ties count one half); :func:`frame_difference_scores`
is the baseline detector (mean absolute luma difference to the previous frame).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from mcodec.codec.frame import Frame, chroma_shape

ANOMALY_KINDS = ("object", "flash", "frozen", "foreign")
"""The kinds of inserted event, in report order."""

MIN_FRAMES = 8
"""The shortest clip an event is inserted into (frames): two normal frames, a 4-frame
segment, two normal frames."""

SEGMENT_FRAMES = (4, 8)
"""Length of an object / frozen / foreign segment, inclusive range (frames)."""

FLASH_FRAMES = (1, 2)
"""Length of a flash, inclusive range (frames)."""

OBJECT_AREA = (0.03, 0.08)
"""Area of a pasted object as a fraction of the frame area."""

OBJECT_DRIFT = 2
"""Largest drift of a pasted object per frame and axis (luma pixels / frame)."""

FLASH_ADD = (60, 100)
"""Luma offset of an additive flash, inclusive range (8-bit code values)."""

FLASH_BLEND = (0.5, 0.7)
"""Weight of white in a blended flash (fraction)."""

_KIND_CODE = {kind: i + 1 for i, kind in enumerate(ANOMALY_KINDS)}


@dataclass(frozen=True)
class AnomalyEvent:
    """Where and how one event was inserted.

    Attributes:
        kind: one of :data:`ANOMALY_KINDS`.
        start: display index of the first modified frame (frames).
        length: frames in the modified segment (for ``frozen`` this includes the segment's
            first frame, which is kept and not labelled).
        params: the event's random choices as ``(name, value)`` pairs (sizes and positions in
            luma pixels, offsets in 8-bit code values, weights as fractions).
    """

    kind: str
    start: int
    length: int
    params: tuple[tuple[str, int | float | str], ...] = ()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary (params flattened in)."""
        return {"kind": self.kind, "start": self.start, "length": self.length, **dict(self.params)}


@dataclass(frozen=True, eq=False)
class Inserted:
    """A clip with one inserted event. Unpacks as ``frames, labels``.

    Attributes:
        frames: the clip's frames in display order (untouched frames are the source's objects).
        labels: (n,) bool, True where the frame is anomalous.
        event: what was inserted where.
    """

    frames: tuple[Frame, ...]
    labels: np.ndarray
    event: AnomalyEvent

    def __iter__(self) -> Iterator[object]:
        yield list(self.frames)
        yield self.labels


# ----------------------------------------------------------------------------- helpers


def _rng(kind: str, seed: int) -> np.random.Generator:
    """The event's random generator: a function of (seed, kind) only."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), _KIND_CODE[kind]])


def _check_clip(frames: Sequence[Frame]) -> tuple[int, int, int]:
    """(n, height, width) of a clip long enough for an event; ValueError otherwise."""
    n = len(frames)
    if n < MIN_FRAMES:
        raise ValueError(f"a clip needs at least {MIN_FRAMES} frames for an inserted anomaly, got {n}")
    h, w = frames[0].height, frames[0].width
    for i, f in enumerate(frames):
        if (f.height, f.width) != (h, w):
            raise ValueError(f"frame {i} is {f.width}x{f.height}, frame 0 is {w}x{h}")
    return n, h, w


def _place(rng: np.random.Generator, n: int, lengths: tuple[int, int]) -> tuple[int, int]:
    """(start, length) of a segment: length in `lengths` (capped at n // 3, at least the
    lower bound), start >= max(2, n // 8), at least two normal frames after it."""
    lo_len, hi_len = lengths
    hi_len = max(lo_len, min(hi_len, n // 3))
    length = int(rng.integers(lo_len, hi_len + 1))
    first = max(2, n // 8)
    last = n - length - 2
    if last < first:
        raise ValueError(f"a {n}-frame clip has no room for a {length}-frame event")
    return int(rng.integers(first, last + 1)), length


def _labels(n: int, start: int, stop: int) -> np.ndarray:
    """(n,) bool, True on frames start..stop-1."""
    labels = np.zeros(n, dtype=bool)
    labels[start:stop] = True
    return labels


def _copy(frame: Frame) -> Frame:
    return Frame(frame.y.copy(), frame.u.copy(), frame.v.copy())


def _box_down(plane: np.ndarray, k: int) -> np.ndarray:
    """Mean of k x k blocks (the plane cropped to a multiple of k), rounded, uint8."""
    if k <= 1:
        return plane
    h, w = plane.shape[0] // k * k, plane.shape[1] // k * k
    blocks = plane[:h, :w].reshape(h // k, k, w // k, k).astype(np.float64)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def _cover_indices(src: int, dst: int, scale: float) -> np.ndarray:
    """Source indices of `dst` samples: nearest-neighbour scaling by `scale`, centred crop
    (even offset, so that 4:2:0 chroma stays aligned)."""
    scaled = int(np.ceil(src * scale - 1e-9))
    offset = max(0, (scaled - dst) // 2) // 2 * 2
    idx = np.floor((np.arange(dst) + offset) / scale + 1e-9).astype(np.int64)
    return np.clip(idx, 0, src - 1)


def fit_frame(frame: Frame, width: int, height: int) -> Frame:
    """`frame` scaled to cover `width` x `height` (luma pixels) and centre-cropped to it.

    A frame at least twice the target in both directions is first reduced by an integer
    box filter (mean of k x k pixels, k = the largest factor that still covers the target);
    what remains is scaled by nearest neighbour (only ever up) and cropped at an even offset.
    A frame already the target size is returned as is.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"bad target size {width}x{height}")
    if (frame.width, frame.height) == (width, height):
        return frame
    k = max(1, int(min(frame.width / width, frame.height / height)))
    y, u, v = (_box_down(p, k) for p in frame.planes())
    sh, sw = y.shape
    scale = max(width / sw, height / sh, 1.0)
    rows, cols = _cover_indices(sh, height, scale), _cover_indices(sw, width, scale)
    ch, cw = chroma_shape(height, width)
    crow = np.clip(rows[0::2] // 2, 0, u.shape[0] - 1)[:ch]
    ccol = np.clip(cols[0::2] // 2, 0, u.shape[1] - 1)[:cw]
    return Frame(np.ascontiguousarray(y[np.ix_(rows, cols)]),
                 np.ascontiguousarray(u[np.ix_(crow, ccol)]),
                 np.ascontiguousarray(v[np.ix_(crow, ccol)]))


# ----------------------------------------------------------------------------- the four kinds


def insert_object(frames: Sequence[Frame], seed: int, source: Frame) -> Inserted:
    """Paste a patch of `source` (a photo or a frame of another clip) over 4-8 frames.

    The patch covers 3-8 % of the frame area (aspect 3:4 to 4:3, even sizes), is cut at a
    random even position of `source` (scaled up first if `source` is too small), and sits at
    a random position that stays fixed or drifts by up to 2 luma pixels per frame and axis
    (kept inside the frame). Luma and chroma are both replaced. Every frame carrying the
    patch is labelled.
    """
    n, h, w = _check_clip(frames)
    rng = _rng("object", seed)
    start, length = _place(rng, n, SEGMENT_FRAMES)
    area = float(rng.uniform(*OBJECT_AREA)) * h * w
    aspect = float(rng.uniform(0.75, 4 / 3))                       # width / height
    ph = min(h - 2, max(4, int(round(np.sqrt(area / aspect) / 2)) * 2))
    pw = min(w - 2, max(4, int(round(ph * aspect / 2)) * 2))
    if source.width < pw or source.height < ph:
        source = fit_frame(source, max(pw, source.width), max(ph, source.height))
    sr = int(rng.integers(0, (source.height - ph) // 2 + 1)) * 2
    sc = int(rng.integers(0, (source.width - pw) // 2 + 1)) * 2
    patch_y = source.y[sr:sr + ph, sc:sc + pw]
    patch_u = source.u[sr // 2:(sr + ph) // 2, sc // 2:(sc + pw) // 2]
    patch_v = source.v[sr // 2:(sr + ph) // 2, sc // 2:(sc + pw) // 2]
    r0 = float(rng.integers(0, h - ph + 1))
    c0 = float(rng.integers(0, w - pw + 1))
    drift = rng.integers(-OBJECT_DRIFT, OBJECT_DRIFT + 1, size=2) if rng.random() < 0.5 else np.zeros(2, int)
    out = list(frames)
    for i in range(length):
        r = int(np.clip(r0 + drift[0] * i, 0, h - ph)) // 2 * 2
        c = int(np.clip(c0 + drift[1] * i, 0, w - pw)) // 2 * 2
        f = _copy(frames[start + i])
        f.y[r:r + ph, c:c + pw] = patch_y
        f.u[r // 2:r // 2 + ph // 2, c // 2:c // 2 + pw // 2] = patch_u
        f.v[r // 2:r // 2 + ph // 2, c // 2:c // 2 + pw // 2] = patch_v
        out[start + i] = f
    event = AnomalyEvent("object", start, length, (
        ("height", ph), ("width", pw), ("row", int(r0) // 2 * 2), ("col", int(c0) // 2 * 2),
        ("drift_rows", int(drift[0])), ("drift_cols", int(drift[1])),
        ("source_row", sr), ("source_col", sc), ("area_fraction", round(ph * pw / (h * w), 4))))
    return Inserted(tuple(out), _labels(n, start, start + length), event)


def insert_flash(frames: Sequence[Frame], seed: int) -> Inserted:
    """Brighten 1-2 consecutive frames strongly, both labelled.

    Half the seeds add 60..100 to every luma sample (clipped at 255, chroma kept); the other
    half blend the frame toward white (Y 255, U = V = 128) with weight 0.5..0.7.
    """
    n, _, _ = _check_clip(frames)
    rng = _rng("flash", seed)
    start, length = _place(rng, n, FLASH_FRAMES)
    out = list(frames)
    if rng.random() < 0.5:
        delta = int(rng.integers(FLASH_ADD[0], FLASH_ADD[1] + 1))
        params: tuple[tuple[str, int | float | str], ...] = (("mode", "add"), ("delta", delta))
        for t in range(start, start + length):
            f = frames[t]
            y = np.minimum(f.y.astype(np.int16) + delta, 255).astype(np.uint8)
            out[t] = Frame(y, f.u.copy(), f.v.copy())
    else:
        alpha = round(float(rng.uniform(*FLASH_BLEND)), 4)
        params = (("mode", "blend"), ("alpha", alpha))

        def toward(p: np.ndarray, target: float) -> np.ndarray:
            return np.clip(np.rint(p + alpha * (target - p.astype(np.float64))), 0, 255).astype(np.uint8)

        for t in range(start, start + length):
            f = frames[t]
            out[t] = Frame(toward(f.y, 255.0), toward(f.u, 128.0), toward(f.v, 128.0))
    return Inserted(tuple(out), _labels(n, start, start + length),
                    AnomalyEvent("flash", start, length, params))


def insert_frozen(frames: Sequence[Frame], seed: int) -> Inserted:
    """Replace a 4-8 frame segment by exact copies of its first frame; the copies (all but
    the segment's first frame) are labelled."""
    n, _, _ = _check_clip(frames)
    rng = _rng("frozen", seed)
    start, length = _place(rng, n, SEGMENT_FRAMES)
    out = list(frames)
    for t in range(start + 1, start + length):
        out[t] = _copy(frames[start])
    return Inserted(tuple(out), _labels(n, start + 1, start + length),
                    AnomalyEvent("frozen", start, length))


def insert_foreign(frames: Sequence[Frame], seed: int, other: Sequence[Frame]) -> Inserted:
    """Replace a 4-8 frame segment by consecutive frames of another clip `other` (from a
    random offset; scaled and cropped to this clip's size by :func:`fit_frame`), labelled."""
    n, h, w = _check_clip(frames)
    rng = _rng("foreign", seed)
    start, length = _place(rng, n, SEGMENT_FRAMES)
    if len(other) < length:
        raise ValueError(f"the other clip has {len(other)} frames, the segment needs {length}")
    offset = int(rng.integers(0, len(other) - length + 1))
    out = list(frames)
    for i in range(length):
        out[start + i] = fit_frame(other[offset + i], w, h)
    return Inserted(tuple(out), _labels(n, start, start + length),
                    AnomalyEvent("foreign", start, length, (("source_offset", offset),)))


def insert_anomaly(kind: str, frames: Sequence[Frame], seed: int, *, source: Frame | None = None,
                   other: Sequence[Frame] | None = None) -> Inserted:
    """Insert one event of `kind`: `source` (a picture) is needed by ``object``, `other`
    (another clip's frames) by ``foreign``. Raises ValueError on an unknown kind."""
    if kind == "object":
        if source is None:
            raise ValueError("an 'object' anomaly needs a source picture")
        return insert_object(frames, seed, source)
    if kind == "flash":
        return insert_flash(frames, seed)
    if kind == "frozen":
        return insert_frozen(frames, seed)
    if kind == "foreign":
        if other is None:
            raise ValueError("a 'foreign' anomaly needs another clip's frames")
        return insert_foreign(frames, seed, other)
    raise ValueError(f"unknown anomaly kind {kind!r} (known: {', '.join(ANOMALY_KINDS)})")


# ----------------------------------------------------------------------------- scoring


def frame_difference_scores(frames: Sequence[Frame]) -> np.ndarray:
    """The baseline detector: (n,) float64, score of frame t = mean absolute luma difference
    to frame t-1 (8-bit code values); frame 0 gets frame 1's score (0 for a 1-frame clip)."""
    n = len(frames)
    if n == 0:
        raise ValueError("no frames")
    scores = np.zeros(n, dtype=np.float64)
    for t in range(1, n):
        a, b = frames[t].y, frames[t - 1].y
        if a.shape != b.shape:
            raise ValueError(f"frame {t} is {a.shape[1]}x{a.shape[0]}, frame {t - 1} {b.shape[1]}x{b.shape[0]}")
        scores[t] = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()
    if n > 1:
        scores[0] = scores[1]
    return scores


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values` (1-D), tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse.reshape(-1)]


def roc_auc(scores: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[bool]) -> float:
    """Area under the ROC curve of `scores` (higher = more anomalous) for bool `labels`
    (True = anomalous): the probability that a random anomalous frame scores above a random
    normal one, ties counting one half (the Mann-Whitney U statistic over n1 * n0).

    Raises:
        ValueError: shapes differ, scores are not finite, or a class is empty.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels)
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("labels must be bool (or 0/1)")
        y = y.astype(bool)
    y = y.reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores for {y.size} labels")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError(f"AUC needs both classes: {n1} anomalous, {n0} normal")
    ranks = midranks(s)
    u = ranks[y].sum() - n1 * (n1 + 1) / 2.0
    return float(u / (n1 * n0))
