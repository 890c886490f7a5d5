"""mcodec.eval.damage: the synthetic damage of the restore evaluation is deterministic, has
the sizes and frame ranges it promises, reaches restore intact (box specs, frame lists, mask
video), hides exactly what it says, and the temporal-copy baseline and the score are right."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mcodec.codec.fill import chroma_mask
from mcodec.codec.frame import Frame, chroma_shape
from mcodec.codec.video_io import open_video
from mcodec.eval import damage as dmg

from .conftest import read_frames, synthetic_frames, write_clip

SIZES = [(320, 240), (320, 192), (720, 576), (64, 48)]
LENGTHS = [9, 16, 32]
SEEDS = [0, 1, 7, 12345]
BOX_SPEC = re.compile(r"^(\d+),(\d+),(\d+),(\d+)@(\d+)(?:-(\d+))?$")
FRAME_LIST = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def _all(kind: str):
    for w, h in SIZES:
        for n in LENGTHS:
            for s in SEEDS:
                yield dmg.make_damage(kind, n, w, h, s)


def _flat_frames(width: int, height: int, n: int) -> list[Frame]:
    """Frame t: luma 10 t + 1 and chroma 100 + t everywhere (never 0)."""
    ch, cw = chroma_shape(height, width)
    return [Frame(np.full((height, width), 10 * t + 1, np.uint8), np.full((ch, cw), 100 + t, np.uint8),
                  np.full((ch, cw), 100 + t, np.uint8)) for t in range(n)]


def _parse_frames(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


# ----------------------------------------------------------------------------- generation


@pytest.mark.parametrize("kind", dmg.KINDS)
def test_the_same_seed_gives_the_same_damage_and_others_differ(kind: str) -> None:
    a = dmg.make_damage(kind, 32, 320, 240, 5)
    assert a == dmg.make_damage(kind, 32, 320, 240, 5)
    assert all(np.array_equal(a.hidden(t), dmg.make_damage(kind, 32, 320, 240, 5).hidden(t))
               for t in range(32))
    others = {dmg.make_damage(kind, 32, 320, 240, s) for s in range(6)}
    assert len(others) > 1


def test_boxes_are_5_to_20_percent_aligned_inside_and_apart() -> None:
    for d in _all("boxes"):
        assert d.regions and not d.dropped
        events: dict[tuple[int, int], list[dmg.Region]] = {}
        for r in d.regions:
            assert 0.05 <= r.area_fraction(d.width, d.height) <= 0.20
            assert all(v % 2 == 0 for v in (r.x, r.y, r.w, r.h))
            assert r.x >= 2 and r.y >= 2 and r.x + r.w <= d.width - 2 and r.y + r.h <= d.height - 2
            assert 0 <= r.first <= r.last < d.frames and 3 <= r.last - r.first + 1 <= 8
            if d.frames >= 5:
                assert r.first >= 1 and r.last <= d.frames - 2          # interior events
            events.setdefault((r.first, r.last), []).append(r)
        runs = sorted(events)
        assert all(a[1] < b[0] for a, b in zip(runs, runs[1:]))          # events do not overlap in time
        for boxes in events.values():
            assert 1 <= len(boxes) <= 2
            if len(boxes) == 2:
                a, b = boxes
                assert (a.x + a.w + 2 <= b.x or b.x + b.w + 2 <= a.x
                        or a.y + a.h + 2 <= b.y or b.y + b.h + 2 <= a.y)
        assert 1 <= len(runs) <= max(1, round(d.frames / 8))


def test_lost_rows_are_full_width_bands_of_8_to_32_rows_over_1_to_4_frames() -> None:
    for d in _all("rows"):
        assert d.regions and not d.dropped
        for r in d.regions:
            assert (r.x, r.w) == (0, d.width)
            assert min(8, d.height // 4) <= r.h <= 32 and r.h % 2 == 0 and r.y % 2 == 0
            assert 0 <= r.y and r.y + r.h <= d.height
            assert 0 <= r.first <= r.last < d.frames and 1 <= r.last - r.first + 1 <= 4
            m = d.hidden(r.first)
            assert m[r.y:r.y + r.h].all()


def test_dropped_frames_are_isolated_interior_and_about_one_in_six() -> None:
    for d in _all("drop"):
        assert d.dropped and not d.regions
        assert list(d.dropped) == sorted(set(d.dropped))
        assert d.dropped[0] >= 1 and d.dropped[-1] <= d.frames - 2
        assert all(b - a >= 2 for a, b in zip(d.dropped, d.dropped[1:]))
        assert abs(len(d.dropped) - d.frames / 6) <= 1.5
        for t in range(d.frames):
            assert d.hidden(t).all() == (t in d.dropped) and (d.hidden(t).any() == (t in d.dropped))


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown damage kind"):
        dmg.make_damage("smudge", 16, 64, 48)
    with pytest.raises(ValueError):
        dmg.make_damage("drop", 2, 64, 48)
    with pytest.raises(ValueError):
        dmg.make_damage("boxes", 2, 64, 48)
    with pytest.raises(ValueError):
        dmg.make_damage("boxes", 16, 64, 48).hidden(0, 48, 32)


# ----------------------------------------------------------------------------- what restore is given


def test_box_specs_and_frame_lists_parse_back_to_the_same_damage() -> None:
    for d in list(_all("boxes")) + list(_all("rows")):
        args = d.restore_args("mask.mkv") if d.kind == "rows" else d.restore_args()
        if d.kind == "rows":
            assert args.masks == ("mask.mkv",) and args.cli() == ["--mask", "mask.mkv"]
            continue
        parsed = []
        for spec in args.masks:
            m = BOX_SPEC.match(spec)
            assert m, spec
            x, y, w, h, first = (int(g) for g in m.groups()[:5])
            parsed.append(dmg.Region(x, y, w, h, first, int(m.group(6)) if m.group(6) else first))
        assert tuple(parsed) == d.regions
        assert args.drop_frames == ""
    for d in _all("drop"):
        args = d.restore_args()
        assert args.masks == () and FRAME_LIST.match(args.drop_frames)
        assert _parse_frames(args.drop_frames) == list(d.dropped)
        assert args.cli() == ["--drop-frames", args.drop_frames]
    assert dmg.frame_list_spec([12, 3, 10, 11, 7]) == "3,7,10-12"
    assert dmg.Region(1, 2, 3, 4, 5, 5).spec() == "1,2,3,4@5"
    with pytest.raises(ValueError, match="mask video"):
        dmg.make_damage("rows", 16, 64, 48).restore_args()


def test_restore_reads_the_specs_as_the_same_boxes() -> None:
    masks = pytest.importorskip("mcodec.apps.masks")
    d = dmg.make_damage("boxes", 32, 320, 240, 3)
    for r in d.regions:
        b = masks.parse_box(r.spec())
        assert (b.x, b.y, b.w, b.h, b.first, b.last) == (r.x, r.y, r.w, r.h, r.first, r.last)
    dd = dmg.make_damage("drop", 32, 320, 240, 3)
    assert sorted(masks.parse_frame_list(dd.restore_args().drop_frames)) == list(dd.dropped)


def test_the_mask_video_reads_back_to_the_hidden_masks(tmp_path: Path) -> None:
    d = dmg.make_damage("rows", 12, 64, 48, 2)
    path = tmp_path / "mask.mkv"
    assert dmg.write_mask_video(d, str(path), Fraction(25)) == 12
    with open_video(str(path)) as r:
        frames = list(r)
    assert len(frames) == 12
    for t, f in enumerate(frames):
        assert np.array_equal(f.y > 127, d.hidden(t))
        assert set(np.unique(f.y)) <= {0, 255}
    masks = pytest.importorskip("mcodec.apps.masks")
    with masks.DamageMask([str(path)]).open(64, 48) as m:     # as restore reads it
        for t in range(12):
            assert np.array_equal(m.hidden(t), d.hidden(t))


# ----------------------------------------------------------------------------- damaged input


@pytest.mark.parametrize("kind", dmg.KINDS)
def test_the_damaged_video_differs_from_the_clean_one_exactly_at_hidden_pixels(tmp_path: Path,
                                                                              kind: str) -> None:
    clean = [Frame(np.maximum(f.y, 1), np.maximum(f.u, 1), np.maximum(f.v, 1))
             for f in synthetic_frames(64, 48, 12, seed=4)]          # no zero sample anywhere
    src = write_clip(tmp_path / "clean.y4m", clean)
    d = dmg.make_damage(kind, 12, 64, 48, 9)
    for fill in dmg.FILLS:
        dst = tmp_path / f"damaged_{fill}.y4m"
        assert dmg.write_damaged_video(str(src), str(dst), d, fill=fill) == 12
        damaged = read_frames(dst)
        assert [f.tobytes() for f in damaged] == \
            [f.tobytes() for f in dmg.damaged_frames(clean, d, fill=fill)]
        for t, (a, b) in enumerate(zip(clean, damaged)):
            h = d.hidden(t)
            for pa, pb, m in zip(a.planes(), b.planes(), (h, chroma_mask(h), chroma_mask(h))):
                diff = pa != pb
                if fill == "green":
                    assert np.array_equal(diff, m)                    # exactly the hidden samples
                else:
                    assert not (diff & ~m).any()                      # noise may hit a clean value
                    assert diff[m].mean() > 0.95 if m.any() else True
    with pytest.raises(ValueError, match="frames"):
        dmg.write_damaged_video(str(src), str(tmp_path / "x.y4m"), dmg.make_damage(kind, 20, 64, 48))
    assert not (tmp_path / "x.y4m").exists()


# ----------------------------------------------------------------------------- baseline and score


def test_temporal_copy_takes_the_nearest_earlier_visible_value_else_the_nearest_later() -> None:
    w, h = 32, 24
    frames = _flat_frames(w, h, 8)
    d = dmg.Damage("boxes", w, h, 8, 0, regions=(dmg.Region(4, 4, 8, 6, 2, 4),      # inside: frame 1
                                                 dmg.Region(3, 13, 7, 5, 0, 1),      # from frame 0: frame 2
                                                 dmg.Region(6, 6, 4, 4, 3, 4)),      # nested in the first
                   dropped=(6,))
    damaged = list(dmg.damaged_frames(frames, d, fill="green"))
    out = dmg.temporal_copy(damaged, d)
    assert len(out) == 8
    for t in range(8):
        hid = d.hidden(t)
        assert np.array_equal(out[t].y[~hid], frames[t].y[~hid])            # visible untouched
    assert (out[2].y[4:10, 4:12] == frames[1].y[0, 0]).all()
    assert (out[4].y[4:10, 4:12] == frames[1].y[0, 0]).all()
    assert (out[0].y[13:18, 3:10] == frames[2].y[0, 0]).all()               # nearest later
    assert (out[1].y[13:18, 3:10] == frames[2].y[0, 0]).all()
    assert out[6].equals(frames[5])                                          # a drop repeats the previous
    hc = chroma_mask(d.hidden(0))                                            # odd box: chroma mask
    assert (out[0].u[hc] == frames[2].u[0, 0]).all()
    clean_tc = dmg.temporal_copy(frames, d)                                  # only visible samples read
    assert all(a.equals(b) for a, b in zip(out, clean_tc))


def test_temporal_copy_gives_grey_to_samples_never_visible() -> None:
    frames = _flat_frames(16, 16, 3)
    d = dmg.Damage("boxes", 16, 16, 3, 0, regions=(dmg.Region(0, 0, 4, 4, 0, 2),))
    out = dmg.temporal_copy(frames, d)
    assert (out[1].y[:4, :4] == 128).all() and (out[1].y[4:] == frames[1].y[4:]).all()


def test_hidden_error_pools_mse_over_the_hidden_samples_only() -> None:
    w, h = 16, 8
    clean = _flat_frames(w, h, 2)
    hid = np.zeros((h, w), bool)
    hid[2:4, 4:8] = True                                         # 8 luma px, 1 x 2 chroma samples
    out = Frame(clean[0].y.copy(), clean[0].u.copy(), clean[0].v.copy())
    out.y[hid] += 4
    out.y[~hid] = 0                                              # visible errors do not count
    out.u[1, 2:4] += 2
    e = dmg.hidden_error(clean[0], out, hid)
    assert e.count == (8, 2, 2) and e.sse == (8 * 16, 2 * 4, 0)
    both = e + dmg.hidden_error(clean[1], clean[1], hid)
    assert both.count == (16, 4, 4) and both.mse(0) == pytest.approx(8.0)
    assert both.psnr_y == pytest.approx(10 * np.log10(255 ** 2 / 8.0))
    assert both.psnr(2) == 100.0                                 # MSE 0: the cap
    assert both.psnr_yuv == pytest.approx((6 * both.psnr_y + both.psnr(1) + 100.0) / 8)
    assert np.isnan(dmg.HiddenError().psnr_y)
    assert dmg.visible_changes(clean[0], out, hid) == w * h - 8
