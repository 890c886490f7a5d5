"""mcodec anomaly: scores from the masked-patch predictors, the report files and their format,
an inserted flash and a frozen segment found on a real clip, bad input (exit 2, one line)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mcodec.apps import anomaly
from mcodec.cli.main import main
from mcodec.codec.frame import Frame

from .conftest import write_clip


@pytest.fixture(scope="module")
def cars16(dev_clip) -> list[Frame]:
    from mcodec.codec.video_io import open_video

    with open_video(str(dev_clip("cars_320x240.mkv")), max_frames=16) as r:
        return list(r)


def _flash(f: Frame) -> Frame:
    return Frame(np.clip(f.y.astype(np.int16) + 80, 0, 255).astype(np.uint8), f.u, f.v)


def test_inserted_flash_is_the_most_anomalous_frame_and_its_csv(cars16, tmp_path: Path, capsys):
    frames = list(cars16)
    frames[9] = _flash(frames[9])
    clip = write_clip(tmp_path / "flash.mkv", frames)
    report = tmp_path / "report"
    assert main(["-q", "anomaly", str(clip), "--report", str(report), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "frame     9" in out.splitlines()[1]                 # listed first
    with open(report / "scores.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["frame", "score"]
    assert [int(r[0]) for r in rows[1:]] == list(range(16))
    scores = np.array([float(r[1]) for r in rows[1:]])
    assert int(np.argmax(scores)) == 9
    assert scores[9] > 2 * np.delete(scores, 9).max()
    patches = np.load(report / "patch_scores.npy")
    assert patches.shape == (16, 15, 20) and patches.dtype == np.float32
    assert patches[9].mean() > patches[np.r_[0:8, 11:16]].mean(axis=(1, 2)).max()
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert "scores.png" in pngs and "heatmap_00009.png" in pngs and len(pngs) == 4
    assert (report / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_frozen_segment_scores_above_every_normal_frame(cars16):
    frames = list(cars16)
    for t in range(6, 11):
        frames[t] = frames[5]
    scores, patches, short, _ = anomaly.score_frames(frames)
    assert (short[6:11] == 0).all()                          # exact repeats are predicted exactly
    normal = np.r_[0:5, 11:16]                                # frame 5 is the original, not a repeat
    assert scores[6:11].min() > scores[normal].max()


def test_scores_from_errors_is_two_sided_and_checks_shapes():
    rng = np.random.default_rng(0)
    e = rng.uniform(20, 30, (12, 3, 4)).astype(np.float32)
    hot, cold = e.copy(), e.copy()
    hot[5, 1, 1] = 5000.0                                    # one patch predicted badly
    cold[5] = 0.0                                            # a frame predicted perfectly
    for short, long, comps in ((e, hot, anomaly.DEFAULT_COMPONENTS), (cold, e, anomaly.DEFAULT_COMPONENTS),
                               (hot, e, ("new_short",)), (cold, e, ("frozen",))):
        scores, patch = anomaly.scores_from_errors(short, long, comps)
        assert int(np.argmax(scores)) == 5 and scores.shape == (12,) and patch.shape == (12, 3, 4)
    assert int(np.argmax(anomaly.scores_from_errors(e, hot)[1][5].ravel())) == 5
    with pytest.raises(ValueError):
        anomaly.scores_from_errors(e, e, ("nope",))
    with pytest.raises(ValueError):
        anomaly.scores_from_errors(e, e[:3])


def test_short_clips_and_a_single_frame(cars16):
    for n in (1, 2, 5):
        scores, patches, short, long = anomaly.score_frames(cars16[:n])
        assert scores.shape == (n,) and np.isfinite(scores).all() and patches.shape == (n, 15, 20)


def test_report_refuses_to_overwrite_without_y(cars16, tmp_path: Path, capsys):
    clip = write_clip(tmp_path / "c.y4m", cars16[:3])
    assert main(["-q", "anomaly", str(clip), "--report", str(tmp_path / "r")]) == 0
    assert main(["-q", "anomaly", str(clip), "--report", str(tmp_path / "r")]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["-q", "anomaly", str(clip), "--report", str(tmp_path / "r"), "-y"]) == 0


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mkv", "input not found"),
    (lambda d: (d / "junk.mkv").write_bytes(b"not a video" * 10) and d / "junk.mkv", ""),
])
def test_anomaly_bad_input_exit_2_one_line(tmp_path: Path, capsys, make, message):
    path = make(tmp_path)
    assert main(["-q", "anomaly", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mcodec: error:") and message in err[0]
