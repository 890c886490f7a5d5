"""Training throughput: samples/s of the same config in 1 process and in 2 (torchrun, gloo).

    python benchmarks/train_speed.py [--config configs/mcodec-s3.toml] [--steps 12] [--json OUT]

Each run trains `--steps` steps from scratch into a temporary folder (data loading in
`data.workers` worker processes per rank, as configured) and reports the mean samples/s
of its log records after the first `--skip` steps (start-up excluded). Runs, all in
this one script on the same machine: 1 process x 1 thread, 1 process x 2 threads,
2 processes x 1 thread (torchrun --nproc_per_node 2). Ratios are what to compare
(the machines are shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _config(src: Path, steps: int, threads: int, dest: Path) -> Path:
    lines = []
    for line in src.read_text().splitlines():
        if line.startswith("steps ="):
            line = f"steps = {steps}"
        elif line.startswith("threads ="):
            line = f"threads = {threads}"
        elif line.startswith("log_every ="):
            line = "log_every = 1"
        elif line.startswith("ckpt_every ="):
            line = f"ckpt_every = {steps}"
        lines.append(line)
    dest.write_text("\n".join(lines) + "\n")
    return dest


def _run(config: Path, out: Path, procs: int, skip: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "mcodec.train", "--config", str(config), "--out", str(out), "--no-progress"]
    cmd = base if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                                   str(procs), "--master_port", "29611", *base[1:]]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in recs[skip:]]
    return {"samples_per_s": sum(rates) / len(rates), "wall_s": wall, "steps": len(recs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(REPO / "configs" / "mcodec-s3.toml"))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--skip", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for name, procs, threads in (("1 process x 1 thread", 1, 1), ("1 process x 2 threads", 1, 2),
                                     ("2 processes x 1 thread (gloo)", 2, 1)):
            cfg = _config(Path(args.config), args.steps, threads, t / f"c{procs}{threads}.toml")
            rows[name] = _run(cfg, t / f"r{procs}{threads}", procs, args.skip)
            print(f"{name:32s} {rows[name]['samples_per_s']:7.2f} samples/s  "
                  f"({rows[name]['wall_s']:.0f} s wall for {args.steps} steps)", flush=True)
    ref = rows["1 process x 1 thread"]["samples_per_s"]
    for name, r in rows.items():
        print(f"{name:32s} x{r['samples_per_s'] / ref:.2f} of 1 process x 1 thread")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": args.config, "steps": args.steps, "runs": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
