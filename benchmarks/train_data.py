"""Throughput and memory of the streaming training data (`mcodec.train.datasets.ClipDataset`).

    python benchmarks/train_data.py [FOLDER] [--workers 2] [--items 200] [--crop 192]
                                    [--frames 2] [--batch 8] [--scale 100] [--json OUT]

FOLDER (default ``../shared/data/video_train``) is read as one "video" source, twice:
as it is, and as a temporary folder tree with `--scale` times as many entries
(symbolic links to the same files under other names, in `--scale` subfolders).
Each run is a fresh child process: a DataLoader (batch `--batch`, `--workers`
workers, indices 0 .. items-1, `worker_init`) draws `--items` samples of
`--frames` frames of `--crop` x `--crop`. Reported per run: files listed and the
listing time, the first batch's time (worker start and the first probes), frames
per second over the whole run and after the first batch, and the peak resident
memory (VmHWM, which counts pages shared with the parent too) and the private memory
at the end (Private_Clean + Private_Dirty of smaps_rollup) of the main process and of
each worker, read from /proc while the workers are still alive. (RUSAGE_CHILDREN is
no use here: a child that forks and execs ffmpeg reports its pre-exec high-water mark.)
Per-process memory that stays flat from 1x to `--scale`x entries is the point:
the dataset holds only the packed path list and opens files lazily.

Frames per second depend on the machine's load; compare the two rows of one run.
A new name is a new file to the dataset (its probe cache is keyed by path), so the
large tree probes more often: that, not memory, is what its throughput shows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _hwm_kb(pid: int | str) -> int:
    """VmHWM (peak resident set) of a process in kB, 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _uss_kb(pid: int | str) -> int:
    """Private (unshared) resident memory of a process now, in kB (smaps_rollup), 0 if gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return sum(int(ln.split()[1]) for ln in text.splitlines()
               if ln.startswith(("Private_Clean:", "Private_Dirty:")))


def _children() -> list[int]:
    """Pids of this process's children (the DataLoader workers)."""
    pids = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return sorted(set(pids))


def run_one(folder: str, args: argparse.Namespace) -> dict:
    """One measurement in this process (the child side)."""
    import torch

    from mcodec.train.config import SourceSpec
    from mcodec.train.datasets import ClipDataset, worker_init

    t0 = time.perf_counter()
    ds = ClipDataset([SourceSpec("video", folder)], frames=args.frames, crop=args.crop,
                     seed=args.seed)                     # warnings: stderr, also from workers
    t_list = time.perf_counter() - t0
    loader = torch.utils.data.DataLoader(
        ds, batch_size=args.batch, sampler=range(args.items), num_workers=args.workers,
        worker_init_fn=worker_init if args.workers else None)
    batches = len(loader)
    t0 = time.perf_counter()
    it = iter(loader)
    first = next(it)
    t_first = time.perf_counter() - t0
    got = len(first)
    for _ in range(batches - 1):
        got += len(next(it))
    t_all = time.perf_counter() - t0
    pids = _children()                                        # still alive: the iterator is open
    workers = {pid: _hwm_kb(pid) for pid in pids}
    private = {pid: _uss_kb(pid) for pid in pids}
    del it
    n_files = len(ds.sources[0].paths)
    return {
        "files": n_files, "list_s": round(t_list, 3), "items": got, "frames": args.frames,
        "first_batch_s": round(t_first, 2), "total_s": round(t_all, 2),
        "frames_per_s": round(got * args.frames / t_all, 1),
        "frames_per_s_after_first": round((got - len(first)) * args.frames / max(t_all - t_first, 1e-9), 1),
        "main_hwm_mb": round(_hwm_kb("self") / 1024, 1),
        "worker_hwm_mb": [round(v / 1024, 1) for v in workers.values()],
        "main_private_mb": round(_uss_kb("self") / 1024, 1),
        "worker_private_mb": [round(v / 1024, 1) for v in private.values()],
    }


def make_tree(src: Path, dest: Path, scale: int) -> int:
    """`scale` subfolders of links to every file of `src` under new names; entry count."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    for j in range(scale):
        sub = dest / f"d{j:03d}"
        sub.mkdir(parents=True)
        for f in files:
            (sub / f"{f.stem}_{j:03d}{f.suffix}").symlink_to(f.resolve())
    return scale * len(files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(REPO.parent / "shared" / "data" / "video_train"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--scale", type=int, default=100, help="entries of the large tree, x (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    ap.add_argument("--one", help=argparse.SUPPRESS)          # child mode: measure this folder
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return 0
    src = Path(args.folder).resolve()
    if not src.is_dir():
        ap.error(f"not a folder: {src}")
    passed = [f"--{k}={getattr(args, k)}" for k in ("workers", "items", "crop", "frames", "batch",
                                                     "seed")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mcodec-train-data-") as tmp:
        big = Path(tmp) / "tree"
        make_tree(src, big, args.scale)
        for label, folder in (("as is", src), (f"x{args.scale} entries", big)):
            done = subprocess.run([sys.executable, __file__, *passed, "--one", str(folder)],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                return 1
            warned = [ln for ln in done.stderr.splitlines() if ln.startswith("mcodec: warning:")]
            rows.append({"dataset": label, **json.loads(done.stdout.strip().splitlines()[-1]),
                         "warnings": warned})
    print(f"{src}: {args.items} items of {args.frames}x{args.crop}x{args.crop}, batch {args.batch}, "
          f"{args.workers} workers")
    head = (f"{'dataset':<16} {'files':>6} {'list s':>7} {'1st batch s':>11} {'frames/s':>9} "
            f"{'after 1st':>9} {'main MB':>12} {'workers MB, each':>22}")
    print(head)
    print("-" * len(head))
    print(f"{'':<16} {'':>6} {'':>7} {'':>11} {'':>9} {'':>9} {'peak/private':>12} {'peak/private':>22}")
    for r in rows:
        wk = " ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(r["worker_hwm_mb"], r["worker_private_mb"]))
        print(f"{r['dataset']:<16} {r['files']:>6} {r['list_s']:>7.3f} {r['first_batch_s']:>11.2f} "
              f"{r['frames_per_s']:>9.1f} {r['frames_per_s_after_first']:>9.1f} "
              f"{r['main_hwm_mb']:>6.0f}/{r['main_private_mb']:<5.0f} {wk or '-':>22}")
        for w in r["warnings"]:
            print(f"  {w}")
    if args.json:
        Path(args.json).write_text(json.dumps({"folder": str(src), "args": {
            k: v for k, v in vars(args).items() if k not in ("one", "json")}, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
