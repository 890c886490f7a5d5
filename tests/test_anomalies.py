"""mcodec.eval.anomalies: the inserted-anomaly generator, the frame-difference baseline and
ROC AUC. Small synthetic clips only, plus one short cut of a development clip."""

from __future__ import annotations

import numpy as np
import pytest

from mcodec.codec.frame import Frame, chroma_shape
from mcodec.eval import anomalies as an

from .conftest import read_frames, synthetic_frames, textured

W, H, N = 96, 64, 20


@pytest.fixture(scope="module")
def clip() -> list[Frame]:
    return synthetic_frames(W, H, N, seed=3)


@pytest.fixture(scope="module")
def photo() -> Frame:
    """A picture of a different size (odd, like the cbsd68 photos) as the object source."""
    y = textured(81, 121, seed=7)
    ch, cw = chroma_shape(81, 121)
    rng = np.random.default_rng(1)
    return Frame(y, rng.integers(0, 256, (ch, cw), dtype=np.uint8),
                 rng.integers(0, 256, (ch, cw), dtype=np.uint8))


@pytest.fixture(scope="module")
def other() -> list[Frame]:
    """Another clip, larger than `clip` (so it is reduced and cropped)."""
    return synthetic_frames(200, 150, 10, seed=11)


def insert(kind: str, clip, seed: int, photo, other) -> an.Inserted:
    return an.insert_anomaly(kind, clip, seed, source=photo, other=other)


def same(a: Frame, b: Frame) -> bool:
    return a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", an.ANOMALY_KINDS)
def test_the_same_seed_gives_the_same_clip(kind, clip, photo, other) -> None:
    a, b = insert(kind, clip, 5, photo, other), insert(kind, clip, 5, photo, other)
    assert a.event == b.event
    assert np.array_equal(a.labels, b.labels)
    assert all(same(x, y) for x, y in zip(a.frames, b.frames))
    events = {insert(kind, clip, s, photo, other).event for s in range(6)}
    assert len(events) > 1                              # the seed matters


@pytest.mark.parametrize("kind", an.ANOMALY_KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_labels_mark_exactly_the_modified_frames(kind, seed, clip, photo, other) -> None:
    ins = insert(kind, clip, seed, photo, other)
    frames, labels = ins                                # unpacks as (frames, labels)
    assert isinstance(frames, list) and len(frames) == N
    assert labels.dtype == bool and labels.shape == (N,)
    assert 0 < labels.sum() < N
    first = int(np.flatnonzero(labels)[0])
    assert first >= 2 and not labels[-2:].any()        # away from frame 0, normal frames after
    for t in range(N):
        assert (frames[t].width, frames[t].height) == (W, H)
        if not labels[t]:
            assert same(frames[t], clip[t]), f"unlabelled frame {t} was modified"
        elif kind != "frozen":
            assert not same(frames[t], clip[t]), f"labelled frame {t} is unchanged"
    lo, hi = (an.FLASH_FRAMES if kind == "flash" else an.SEGMENT_FRAMES)
    assert lo <= ins.event.length <= hi
    assert labels.sum() == ins.event.length - (kind == "frozen")


@pytest.mark.parametrize("seed", range(4))
def test_frozen_frames_repeat_the_segments_first_frame(seed, clip) -> None:
    frames, labels = an.insert_frozen(clip, seed)
    start = int(np.flatnonzero(labels)[0]) - 1
    assert not labels[start] and same(frames[start], clip[start])
    for t in np.flatnonzero(labels):
        assert same(frames[t], clip[start])


@pytest.mark.parametrize("seed", range(6))
def test_flash_frames_are_brighter(seed, clip) -> None:
    ins = an.insert_flash(clip, seed)
    for t in np.flatnonzero(ins.labels):
        assert ins.frames[t].y.mean() > clip[t].y.mean() + 25
        assert (ins.frames[t].y >= clip[t].y).all()
    assert {dict(an.insert_flash(clip, s).event.params)["mode"] for s in range(10)} == {"add", "blend"}


@pytest.mark.parametrize("seed", range(4))
def test_the_object_covers_3_to_8_percent_and_comes_from_the_source(seed, clip, photo) -> None:
    ins = an.insert_object(clip, seed, photo)
    p = dict(ins.event.params)
    assert 0.025 <= p["height"] * p["width"] / (W * H) <= 0.085
    t = ins.event.start
    changed = ins.frames[t].y != clip[t].y
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    assert rows[-1] - rows[0] < p["height"] and cols[-1] - cols[0] < p["width"]
    r, c, sr, sc = p["row"], p["col"], p["source_row"], p["source_col"]
    assert np.array_equal(ins.frames[t].y[r:r + p["height"], c:c + p["width"]],
                          photo.y[sr:sr + p["height"], sc:sc + p["width"]])


def test_foreign_frames_come_from_the_other_clip(clip, other) -> None:
    ins = an.insert_foreign(clip, 0, other)
    offset = dict(ins.event.params)["source_offset"]
    for i, t in enumerate(np.flatnonzero(ins.labels)):
        assert same(ins.frames[t], an.fit_frame(other[offset + i], W, H))


@pytest.mark.parametrize("size", [(200, 150), (64, 40), (97, 65), (W, H)])
def test_fit_frame_gives_the_target_size(size) -> None:
    src = synthetic_frames(*size, 1, seed=2)[0]
    for w, h in ((W, H), (95, 63)):
        f = an.fit_frame(src, w, h)
        assert (f.width, f.height) == (w, h) and f.u.shape == chroma_shape(h, w)
    assert an.fit_frame(src, *size) is src


def test_bad_requests_are_refused(clip, photo) -> None:
    with pytest.raises(ValueError, match="at least"):
        an.insert_flash(clip[:an.MIN_FRAMES - 1], 0)
    with pytest.raises(ValueError, match="unknown"):
        an.insert_anomaly("blur", clip, 0)
    with pytest.raises(ValueError, match="source"):
        an.insert_anomaly("object", clip, 0)
    with pytest.raises(ValueError, match="seed"):
        an.insert_frozen(clip, -1)
    assert an.insert_frozen(clip[:an.MIN_FRAMES], 0).labels.sum() >= 3   # shortest clip works


def test_roc_auc_on_hand_computed_cases() -> None:
    assert an.roc_auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert an.roc_auc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert an.roc_auc([1.0, 1.0, 1.0], [True, False, False]) == 0.5
    # pairs (pos, neg): (3,1) 1, (3,2) 1, (2,1) 1, (2,2) 0.5 -> 3.5 / 4
    assert an.roc_auc([1, 2, 2, 3], [0, 0, 1, 1]) == pytest.approx(3.5 / 4)
    # one positive at 0.5 among negatives 0.1, 0.5, 0.7: 1 + 0.5 + 0 over 3
    assert an.roc_auc(np.array([0.1, 0.5, 0.5, 0.7]), np.array([0, 1, 0, 0], bool)) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    s, y = rng.integers(0, 5, 40).astype(float), rng.random(40) < 0.3
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in s[y] for b in s[~y]])
    assert an.roc_auc(s, y) == pytest.approx(brute)


def test_roc_auc_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="both classes"):
        an.roc_auc([1, 2, 3], [False, False, False])
    with pytest.raises(ValueError, match="both classes"):
        an.roc_auc([1, 2, 3], [True, True, True])
    with pytest.raises(ValueError):
        an.roc_auc([1, 2], [True, False, True])
    with pytest.raises(ValueError):
        an.roc_auc([1, np.nan], [True, False])


def test_midranks_share_ties() -> None:
    assert an.midranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_frame_difference_baseline_on_a_tiny_clip() -> None:
    ch, cw = chroma_shape(4, 6)
    grey = np.full((ch, cw), 128, np.uint8)
    lumas = [np.full((4, 6), v, np.uint8) for v in (10, 10, 40, 30)]
    lumas[3][0, 0] = 200                                 # one pixel: |200 - 40| instead of 10
    frames = [Frame(y, grey, grey) for y in lumas]
    s = an.frame_difference_scores(frames)
    assert s.dtype == np.float64 and s.shape == (4,)
    assert s.tolist() == pytest.approx([0.0, 0.0, 30.0, (23 * 10 + 160) / 24])
    assert an.frame_difference_scores(frames[:1]).tolist() == [0.0]
    frames2 = [Frame(lumas[0], grey, grey), Frame(lumas[2], grey, grey)]
    assert an.frame_difference_scores(frames2).tolist() == [30.0, 30.0]   # frame 0 = frame 1
    with pytest.raises(ValueError):
        an.frame_difference_scores([])


def test_baseline_sees_a_flash_onset_and_misses_a_freeze() -> None:
    wide = textured(H, W + N, seed=4)                   # a smooth picture panning 1 px per frame
    ch, cw = chroma_shape(H, W)
    grey = np.full((ch, cw), 128, np.uint8)
    pan = [Frame(np.ascontiguousarray(wide[:, t:t + W]), grey, grey) for t in range(N)]
    for seed in range(4):
        flash = an.insert_flash(pan, seed)
        s = an.frame_difference_scores(flash.frames)
        onset = flash.event.start
        assert s[onset] > s[:onset].max() + 20          # the step into the flash
        end = onset + flash.event.length
        assert s[end] > s[:onset].max() + 20            # and out of it (a normal frame)
        frozen = an.insert_frozen(pan, seed)
        assert an.roc_auc(an.frame_difference_scores(frozen.frames), frozen.labels) == 0.0


def test_every_kind_on_a_development_clip(dev_cut, shared_data) -> None:
    cars = read_frames(dev_cut(12))
    other = read_frames(dev_cut(8, "ciscovt2people_320x192.mkv"))
    photos = sorted((shared_data / "images" / "train" / "cbsd68").glob("*.png"))
    if not photos:
        pytest.skip("no cbsd68 photos")
    photo = read_frames(photos[0])[0]
    for kind in an.ANOMALY_KINDS:
        frames, labels = an.insert_anomaly(kind, cars, 1, source=photo, other=other)
        assert len(frames) == 12 and 0 < labels.sum() < 12
        assert all(same(f, g) for f, g, lab in zip(frames, cars, labels) if not lab)
