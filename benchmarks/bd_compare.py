"""Per-clip BD-rates from bench results: per plane, or one codec across two runs.

    python benchmarks/bd_compare.py RUN/results.json [--test mcodec] [--anchor x264]
    python benchmarks/bd_compare.py NEW/results.json --against OLD/results.json [--test mcodec]
    python benchmarks/bd_compare.py RA/results.json --anchor-from LD/results.json   # mcodec RA vs x264 LD

The first form prints, for every clip, the BD-rate of `--test` against `--anchor` on
PSNR-YUV and on each plane's PSNR (Y, U, V): where the gap to the anchor comes from.
The second prints the BD-rate of `--test` in NEW against the same codec in OLD (for
example two encoder versions run under the same conditions), with the curves' overlap
and top PSNR-YUV. Same `mcodec.eval.bdrate.bd_rate` (PCHIP over log-rate) as the bench;
rate = bytes of each point's file. Clips without a valid BD-rate print the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLANE_METRICS = ("psnr_yuv", "psnr_y", "psnr_u", "psnr_v")


def load_curves(path: str) -> dict[tuple[str, str], list[dict]]:
    """(clip, codec) -> the run's points of that codec on that clip, sorted by rate."""
    curves: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for point in json.loads(Path(path).read_text())["points"]:
        curves[(point["clip"], point["codec"])].append(point)
    return {k: sorted(v, key=lambda p: p["bytes"]) for k, v in curves.items()}


def main() -> None:
    sys.path.insert(0, str(REPO))
    from mcodec.eval.bdrate import bd_rate

    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--against", help="a second results.json: compare --test across the runs")
    ap.add_argument("--test", default="mcodec")
    ap.add_argument("--anchor", default="x264")
    ap.add_argument("--anchor-from", help="take --anchor's curves from this results.json (another "
                                          "configuration of the same clips and frames)")
    args = ap.parse_args()
    new = load_curves(args.results)
    if args.anchor_from:
        new.update({k: v for k, v in load_curves(args.anchor_from).items() if k[1] == args.anchor})
    clips = sorted({clip for clip, codec in new if codec == args.test})

    def bd(ref: list[dict], test: list[dict], metric: str):
        return bd_rate([p["bytes"] for p in ref], [p["metrics"][metric] for p in ref],
                       [p["bytes"] for p in test], [p["metrics"][metric] for p in test])

    if args.against:
        old = load_curves(args.against)
        values = []
        for clip in clips:
            a, b = old.get((clip, args.test)), new[(clip, args.test)]
            if not a:
                print(f"{clip}: no {args.test} points in {args.against}")
                continue
            try:
                r = bd(a, b, "psnr_yuv")
            except ValueError as exc:
                print(f"{clip}: {exc}")
                continue
            values.append(r.value)
            print(f"{clip}: {r.value:+.1f} % (overlap {r.overlap:.0%}); top PSNR-YUV "
                  f"{a[-1]['metrics']['psnr_yuv']:.2f} -> {b[-1]['metrics']['psnr_yuv']:.2f} dB")
        if values:
            print(f"mean of {len(values)} clips: {sum(values) / len(values):+.1f} %")
        return
    print("clip " + " ".join(f"{m:>10}" for m in PLANE_METRICS))
    sums: dict[str, list[float]] = defaultdict(list)
    for clip in clips:
        ref, test = new.get((clip, args.anchor)), new[(clip, args.test)]
        cells = []
        for metric in PLANE_METRICS:
            try:
                value = bd(ref or [], test, metric).value
                sums[metric].append(value)
                cells.append(f"{value:+9.1f}%")
            except ValueError:
                cells.append(f"{'n/a':>10}")
        print(f"{clip} " + " ".join(cells))
    print("mean " + " ".join(f"{sum(v) / len(v):+9.1f}%" if v else f"{'n/a':>10}"
                             for v in (sums[m] for m in PLANE_METRICS)))


if __name__ == "__main__":
    main()
