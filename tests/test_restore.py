"""mcodec restore: every mask form, visible pixels untouched, the rebuild beats a copy on real
motion, streaming and bad input (exit 2, one line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcodec.apps import masks as mk
from mcodec.apps.restore import restore, restore_frames
from mcodec.cli.main import main
from mcodec.codec.fill import chroma_mask
from mcodec.codec.frame import Frame

from .conftest import read_frames, write_clip


def _hidden_psnr(a: Frame, b: Frame, hidden: np.ndarray) -> float:
    d = a.y.astype(np.float64)[hidden] - b.y[hidden]
    return 10 * np.log10(255.0 ** 2 / max(float((d ** 2).mean()), 1e-9))


def _damaged(frames: list[Frame], hidden: list[np.ndarray]) -> list[Frame]:
    """Frames with hidden pixels overwritten by green-ish garbage (must never leak into the output)."""
    out = []
    for f, h in zip(frames, hidden):
        hc = chroma_mask(h)
        out.append(Frame(np.where(h, 0, f.y).astype(np.uint8), np.where(hc, 0, f.u).astype(np.uint8),
                         np.where(hc, 0, f.v).astype(np.uint8)))
    return out


def _assert_visible_untouched(out: list[Frame], src: list[Frame], hidden: list[np.ndarray]) -> None:
    assert len(out) == len(src)
    for o, s, h in zip(out, src, hidden):
        hc = chroma_mask(h)
        assert np.array_equal(o.y[~h], s.y[~h])
        assert np.array_equal(o.u[~hc], s.u[~hc]) and np.array_equal(o.v[~hc], s.v[~hc])


# ----------------------------------------------------------------------------- mask forms


def test_box_specs_parse_and_round_trip():
    assert mk.parse_box("10,20,30,40") == mk.Box(10, 20, 30, 40, 0, None)
    assert mk.parse_box("1,2,3,4@5") == mk.Box(1, 2, 3, 4, 5, 5)
    assert mk.parse_box("1,2,3,4@5-9") == mk.Box(1, 2, 3, 4, 5, 9)
    for spec in ("10,20,30,40", "1,2,3,4@5", "1,2,3,4@5-9"):
        assert mk.parse_box(spec).spec() == spec
    for bad in ("1,2,3", "1,2,0,4", "1,2,3,4@9-5", "a,b,c,d", "1,2,3,4@"):
        with pytest.raises(mk.MaskError):
            mk.parse_box(bad)
    assert not mk.is_box_spec("mask.png")


def test_frame_lists():
    assert mk.parse_frame_list("3,7,10-12") == {3, 7, 10, 11, 12}
    for bad in ("3,,4", "5-2", "x", "-1"):
        with pytest.raises(mk.MaskError):
            mk.parse_frame_list(bad)


def test_damage_mask_union_of_boxes_and_drops():
    with mk.DamageMask(["2,3,4,5@1-2", "0,0,2,2"], "3").open(16, 12) as dm:
        m0, m1, m2, m3 = (dm.hidden(i) for i in range(4))
    assert m0.sum() == 4 and m0[:2, :2].all()
    assert m1[3:8, 2:6].all() and m1.sum() == 4 + 20
    assert m2.sum() == 24 and m3.all()


def test_mask_video_and_image(tmp_path: Path):
    h, w = 32, 48
    masks = [np.zeros((h, w), np.uint8) for _ in range(3)]
    masks[1][4:12, 8:24] = 255
    masks[2][20:, :] = 255
    grey = np.full((h // 2, w // 2), 128, np.uint8)
    video = write_clip(tmp_path / "mask.mkv", [Frame(m, grey, grey) for m in masks])
    with mk.DamageMask([str(video)]).open(w, h) as dm:
        got = [dm.hidden(i) for i in range(3)]
        with pytest.raises(mk.MaskError, match="ends at frame 3"):
            dm.hidden(3)
    for g, m in zip(got, masks):
        assert np.array_equal(g, m > 127)
    image = write_clip(tmp_path / "mask_%05d.png", [Frame(masks[1], grey, grey)])
    with mk.DamageMask([str(image).replace("%05d", "00001")]).open(w, h) as dm:
        assert np.array_equal(dm.hidden(0), masks[1] > 127) and np.array_equal(dm.hidden(5), masks[1] > 127)


def test_mask_errors(tmp_path: Path):
    with pytest.raises(mk.MaskError, match="nothing to restore"):
        mk.DamageMask([], ())
    with pytest.raises(mk.MaskError, match="outside"):
        mk.DamageMask(["40,0,10,10"]).open(48, 32)
    with pytest.raises(mk.MaskError, match="not found"):
        mk.DamageMask([str(tmp_path / "nope.mkv")]).open(48, 32)
    with pytest.raises(mk.MaskError, match="more than one"):
        mk.DamageMask(["a.mkv", "b.mkv"])


# ----------------------------------------------------------------------------- restoring


@pytest.fixture(scope="module")
def cars16(dev_clip, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Frame]]:
    from mcodec.codec.video_io import open_video

    with open_video(str(dev_clip("cars_320x240.mkv")), max_frames=16) as r:
        frames = list(r)
    return write_clip(tmp_path_factory.mktemp("cars") / "cars16.y4m", frames), frames


def test_restore_box_beats_temporal_copy_and_keeps_visible_pixels(cars16, tmp_path: Path):
    clean_path, clean = cars16
    spec = "96,80,96,80@5-9"                                  # 10 % of the frame over 5 frames
    with mk.DamageMask([spec]).open(320, 240) as dm:
        hidden = [dm.hidden(i) for i in range(len(clean))]
    damaged = _damaged(clean, hidden)
    src = write_clip(tmp_path / "damaged.y4m", damaged)
    summary = restore(str(src), str(tmp_path / "out.y4m"), masks=[spec])
    assert (summary.frames, summary.restored_frames, summary.hidden_pixels) == (16, 5, 5 * 96 * 80)
    out = read_frames(tmp_path / "out.y4m")
    _assert_visible_untouched(out, damaged, hidden)
    for t in range(5, 10):
        ours = _hidden_psnr(out[t], clean[t], hidden[t])
        copy = _hidden_psnr(clean[4], clean[t], hidden[t])      # the last frame that showed the box
        assert ours > copy + 3.0, (t, ours, copy)


def test_restore_dropped_frames_and_mask_video(cars16, tmp_path: Path):
    _, clean = cars16
    h, w = 240, 320
    rows = [np.zeros((h, w), bool) for _ in clean]
    rows[3][64:96, :] = True                                   # a lost slice
    rows[11][200:, :] = True
    grey = np.full((h // 2, w // 2), 128, np.uint8)
    mask_video = write_clip(tmp_path / "rows.mkv", [Frame(np.where(r, 255, 0).astype(np.uint8), grey, grey)
                                                    for r in rows])
    hidden = [r | (i in (7,)) for i, r in enumerate(rows)]
    damaged = _damaged(clean, hidden)
    src = write_clip(tmp_path / "damaged.mkv", damaged)
    assert main(["-q", "restore", str(src), str(tmp_path / "out.mkv"), "--mask", str(mask_video),
                 "--drop-frames", "7"]) == 0
    out = read_frames(tmp_path / "out.mkv")
    _assert_visible_untouched(out, damaged, hidden)
    for t in (3, 7, 11):
        ours = _hidden_psnr(out[t], clean[t], hidden[t])
        repeat = _hidden_psnr(clean[t - 1], clean[t], hidden[t])
        assert ours > repeat + 3.0, (t, ours, repeat)


def test_restore_writes_png_sequences(cars16, tmp_path: Path):
    clip, clean = cars16
    assert main(["-q", "restore", str(clip), str(tmp_path / "f_%03d.png"), "--mask", "0,0,32,32@1",
                 "--frames", "3"]) == 0
    assert sorted(p.name for p in tmp_path.glob("f_*.png")) == ["f_001.png", "f_002.png", "f_003.png"]


def test_restore_without_any_reference_fills_spatially():
    rng = np.random.default_rng(0)
    base = np.clip(np.add.outer(np.arange(48) * 3, np.arange(64) * 2) + rng.integers(0, 3, (48, 64)), 0, 255)
    f = Frame(base.astype(np.uint8), np.full((24, 32), 100, np.uint8), np.full((24, 32), 150, np.uint8))
    hidden = np.zeros((48, 64), bool)
    hidden[16:32, 20:40] = True
    (out, h), = restore_frames([f], lambda i: hidden)
    assert np.array_equal(out.y[~hidden], f.y[~hidden])
    assert _hidden_psnr(out, f, hidden) > 30                  # a smooth ramp is rebuilt from its ring


def test_restore_streams_through_pipes(cars16, tmp_path: Path):
    clean_path, _ = cars16
    raw = clean_path.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "mcodec.cli.main", "-q", "restore", "-", "-",
                           "--mask", "0,0,64,32@2-3"], input=raw, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    (tmp_path / "piped.y4m").write_bytes(proc.stdout)
    out = read_frames(tmp_path / "piped.y4m")
    clean = read_frames(clean_path)
    assert len(out) == len(clean) and out[0].equals(clean[0]) and not out[2].equals(clean[2])


@pytest.mark.parametrize("argv, message", [
    (["restore", "{clip}", "{out}"], "nothing to restore"),
    (["restore", "{clip}", "{out}", "--mask", "0,0,999,10"], "outside"),
    (["restore", "{clip}", "{out}", "--mask", "{missing}"], "mask not found"),
    (["restore", "{missing}", "{out}", "--mask", "0,0,4,4"], "input not found"),
    (["restore", "{clip}", "{out}", "--drop-frames", "3-1"], "bad frame range"),
    (["restore", "{clip}", "{out}.txt", "--mask", "0,0,4,4"], "unsupported output"),
    (["restore", "{clip}", "{clip}", "--mask", "0,0,4,4"], "is the input"),
])
def test_restore_user_errors_exit_2_with_one_line(cars16, tmp_path: Path, capsys, argv, message):
    clip, _ = cars16
    fill_in = {"clip": str(clip), "out": str(tmp_path / "o.y4m"), "missing": str(tmp_path / "missing.mkv")}
    assert main(["-q"] + [a.format(**fill_in) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "o.y4m").exists()


def test_restore_refuses_an_existing_output_and_leaves_the_input(cars16, tmp_path: Path):
    clip, _ = cars16
    out = tmp_path / "o.y4m"
    out.write_bytes(b"keep")
    before = clip.read_bytes()
    assert main(["-q", "restore", str(clip), str(out), "--mask", "0,0,4,4"]) == 2
    assert out.read_bytes() == b"keep" and clip.read_bytes() == before


def test_restore_reads_a_bounded_window_ahead():
    """Streaming: the first restored frame comes out after at most LOOKAHEAD + 1 input frames."""
    from mcodec.apps.restore import LOOKAHEAD

    from .conftest import synthetic_frames

    frames = synthetic_frames(64, 48, 4)
    consumed = 0

    def endless():
        nonlocal consumed
        while True:
            consumed += 1
            yield frames[consumed % 4]

    hidden = np.zeros((48, 64), bool)
    hidden[8:24, 8:24] = True
    gen = restore_frames(endless(), lambda i: hidden if i == 0 else np.zeros_like(hidden))
    next(gen)
    assert consumed <= LOOKAHEAD + 2
    for _ in range(40):
        next(gen)
    assert consumed <= 41 + LOOKAHEAD + 1


def test_top_level_python_api(cars16, tmp_path: Path):
    import mcodec

    clip, clean = cars16
    summary = mcodec.restore(str(clip), str(tmp_path / "o.mkv"), masks=["0,0,32,16@1"], drop_frames="",
                             max_frames=3)
    assert (summary.frames, summary.restored_frames) == (3, 1)
    assert "restored 1 of 3 frames" in summary.line()
