"""The evaluation of `mcodec restore` (issue 17): synthetic damage on the development clips,
restored by mcodec and by the baselines, scored over the missing pixels only.

    python benchmarks/restore_eval.py [--clips cars_320x240,...] [--frames 32]
        [--kinds boxes,rows,drop] [--out bench_out/restore] [--seed 0] [--fill noise] [--keep]

For each clip (first `--frames` frames, cut to y4m as the bench cuts) and damage kind
(`mcodec.eval.damage`: boxes, lost rows, dropped frames; seeded by --seed and the clip name):

* mcodec: `mcodec.apps.restore.restore` on the damaged clip (boxes as box specs, rows as a
  mask video, drops as --drop-frames); its visible pixels are checked untouched;
* temporal copy (`damage.temporal_copy`): each missing sample from the nearest earlier frame
  where it is visible (else the nearest later one); a dropped frame repeats the previous one;
* ffmpeg delogo (boxes): one `delogo` per box, `enable='between(n,first,last)'`, on the
  damaged clip. delogo rewrites exactly its rectangle, interpolating from the one-pixel ring
  around it, and needs 1 <= x, x+w <= W-1 (same for y): a box closer to the edge is clipped to
  that and its uncovered pixels keep the damaged fill (counted in results.json as
  `uncovered`; the generator's 2-pixel margin and even alignment mean it does not happen,
  and the chroma rectangle then matches the chroma mask exactly). Not applicable to lost
  rows: a full-width band has no left/right ring to interpolate from;
* ffmpeg minterpolate (drops): the dropped frames are removed from the CLEAN clip with
  `select` (which keeps the original timestamps) and `minterpolate=fps=<clip fps>:mi_mode=mci:
  mc_mode=aobmc:me_mode=bidir:vsbmc=1` rebuilds frames at the original timestamps. On its own
  it emits no frame for the last input timestamp, nor for a dropped second-to-last frame (the
  output ends one or two frames early), so `tpad=stop=2:stop_mode=clone` repeats the last
  kept (= last, never dropped) frame twice after the end and the first N output frames are
  kept; a dropped frame is still interpolated between its two real neighbours. Every kept
  frame of the output is checked identical to the input (`misaligned` counts those that
  are not; 0 on all six clips).

Score (`damage.hidden_error`, the same code for every method): squared error against the
clean clip over the missing luma pixels (PSNR-Y) and over their chroma samples, pooled per
clip and kind as MSE over all missing samples, then PSNR (dB); PSNR-YUV is the 6:1:1
weighting of the three pooled PSNRs. The summary gives the mean over clips per kind and
method, the mean over clips of the best baseline of each clip, and mcodec's margin over it.
Writes results.json and report.md to --out and prints the report; the videos (clean cut,
damaged input, each method's output, as .y4m under --out/<clip>/<kind>/) are removed after
scoring unless --keep (the rows mask videos, mask.mkv, stay).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
import zlib
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcodec.atomic import atomic_write  # noqa: E402
from mcodec.codec import ffmpeg as ff  # noqa: E402
from mcodec.codec.frame import Frame  # noqa: E402
from mcodec.codec.video_io import open_video  # noqa: E402
from mcodec.eval import damage as dmg  # noqa: E402

DEFAULT_CLIPS = ("calendar_720x576", "cars_320x240", "ciscovt2people_320x192", "city_704x576",
                 "foliage_720x480", "walk_720x480")
METHODS = ("mcodec", "temporal-copy", "delogo", "minterpolate")
BASELINES = METHODS[1:]
APPLIES = {"boxes": ("mcodec", "temporal-copy", "delogo"),
           "rows": ("mcodec", "temporal-copy"),
           "drop": ("mcodec", "temporal-copy", "minterpolate")}
NOT_APPLICABLE = {
    "rows": "delogo: not applicable (a full-width band has no left/right ring to interpolate "
            "from); minterpolate: frames are only partly missing",
    "boxes": "minterpolate: frames are only partly missing",
    "drop": "delogo: the whole frame is missing (no ring)",
}
MINTERPOLATE = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"


def clip_seed(seed: int, clip: str) -> int:
    """The damage seed of one clip: --seed and the clip's name (CRC-32)."""
    return (seed * 1_000_003 + zlib.crc32(clip.encode())) % 2**32


def read_frames(path: Path) -> tuple[list[Frame], Fraction]:
    """Every frame of a video and its frame rate."""
    with open_video(str(path)) as r:
        return list(r), r.info.fps


def _cmd(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def _run_ffmpeg(args: list[str], what: str) -> float:
    start = time.perf_counter()
    ff.run_ffmpeg(args, what)
    return time.perf_counter() - start


def delogo_graph(damage: dmg.Damage) -> tuple[str, int]:
    """The -vf chain for the boxes of `damage` and the missing luma pixels it leaves uncovered
    (boxes clipped to 1 <= x, x+w <= W-1, same for y; 0 for the generator's boxes)."""
    filters, uncovered = [], 0
    for r in damage.regions:
        x0, y0 = max(r.x, 1), max(r.y, 1)
        x1, y1 = min(r.x + r.w, damage.width - 1), min(r.y + r.h, damage.height - 1)
        frames = r.last - r.first + 1
        kept = max(0, x1 - x0) * max(0, y1 - y0)
        uncovered += (r.w * r.h - kept) * frames
        if kept:
            filters.append(f"delogo=x={x0}:y={y0}:w={x1 - x0}:h={y1 - y0}"
                           f":enable='between(n,{r.first},{r.last})'")
    return ",".join(filters) or "null", uncovered


def run_delogo(damaged: Path, damage: dmg.Damage, dst: Path) -> dict:
    """ffmpeg delogo on the damaged clip; the output frames and how they were made."""
    graph, uncovered = delogo_graph(damage)
    args = ff.base_args() + ["-y", *ff.SAFE_INPUT, "-i", ff.input_url(str(damaged)), "-vf", graph,
                             "-f", "yuv4mpegpipe", ff.output_url(str(dst))]
    seconds = _run_ffmpeg(args, "delogo")
    frames, _ = read_frames(dst)
    return {"frames": frames, "command": _cmd(args), "seconds": seconds, "uncovered": uncovered}


def run_minterpolate(clean_path: Path, clean: list[Frame], damage: dmg.Damage, fps: Fraction,
                     dst: Path) -> dict:
    """ffmpeg minterpolate over the clean clip with the dropped frames removed (see the module
    docstring); the output frames aligned to the input, and how they were made."""
    sel = "+".join(f"eq(n,{d})" for d in damage.dropped)
    graph = (f"select='not({sel})',tpad=stop=2:stop_mode=clone,"
             f"minterpolate=fps={fps.numerator}/{fps.denominator}:{MINTERPOLATE}")
    args = ff.base_args() + ["-y", *ff.SAFE_INPUT, "-i", ff.input_url(str(clean_path)), "-vf", graph,
                             "-f", "yuv4mpegpipe", ff.output_url(str(dst))]
    seconds = _run_ffmpeg(args, "minterpolate")
    frames, _ = read_frames(dst)
    notes = [f"minterpolate wrote {len(frames)} frames for {len(clean)} (+2 cloned at the end)"]
    kept = [t for t in range(len(clean)) if t not in damage.dropped]
    misaligned = sum(1 for t in kept if t >= len(frames) or not frames[t].equals(clean[t]))
    if len(frames) < len(clean):
        frames += [Frame.grey(clean[0].width, clean[0].height)] * (len(clean) - len(frames))
        notes.append("OUTPUT SHORT: padded with grey frames")
    return {"frames": frames[:len(clean)], "command": _cmd(args), "seconds": seconds,
            "misaligned": misaligned, "notes": "; ".join(notes)}


def score(clean: list[Frame], out: list[Frame], damage: dmg.Damage) -> dmg.HiddenError:
    """Pooled error of `out` against `clean` over the damage's missing samples."""
    if len(out) != len(clean):
        raise RuntimeError(f"{len(out)} output frames for {len(clean)} input frames")
    total = dmg.HiddenError()
    for t, (a, b) in enumerate(zip(clean, out)):
        total = total + dmg.hidden_error(a, b, damage.hidden(t))
    return total


def _scores(err: dmg.HiddenError) -> dict:
    return {"psnr_y": err.psnr_y, "psnr_u": err.psnr(1), "psnr_v": err.psnr(2),
            "psnr_yuv": err.psnr_yuv, "mse_y": err.mse(0), "hidden_samples": list(err.count)}


def evaluate_kind(name: str, kind: str, clean_path: Path, clean: list[Frame], fps: Fraction,
                  seed: int, fill: str, workdir: Path) -> dict:
    """Damage one clip one way, restore it with every applicable method, score each."""
    from mcodec.apps.restore import restore

    workdir.mkdir(parents=True, exist_ok=True)
    h, w = clean[0].height, clean[0].width
    damage = dmg.make_damage(kind, len(clean), w, h, clip_seed(seed, name))
    damaged_path = workdir / "damaged.y4m"
    dmg.write_damaged_video(str(clean_path), str(damaged_path), damage, fill=fill, overwrite=True)
    damaged, _ = read_frames(damaged_path)
    mask_path = None
    if kind == "rows":
        mask_path = workdir / "mask.mkv"
        dmg.write_mask_video(damage, str(mask_path), fps, overwrite=True)
    rargs = damage.restore_args(None if mask_path is None else str(mask_path))
    methods: dict[str, dict] = {}

    out_path = workdir / "mcodec.y4m"
    start = time.perf_counter()
    summary = restore(str(damaged_path), str(out_path), masks=list(rargs.masks),
                      drop_frames=rargs.drop_frames or (),  # restore refuses ""
                      overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    restored, _ = read_frames(out_path)
    changed = sum(dmg.visible_changes(d, r, damage.hidden(t))
                  for t, (d, r) in enumerate(zip(damaged, restored)))
    methods["mcodec"] = {"frames": restored, "seconds": seconds, "visible_changed": changed,
                         "command": _cmd(["mcodec", "restore", str(damaged_path), str(out_path),
                                          *rargs.cli(), "-y"]),
                         "summary": summary.line()}

    start = time.perf_counter()
    tc = dmg.temporal_copy(damaged, damage)
    methods["temporal-copy"] = {"frames": tc, "seconds": time.perf_counter() - start,
                                "command": "mcodec.eval.damage.temporal_copy"}
    if kind == "boxes":
        methods["delogo"] = run_delogo(damaged_path, damage, workdir / "delogo.y4m")
    if kind == "drop":
        methods["minterpolate"] = run_minterpolate(clean_path, clean, damage, fps,
                                                   workdir / "minterpolate.y4m")
    out = {"damage": damage.to_dict(), "restore_args": rargs.cli(),
           "not_applicable": NOT_APPLICABLE[kind], "methods": {}}
    for m, rec in methods.items():
        frames = rec.pop("frames")
        out["methods"][m] = {**_scores(score(clean, frames, damage)), **rec}
    return out


# ----------------------------------------------------------------------------- report


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def summarise(clips: list[dict], kinds: list[str]) -> dict:
    """Per kind: mean over clips of each method's PSNR-Y / PSNR-YUV, of each clip's best
    baseline, and mcodec's margin over that (dB)."""
    out = {}
    for kind in kinds:
        rows = [c["kinds"][kind] for c in clips if kind in c["kinds"]]
        entry: dict = {"clips": len(rows)}
        for metric in ("psnr_y", "psnr_yuv"):
            means = {m: _mean([r["methods"][m][metric] for r in rows if m in r["methods"]])
                     for m in APPLIES[kind]}
            best = [max(r["methods"][m][metric] for m in APPLIES[kind][1:]) for r in rows]
            entry[metric] = {"mean": means, "best_baseline_mean": _mean(best),
                             "margin_db": means["mcodec"] - _mean(best)}
        out[kind] = entry
    return out


def _f(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def report_md(result: dict) -> str:
    """The markdown report: one table per kind, PSNR-Y (PSNR-YUV) in dB over missing samples."""
    kinds = result["kinds"]
    lines = ["# mcodec restore: evaluation on synthetic damage", "",
             f"Clips: {', '.join(c['clip'] for c in result['clips'])}; first {result['frames']} frames; "
             f"seed {result['seed']}; damaged pixels filled with {result['fill']}. "
             "PSNR in dB over the missing pixels only (luma; in brackets PSNR-YUV 6:1:1 over the "
             "missing luma pixels and their chroma), MSE pooled per clip and kind.", ""]
    for kind in kinds:
        meths = APPLIES[kind]
        lines += [f"## {kind}", "", "| clip | missing luma px | " + " | ".join(meths) +
                  " | best baseline | margin (dB) |",
                  "|---|---:|" + "---:|" * (len(meths) + 2)]
        for c in result["clips"]:
            r = c["kinds"].get(kind)
            if r is None:
                continue
            ms = r["methods"]
            best = max(ms[m]["psnr_y"] for m in meths[1:])
            best_yuv = max(ms[m]["psnr_yuv"] for m in meths[1:])
            cells = [f"{_f(ms[m]['psnr_y'])} ({_f(ms[m]['psnr_yuv'])})" for m in meths]
            lines.append(f"| {c['clip']} | {r['damage']['hidden_luma_pixels']} | " + " | ".join(cells)
                         + f" | {_f(best)} ({_f(best_yuv)}) | {ms['mcodec']['psnr_y'] - best:+.2f} |")
        s = result["summary"][kind]
        cells = [f"{_f(s['psnr_y']['mean'][m])} ({_f(s['psnr_yuv']['mean'][m])})" for m in meths]
        lines += ["| **mean** | | " + " | ".join(f"**{x}**" for x in cells)
                  + f" | **{_f(s['psnr_y']['best_baseline_mean'])} ({_f(s['psnr_yuv']['best_baseline_mean'])})**"
                  f" | **{s['psnr_y']['margin_db']:+.2f} ({s['psnr_yuv']['margin_db']:+.2f})** |", "",
                  f"Not run: {NOT_APPLICABLE[kind]}.", ""]
    margins = [result["summary"][k]["psnr_y"]["margin_db"] for k in kinds]
    lines += ["## Summary", "", "| kind | mcodec mean | best baseline mean | margin PSNR-Y | margin PSNR-YUV |",
              "|---|---:|---:|---:|---:|"]
    for k in kinds:
        s = result["summary"][k]
        lines.append(f"| {k} | {_f(s['psnr_y']['mean']['mcodec'])} | {_f(s['psnr_y']['best_baseline_mean'])} "
                     f"| {s['psnr_y']['margin_db']:+.2f} | {s['psnr_yuv']['margin_db']:+.2f} |")
    lines += ["", f"Mean margin over kinds (PSNR-Y): {_mean(margins):+.2f} dB (target: >= +2 dB). "
              "Best baseline = the best of the applicable baselines on each clip, then averaged.", "",
              "## Checks", ""]
    for c in result["clips"]:
        for k, r in c["kinds"].items():
            ms = r["methods"]
            extra = [f"mcodec changed {ms['mcodec']['visible_changed']} visible samples"]
            if "delogo" in ms:
                extra.append(f"delogo left {ms['delogo']['uncovered']} missing luma px uncovered")
            if "minterpolate" in ms:
                extra.append(f"minterpolate: {ms['minterpolate']['misaligned']} kept frames misaligned "
                             f"({ms['minterpolate']['notes']})")
            lines.append(f"- {c['clip']} / {k}: " + "; ".join(extra))
    lines += ["", "## Timings (s)", "", "| clip | kind | " + " | ".join(METHODS) + " |",
              "|---|---|" + "---:|" * len(METHODS)]
    for c in result["clips"]:
        for k, r in c["kinds"].items():
            ms = r["methods"]
            lines.append(f"| {c['clip']} | {k} | " + " | ".join(
                f"{ms[m]['seconds']:.2f}" if m in ms else "" for m in METHODS) + " |")
    lines += ["", f"Total: {result['seconds']:.1f} s. Command: `{result['command']}`", ""]
    return "\n".join(lines)


def _git_head() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    from mcodec.eval.bench import cut_clip
    from mcodec.train.data import default_data_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default=",".join(DEFAULT_CLIPS),
                    help="comma-separated names in <data>/clips (without .mkv)")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--kinds", default=",".join(dmg.KINDS))
    ap.add_argument("--out", default=str(REPO / "bench_out" / "restore"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fill", default="noise", choices=dmg.FILLS)
    ap.add_argument("--keep", action="store_true",
                    help="keep the damaged and restored videos (default: only the mask videos)")
    args = ap.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for k in kinds:
        if k not in dmg.KINDS:
            ap.error(f"unknown kind {k!r}: one of {', '.join(dmg.KINDS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clips_dir = default_data_root() / "clips"
    start = time.perf_counter()
    result = {"command": _cmd([sys.executable, *sys.argv]) if argv is None else _cmd(argv),
              "frames": args.frames, "seed": args.seed, "fill": args.fill, "kinds": kinds,
              "ffmpeg": ff.ffmpeg_version(), "git": _git_head(), "clips": []}
    for name in [c.strip() for c in args.clips.split(",") if c.strip()]:
        src = clips_dir / f"{name}.mkv"
        if not src.is_file():
            print(f"restore_eval: clip not found: {src}", file=sys.stderr)
            return 2
        clean_path = out / name / "clean.y4m"
        clean_path.parent.mkdir(parents=True, exist_ok=True)
        cut_clip(src, args.frames, clean_path, name)
        clean, fps = read_frames(clean_path)
        entry = {"clip": name, "width": clean[0].width, "height": clean[0].height,
                 "fps": f"{fps.numerator}/{fps.denominator}", "frames": len(clean), "kinds": {}}
        for kind in kinds:
            t0 = time.perf_counter()
            entry["kinds"][kind] = evaluate_kind(name, kind, clean_path, clean, fps, args.seed,
                                                 args.fill, out / name / kind)
            if not args.keep:
                for video in (out / name / kind).glob("*.y4m"):
                    video.unlink()
            ms = entry["kinds"][kind]["methods"]
            print(f"{name} {kind}: " + ", ".join(f"{m} {ms[m]['psnr_y']:.2f} dB" for m in ms)
                  + f" ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
        result["clips"].append(entry)
        if not args.keep:
            clean_path.unlink()
    result["summary"] = summarise(result["clips"], kinds)
    result["seconds"] = time.perf_counter() - start
    md = report_md(result)
    atomic_write(out / "results.json", json.dumps(result, indent=1, allow_nan=True) + "\n")
    atomic_write(out / "report.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
