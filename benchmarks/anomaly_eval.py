"""Frame-level ROC AUC of `mcodec anomaly` on clips with inserted anomalies (issue 17).

    python benchmarks/anomaly_eval.py [--clips NAME,...] [--frames 32] [--seeds 2]
        [--types object,flash,frozen,foreign] [--out bench_out/anomaly] [--baseline-only]

For each development clip (default: every clip of ../shared/data/clips, or $MCODEC_DATA/clips),
each anomaly type and each seed 0..seeds-1, this

1. reads the clip's first `--frames` frames and inserts one event with
   :mod:`mcodec.eval.anomalies` (object: a patch of a cbsd68 training photo; foreign: frames of
   another development clip; the photo and the other clip are chosen by the seed),
2. writes the anomalous clip losslessly (FFV1 .mkv) to ``OUT/clips/``,
3. scores it with ``mcodec.apps.anomaly.score_video`` and with the frame-difference baseline
   (mean absolute luma difference to the previous frame),
4. computes frame-level ROC AUC (Mann-Whitney, ties 1/2) of both against the labels.

AUCs are averaged per type over clips and seeds, then over types (the issue's target: mean
>= 0.9 for mcodec). Writes OUT/results.json (every run, with its event, labels and scores)
and OUT/report.md, and prints the report. The per-run seed is crc32("clip:type:seed"), so a
run is reproducible alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_AUC = 0.9


def data_root() -> Path:
    import os

    env = os.environ.get("MCODEC_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def resolve_clips(names: str | None, clips_dir: Path) -> list[Path]:
    """The development clips named in `names` (comma-separated stems, file names or paths),
    or every video of `clips_dir`."""
    from mcodec.eval.bench import resolve_clips as expand

    if not names:
        return expand([str(clips_dir)])
    out = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        p = Path(name)
        if not p.is_file():
            found = sorted(q for q in clips_dir.glob(f"{name}*") if q.stem == name or q.name == name)
            if not found:
                sys.exit(f"clip not found: {name} (looked in {clips_dir})")
            p = found[0]
        out.append(p)
    return out


def run_seed(clip: str, kind: str, seed: int) -> int:
    return zlib.crc32(f"{clip}:{kind}:{seed}".encode())


def read_frames(path: Path, frames: int | None) -> tuple[list, object]:
    """(the first `frames` frames of `path`, its frame rate)."""
    from mcodec.codec.video_io import open_video

    with open_video(str(path), max_frames=frames) as r:
        return list(r), r.info.fps


def fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def make_report(res: dict) -> str:
    kinds = res["config"]["types"]
    lines = ["# Anomaly detection: frame-level ROC AUC on inserted anomalies",
             "",
             f"{len(res['config']['clips'])} clips, the first {res['config']['frames']} frames of each "
             f"(or all it has: " + ", ".join(f"{c} {n}" for c, n in res["config"]["clip_frames"].items())
             + "), "
             f"{res['config']['seeds']} seed(s) per clip and type; AUC by the Mann-Whitney "
             f"statistic (ties 1/2). Baseline: mean absolute luma difference to the previous frame.",
             "",
             "| type | mcodec AUC | baseline AUC | runs | mcodec failed |",
             "|---|---:|---:|---:|---:|"]
    for k in kinds:
        t = res["per_type"][k]
        lines.append(f"| {k} | {fmt(t['mcodec'])} | {fmt(t['baseline'])} | {t['runs']} | {t['mcodec_failed']} |")
    m = res["mean_over_types"]
    lines.append(f"| **mean over types** | **{fmt(m['mcodec'])}** | **{fmt(m['baseline'])}** | "
                 f"{len(res['runs'])} | {m['mcodec_failed_runs']} |")
    if m["mcodec_failed_runs"]:
        lines += ["", f"mcodec failed on {m['mcodec_failed_runs']} run(s): its means cover the other runs "
                  "only (the mean over types only when every type has a score). Errors:", ""]
        lines += [f"- {r['clip']} {r['type']} seed {r['seed']}: `{r['mcodec_error']}`"
                  for r in res["runs"] if r["mcodec_error"]]
    if m["mcodec"] is not None:
        verdict = "meets" if m["mcodec"] >= TARGET_AUC else "misses"
        lines += ["", f"mcodec {verdict} the target mean AUC >= {TARGET_AUC} ({m['mcodec']:.3f})."]
    lines += ["", "## Per clip (mean over seeds): mcodec / baseline", "",
              "| clip | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
    for clip in res["config"]["clips"]:
        cells = []
        for k in kinds:
            runs = [r for r in res["runs"] if r["clip"] == clip and r["type"] == k]
            cells.append(f"{fmt(mean([r['auc_mcodec'] for r in runs if r['auc_mcodec'] is not None]))}"
                         f" / {fmt(mean([r['auc_baseline'] for r in runs]))}")
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    tm = res["timings_s"]
    lines += ["", f"Time: {tm['total']:.1f} s in all; mcodec scoring {tm['mcodec_score']:.1f} s "
              f"({tm['mcodec_s_per_frame'] or 0:.3f} s/frame), baseline {tm['baseline_score']:.2f} s, "
              f"generation {tm['generate']:.1f} s, writing {tm['write']:.1f} s, "
              f"reading sources {tm['read']:.1f} s.", ""]
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default=None, help="comma-separated clip names (default: all)")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--types", default="object,flash,frozen,foreign")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench_out" / "anomaly"))
    ap.add_argument("--baseline-only", action="store_true", help="skip mcodec (check the pipeline)")
    args = ap.parse_args()

    import numpy as np

    from mcodec.atomic import atomic_write
    from mcodec.codec.video_io import open_writer
    from mcodec.eval import anomalies as an

    kinds = [k.strip() for k in args.types.split(",") if k.strip()]
    bad = [k for k in kinds if k not in an.ANOMALY_KINDS]
    if bad or not kinds:
        sys.exit(f"unknown type(s) {bad}; known: {','.join(an.ANOMALY_KINDS)}")
    if args.seeds < 1 or args.frames < an.MIN_FRAMES:
        sys.exit(f"--seeds must be >= 1 and --frames >= {an.MIN_FRAMES}")
    score_video = None
    if not args.baseline_only:
        from mcodec.apps.anomaly import score_video

    root = data_root()
    clips_dir = root / "clips"
    all_clips = resolve_clips(None, clips_dir)
    clips = resolve_clips(args.clips, clips_dir)
    photos = sorted((root / "images" / "train" / "cbsd68").glob("*.png"))
    if "object" in kinds and not photos:
        sys.exit(f"no cbsd68 photos in {root / 'images' / 'train' / 'cbsd68'}")
    out = Path(args.out)
    (out / "clips").mkdir(parents=True, exist_ok=True)

    timings = dict(read=0.0, generate=0.0, write=0.0, mcodec_score=0.0, baseline_score=0.0)
    t_all = time.perf_counter()
    cache: dict[str, tuple[list, object]] = {}

    def frames_of(path: Path) -> tuple[list, object]:
        if str(path) not in cache:
            t = time.perf_counter()
            cache[str(path)] = read_frames(path, args.frames)
            timings["read"] += time.perf_counter() - t
        return cache[str(path)]

    runs = []
    for clip in clips:
        src, fps = frames_of(clip)
        others = [c for c in all_clips if c.resolve() != clip.resolve()]
        for kind in kinds:
            for seed in range(args.seeds):
                s = run_seed(clip.stem, kind, seed)
                pick = np.random.default_rng(s)
                source_name = other_name = None
                source = other = None
                if kind == "object":
                    photo = photos[int(pick.integers(len(photos)))]
                    source_name = photo.name
                    t_r = time.perf_counter()
                    source = read_frames(photo, 1)[0][0]
                    timings["read"] += time.perf_counter() - t_r
                if kind == "foreign":
                    if not others:
                        sys.exit("a foreign segment needs a second development clip")
                    oc = others[int(pick.integers(len(others)))]
                    other_name = oc.stem
                    other = frames_of(oc)[0]
                t = time.perf_counter()
                ins = an.insert_anomaly(kind, src, s, source=source, other=other)
                frames, labels = ins
                timings["generate"] += time.perf_counter() - t

                path = out / "clips" / f"{clip.stem}_{kind}_s{seed}.mkv"
                t = time.perf_counter()
                with open_writer(str(path), frames[0].width, frames[0].height, fps, overwrite=True) as w:
                    for f in frames:
                        w.write(f)
                timings["write"] += time.perf_counter() - t

                t = time.perf_counter()
                base = an.frame_difference_scores(frames)
                dt_base = time.perf_counter() - t
                timings["baseline_score"] += dt_base
                auc_b = an.roc_auc(base, labels)

                auc_m, mscores, dt_m, error = None, None, None, None
                if score_video is not None:
                    t = time.perf_counter()
                    try:
                        result = score_video(str(path), max_frames=None, progress=False)
                        mscores = np.asarray(result.scores, dtype=np.float64)
                        if mscores.shape != (len(frames),):
                            raise ValueError(f"contract mismatch: scores of shape {mscores.shape} "
                                             f"for {len(frames)} frames")
                        auc_m = an.roc_auc(mscores, labels)
                    except Exception as exc:            # recorded, reported, and the exit status
                        error = f"{type(exc).__name__}: {exc}"
                        mscores = None
                    dt_m = time.perf_counter() - t
                    timings["mcodec_score"] += dt_m
                run = dict(clip=clip.stem, type=kind, seed=seed, run_seed=s, file=str(path.relative_to(out)),
                           n_frames=len(frames), n_anomalous=int(labels.sum()),
                           event=ins.event.to_dict(), object_source=source_name, foreign_source=other_name,
                           auc_mcodec=auc_m, mcodec_error=error, auc_baseline=auc_b,
                           mcodec_s=dt_m, baseline_s=dt_base,
                           labels=[int(b) for b in labels],
                           scores_mcodec=None if mscores is None else [round(float(x), 5) for x in mscores],
                           scores_baseline=[round(float(x), 5) for x in base])
                runs.append(run)
                print(f"{clip.stem:24s} {kind:8s} seed {seed}: frames {ins.event.start}.."
                      f"{ins.event.start + ins.event.length - 1}  mcodec AUC {fmt(auc_m)}  "
                      f"baseline AUC {auc_b:.3f}" + (f"  ({dt_m:.1f} s)" if dt_m else "")
                      + (f"  mcodec FAILED: {error}" if error else ""), flush=True)

    per_type = {}
    for k in kinds:
        rk = [r for r in runs if r["type"] == k]
        per_type[k] = dict(mcodec=mean([r["auc_mcodec"] for r in rk if r["auc_mcodec"] is not None]),
                           baseline=mean([r["auc_baseline"] for r in rk]), runs=len(rk),
                           mcodec_failed=sum(r["mcodec_error"] is not None for r in rk))
    failed = sum(t["mcodec_failed"] for t in per_type.values())
    complete = score_video is not None and all(per_type[k]["mcodec"] is not None for k in kinds)
    mean_types = dict(mcodec=mean([per_type[k]["mcodec"] for k in kinds]) if complete else None,
                      mcodec_failed_runs=failed,
                      baseline=mean([per_type[k]["baseline"] for k in kinds]))
    timings["total"] = time.perf_counter() - t_all
    n_scored = sum(r["n_frames"] for r in runs if r["mcodec_s"] is not None)
    timings["mcodec_s_per_frame"] = timings["mcodec_score"] / n_scored if n_scored else None
    res = dict(
        config=dict(clips=[c.stem for c in clips], frames=args.frames,
                    clip_frames={c.stem: len(frames_of(c)[0]) for c in clips}, types=kinds, seeds=args.seeds,
                    baseline_only=args.baseline_only, target_mean_auc=TARGET_AUC,
                    photos="images/train/cbsd68", foreign_pool=[c.stem for c in all_clips]),
        environment=dict(python=platform.python_version(), numpy=np.__version__,
                         machine=platform.machine(), time=time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        per_type=per_type, mean_over_types=mean_types, timings_s=timings, runs=runs)
    report = make_report(res)
    atomic_write(out / "results.json", json.dumps(res, indent=1) + "\n")
    atomic_write(out / "report.md", report)
    print()
    print(report)
    print(f"wrote {out / 'results.json'} and {out / 'report.md'}")
    if failed:
        sys.exit(f"mcodec scoring failed on {failed} run(s); see results.json")


if __name__ == "__main__":
    main()
