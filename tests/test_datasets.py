"""mcodec.train.datasets: streaming clip samples from folder trees, deterministic by index."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from mcodec.codec import ffmpeg as ff
from mcodec.codec.frame import Frame
from mcodec.train.data import rgb_to_yuv420
from mcodec.train.config import SourceSpec
from mcodec.train.datasets import VIRTUAL_LENGTH, ClipDataset, probe_video, worker_init

from .conftest import textured, write_clip

W, H, N = 96, 64, 20          # the ramp clip: size and frame count
CROP, K = 32, 3


def ramp_frames(n: int = N, width: int = W, height: int = H, luma_base: int = 16) -> list[Frame]:
    """Frame t: Y[r, c] = base + c (tells the crop's left), U[i, j] = 16 + 2 i (its top),
    V = 16 + 7 t (the frame number)."""
    y = np.tile((luma_base + np.arange(width)).astype(np.uint8), (height, 1))
    u = np.repeat((16 + 2 * np.arange(height // 2)).astype(np.uint8)[:, None], width // 2, axis=1)
    return [Frame(y.copy(), u.copy(), np.full((height // 2, width // 2), 16 + 7 * t, np.uint8))
            for t in range(n)]


def h264_from(src: Path, dest: Path) -> Path:
    """A lossless (qp 0) raw H.264 elementary stream of `src`."""
    ff.run_ffmpeg(ff.base_args() + ["-y", "-i", ff.input_url(str(src)), "-c:v", "libx264",
                                    "-qp", "0", "-preset", "ultrafast", "-f", "h264",
                                    ff.output_url(str(dest))], "making a .264 test stream")
    return dest


@pytest.fixture(scope="module")
def ramp(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The ramp clip as y4m, mkv (FFV1) and a raw .264 stream, each in its own folder."""
    root = tmp_path_factory.mktemp("ramp")
    out = {}
    for ext in ("y4m", "mkv"):
        (root / ext).mkdir()
        out[ext] = write_clip(root / ext / f"ramp.{ext}", ramp_frames(), Fraction(25))
    (root / "264").mkdir()
    out["264"] = h264_from(out["y4m"], root / "264" / "ramp.264")
    return out


def planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, u, v) of one (6, h, w) s2d frame."""
    h, w = frame.shape[1:]
    y = np.empty((2 * h, 2 * w), np.uint8)
    y[0::2, 0::2], y[0::2, 1::2], y[1::2, 0::2], y[1::2, 1::2] = frame[:4]
    return y, frame[4], frame[5]


def decode_ramp(item: np.ndarray) -> tuple[int, int, int, bool]:
    """(start frame, top, left, mirrored) of a ramp-clip sample; asserts its structure."""
    lefts, tops, frames, mirrors = set(), set(), [], set()
    for fr in item:
        y, u, v = planes(fr)
        assert (y == y[0]).all() and (u == u[:, :1]).all() and (v == v.flat[0]).all()
        row = y[0].astype(int)
        mirrored = bool(row[0] > row[-1])
        if mirrored:
            row = row[::-1]
        assert (np.diff(row) == 1).all()                 # a contiguous window of the ramp
        lefts.add(int(row[0]) - 16)
        assert (np.diff(u[:, 0].astype(int)) == 2).all()
        tops.add(int(u[0, 0]) - 16)
        assert (int(v.flat[0]) - 16) % 7 == 0
        frames.append((int(v.flat[0]) - 16) // 7)
        mirrors.add(mirrored)
    assert len(lefts) == len(tops) == len(mirrors) == 1, "one crop and one flip for all frames"
    assert frames == list(range(frames[0], frames[0] + len(item))), f"not consecutive: {frames}"
    left, top = lefts.pop(), tops.pop()
    assert left % 2 == 0 and top % 2 == 0 and 0 <= left <= W - CROP and 0 <= top <= H - CROP
    return frames[0], top, left, mirrors.pop()


# ----------------------------------------------------------------------------- video


def test_shape_dtype_and_virtual_length(ramp) -> None:
    ds = ClipDataset([SourceSpec("video", str(ramp["y4m"].parent))], frames=K, crop=CROP, seed=0)
    item = ds[5]
    assert item.shape == (K, 6, CROP // 2, CROP // 2) and item.dtype == np.uint8
    assert len(ds) == VIRTUAL_LENGTH >= 2 ** 40
    with pytest.raises(IndexError):
        ds[-1]


@pytest.mark.parametrize("ext", ["y4m", "mkv", "264"])
def test_frames_are_consecutive_in_one_crop_with_random_start_offset_and_flip(ramp, ext) -> None:
    ds = ClipDataset([SourceSpec("video", str(ramp[ext]))], frames=K, crop=CROP, seed=1)
    got = [decode_ramp(ds[i]) for i in range(12)]
    starts, tops, lefts, flips = zip(*got)
    assert max(starts) <= N - K and len(set(starts)) > 3
    assert len(set(tops)) > 1 and len(set(lefts)) > 2
    assert set(flips) == {True, False}


def test_probe_counts_frames_of_raw_h264_and_containers(ramp) -> None:
    for ext in ("y4m", "mkv", "264"):
        assert probe_video(str(ramp[ext])) == (N, W, H), ext


def test_flip_false_gives_the_same_crops_unmirrored(ramp) -> None:
    src = [SourceSpec("video", str(ramp["y4m"]))]
    on = ClipDataset(src, frames=K, crop=CROP, seed=2, flip=True)
    off = ClipDataset(src, frames=K, crop=CROP, seed=2, flip=False)
    mirrored = 0
    for i in range(10):
        a, b = on[i], off[i]
        assert not decode_ramp(b)[3]
        if decode_ramp(a)[3]:
            mirrored += 1
            # mirroring the s2d layout: columns reverse, the luma phases swap
            np.testing.assert_array_equal(a, b[:, [1, 0, 3, 2, 4, 5], :, ::-1])
        else:
            np.testing.assert_array_equal(a, b)
    assert 0 < mirrored < 10


def test_real_h264_training_stream(shared_data: Path) -> None:
    path = shared_data / "video_train" / "foreman_352x288.264"
    assert path.is_file(), path
    assert probe_video(str(path)) == (300, 352, 288)
    ds = ClipDataset([SourceSpec("video", str(path))], frames=2, crop=64, seed=0)
    a, b = ds[0], ds[1]
    assert a.shape == (2, 6, 32, 32) and a.dtype == np.uint8
    assert not np.array_equal(a, b)
    assert 0 < np.abs(a[0].astype(int) - a[1].astype(int)).mean() < 40  # consecutive: similar
    np.testing.assert_array_equal(ds[0], a)


# ----------------------------------------------------------------------------- determinism


def test_same_index_same_array_any_instance_and_different_indices_differ(ramp) -> None:
    src = [SourceSpec("video", str(ramp["mkv"].parent)), SourceSpec("video", str(ramp["y4m"]))]
    ds = ClipDataset(src, frames=K, crop=CROP, seed=3)
    first = [ds[i] for i in range(10)]
    again = ClipDataset(src, frames=K, crop=CROP, seed=3)
    for i in (7, 0, 3):                          # another order, another instance
        np.testing.assert_array_equal(again[i], first[i])
        np.testing.assert_array_equal(ds[i], first[i])
    keys = {a.tobytes() for a in first}
    assert len(keys) == 10
    other = ClipDataset(src, frames=K, crop=CROP, seed=4)
    assert sum(np.array_equal(other[i], first[i]) for i in range(10)) < 3


def test_dataloader_with_workers_gives_the_same_batches(ramp, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(np.stack([textured(160, 200, s) for s in range(3)], axis=-1)).save(photo)
    ds = ClipDataset([SourceSpec("video", str(ramp["264"])), SourceSpec("synthetic", str(tmp_path))],
                     frames=2, crop=CROP, seed=5)

    def batches(workers: int) -> list[np.ndarray]:
        loader = torch.utils.data.DataLoader(
            ds, batch_size=4, sampler=range(3, 11), num_workers=workers,
            worker_init_fn=worker_init if workers else None)
        return [b.numpy() for b in loader]

    par, seq = batches(2), batches(0)
    assert len(par) == len(seq) == 2 and par[0].shape == (4, 2, 6, CROP // 2, CROP // 2)
    for a, b in zip(par, seq):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(seq[0][1], ds[4])           # index = start + position
    assert {ds.draw_source(i) for i in range(3, 11)} == {0, 1}  # both kinds were in it


# ----------------------------------------------------------------------------- weights


def test_sources_are_mixed_by_weight(ramp, tmp_path: Path) -> None:
    flat = write_clip(tmp_path / "flat.y4m", ramp_frames(n=4, luma_base=150), Fraction(25))
    ds = ClipDataset([SourceSpec("video", str(ramp["y4m"]), 3.0), SourceSpec("video", str(flat), 1.0)],
                     frames=1, crop=CROP, seed=6)
    drawn = [ds.draw_source(i) for i in range(400)]
    assert 260 <= drawn.count(0) <= 340, drawn.count(0)     # 300 expected, sd 8.7
    for i in range(12):                                     # the item comes from that source
        luma0 = int(planes(ds[i][0])[0].min())
        assert (luma0 >= 150) == (drawn[i] == 1), (i, luma0)


@pytest.mark.parametrize("weight", [0.0, -1.0, math.nan, math.inf])
def test_weights_must_be_positive_and_finite(ramp, weight: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        SourceSpec("video", str(ramp["y4m"]), weight)


# ----------------------------------------------------------------------------- bad input


def test_corrupt_file_is_skipped_with_one_warning(ramp, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    write_clip(folder / "a.y4m", ramp_frames(), Fraction(25))
    write_clip(folder / "sub" / "b.mkv", ramp_frames(), Fraction(25))
    bad = folder / "sub" / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 6000, dtype=np.uint8).tobytes())
    msgs: list[str] = []
    ds = ClipDataset([SourceSpec("video", str(folder))], frames=K, crop=CROP, seed=7, warn=msgs.append)
    assert len(ds.files(0)) == 3 and msgs == []             # nothing opened at construction
    for i in range(25):
        decode_ramp(ds[i])
    assert len(msgs) == 1 and "broken.mp4" in msgs[0], msgs
    assert str(bad) in ds._bad


def test_too_small_and_too_short_files_are_skipped(tmp_path: Path) -> None:
    write_clip(tmp_path / "good.y4m", ramp_frames(), Fraction(25))
    write_clip(tmp_path / "short.y4m", ramp_frames(n=K - 1), Fraction(25))
    write_clip(tmp_path / "small.y4m", ramp_frames(width=CROP - 2, height=CROP + 8), Fraction(25))
    msgs: list[str] = []
    ds = ClipDataset([SourceSpec("video", str(tmp_path))], frames=K, crop=CROP, seed=8, warn=msgs.append)
    for i in range(25):
        decode_ramp(ds[i])
    assert len(msgs) == 2, msgs
    assert any("short.y4m" in m and "fewer than" in m for m in msgs), msgs
    assert any("small.y4m" in m and "too small" in m for m in msgs), msgs


def test_source_of_only_bad_files_raises_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "allbad"
    folder.mkdir()
    for name in ("x.mp4", "y.264"):
        (folder / name).write_bytes(b"not a video at all" * 50)
    msgs: list[str] = []
    ds = ClipDataset([SourceSpec("video", str(folder))], frames=1, crop=CROP, seed=0, warn=msgs.append)
    with pytest.raises(ValueError, match="allbad"):
        ds[0]
    assert len(msgs) == 2


def test_empty_and_missing_sources_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "deeper").mkdir(parents=True)
    (empty / "notes.txt").write_text("no video here")
    for spec in (SourceSpec("video", str(empty)), SourceSpec("images", str(empty)),
                 SourceSpec("video", str(tmp_path / "missing"))):
        with pytest.raises(ValueError, match=str(Path(spec.path).name)):
            ClipDataset([spec], frames=1, crop=CROP, seed=0)
    with pytest.raises(ValueError, match="kind"):
        SourceSpec("audio", str(empty))
    with pytest.raises(ValueError):
        ClipDataset([], frames=1, crop=CROP, seed=0)
    with pytest.raises(ValueError, match="crop"):
        ClipDataset([SourceSpec("video", str(empty))], frames=1, crop=40, seed=0)


@pytest.mark.parametrize("part", ["clips", "kodak"])
def test_evaluation_data_is_refused(tmp_path: Path, part: str) -> None:
    folder = tmp_path / part
    folder.mkdir()
    write_clip(folder / "a.y4m", ramp_frames(n=3), Fraction(25))
    with pytest.raises(ValueError, match="evaluation"):
        ClipDataset([SourceSpec("video", str(folder))], frames=1, crop=CROP, seed=0)
    with pytest.raises(ValueError, match="evaluation"):
        ClipDataset([SourceSpec("video", str(folder / "a.y4m"))], frames=1, crop=CROP, seed=0)
    # a link from a training folder into evaluation data is refused too
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "b.y4m").symlink_to(folder / "a.y4m")
    with pytest.raises(ValueError, match="evaluation"):
        ClipDataset([SourceSpec("video", str(tmp_path / "train"))], frames=1, crop=CROP, seed=0)


# ----------------------------------------------------------------------------- stills


def test_images_source_needs_single_frames(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="single frames"):
        ClipDataset([SourceSpec("images", str(tmp_path))], frames=2, crop=CROP, seed=0)


def test_images_are_cropped_and_big_photos_downscaled(tmp_path: Path) -> None:
    from PIL import Image

    rgb = np.stack([textured(80, 120, s) for s in range(3)], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "small.png")
    ramp = np.tile((np.arange(1040) * 200 // 1040).astype(np.uint8), (1040, 1))  # 0.192 / px
    Image.fromarray(np.stack([ramp] * 3, axis=-1)).save(tmp_path / "big.jpg", quality=95)
    (tmp_path / "junk.webp").write_bytes(b"\x00" * 300)
    msgs: list[str] = []
    ds = ClipDataset([SourceSpec("images", str(tmp_path))], frames=1, crop=CROP, seed=9, warn=msgs.append)
    full_y = rgb_to_yuv420(rgb)[0]
    seen = set()
    for i in range(20):
        item = ds[i]
        assert item.shape == (1, 6, CROP // 2, CROP // 2)
        y = planes(item[0])[0]
        if y.std() > 10:                 # the textured PNG: an even-aligned window of it
            hits = [(t, l) for t in range(0, 80 - CROP + 1, 2) for l in range(0, 120 - CROP + 1, 2)
                    if np.array_equal(full_y[t:t + CROP, l:l + CROP], y)
                    or np.array_equal(full_y[t:t + CROP, l:l + CROP][:, ::-1], y)]
            assert len(hits) == 1
            seen.add("small")
        else:                            # the ramp photo: slope tells the downscale factor
            slope = abs(np.polyfit(np.arange(CROP), y.mean(axis=0), 1)[0]) / (0.192 * 219 / 255)
            assert min(abs(slope - f) for f in (2, 3, 4)) < 0.25, slope
            seen.add(round(slope))
    assert "small" in seen and len(seen - {"small"}) >= 2      # several factors drawn
    assert len(msgs) == 1 and "junk.webp" in msgs[0]


def best_shift(a: np.ndarray, b: np.ndarray, r: int = 12) -> tuple[tuple[int, int], float]:
    """The integer (dy, dx) that best maps luma `a` onto `b` (mean abs error on the overlap)."""
    n = a.shape[0]
    errs = {(dy, dx): float(np.abs(a[max(dy, 0):n + min(dy, 0), max(dx, 0):n + min(dx, 0)]
                                   - b[max(-dy, 0):n + min(-dy, 0), max(-dx, 0):n + min(-dx, 0)]).mean())
            for dy in range(-r, r + 1) for dx in range(-r, r + 1)}
    best = min(errs, key=errs.get)
    return best, errs[best]


def test_synthetic_clips_move_smoothly_and_are_deterministic(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.stack([textured(180, 220, s) for s in range(3)], axis=-1)).save(tmp_path / "p.png")
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "tiny.png")
    msgs: list[str] = []
    ds = ClipDataset([SourceSpec("synthetic", str(tmp_path))], frames=4, crop=CROP, seed=10,
                     warn=msgs.append)
    moved = 0
    for i in range(6):
        a = ds[i]
        assert a.shape == (4, 6, CROP // 2, CROP // 2)
        lumas = [planes(f)[0].astype(float) for f in a]
        unrelated = best_shift(lumas[0], planes(ds[i + 100][0])[0].astype(float))[1]
        for k in range(3):   # each frame is its predecessor moved by a few pixels
            shift, err = best_shift(lumas[k], lumas[k + 1])
            assert err < 0.4 * unrelated, (i, k, err, unrelated)
            moved += shift != (0, 0)
        np.testing.assert_array_equal(ds[i], a)
    assert moved >= 12
    assert len(msgs) == 1 and "tiny.png" in msgs[0]


def test_worker_init_sets_one_thread() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        worker_init(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
