"""Sampling profile (py-spy) of `mcodec encode` and `mcodec decode`, per model, as a table.

    pip install py-spy
    python benchmarks/profile_codec.py [--models mcodec-s3,mcodec-s3i] [--quality 4]
        [--frames 8] [--size 416x240] [--top 12] [--markdown OUT.md]

The first `--frames` frames of cars_320x240, scaled to `--size`, are encoded with
each model (random access, the default preset) and decoded, each command under
`py-spy record -f raw` at 100 Hz, start-up included. The table lists, per run,
the share of start-up (imports and model load) in all samples, then the mcodec
functions that take the most time after start-up (inclusive share of the
samples after start-up, by qualified name).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared/data/clips/cars_320x240.mkv"


def profile(cmd: list[str], raw: Path) -> tuple[dict[str, float], set[str], int, float]:
    """(inclusive share of samples per function "file.py:name", the keys of mcodec's own
    functions, samples, share in start-up: imports or model load), from py-spy's raw output."""
    subprocess.run(["py-spy", "record", "-r", "100", "-f", "raw", "-o", str(raw), "--", *cmd],
                   check=True, capture_output=True)
    incl: collections.Counter[str] = collections.Counter()
    ours: set[str] = set()
    total = startup = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        count = int(n)
        total += count
        if "_find_and_load (" in stack or "load_networks (" in stack:
            startup += count
            continue  # the table covers the work after start-up
        seen = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            where = where.rstrip(")").split(":")[0]
            key = f"{Path(where).name}:{name}" if where else name
            if where.startswith("mcodec/") or "/mcodec/" in where:
                ours.add(key)
            if key not in seen:
                seen.add(key)
                incl[key] += count
    work = max(total - startup, 1)
    return {k: v / work for k, v in incl.items()}, ours, total, startup / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="mcodec-s3,mcodec-s3i")
    ap.add_argument("--quality", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", default="416x240")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    if not shutil.which("py-spy"):
        raise SystemExit("py-spy not found: pip install py-spy")
    import imageio_ffmpeg

    w, h = args.size.split("x")
    mc = [sys.executable, "-m", "mcodec.cli.main"]
    out = [(f"Profile: cars_320x240 scaled to {args.size}, {args.frames} frames, quality {args.quality}, "
           "random access, py-spy 100 Hz; start-up = imports + model load; the tables: inclusive share of "
           "the samples after start-up."), ""]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = d / "src.y4m"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(CLIP),
                        "-frames:v", str(args.frames), "-vf", f"scale={w}:{h}:flags=bicubic", "-pix_fmt",
                        "yuv420p", "-y", str(src)], check=True)
        for model in args.models.split(","):
            stream = d / f"{model}.bin"
            runs = {
                "encode": [*mc, "encode", str(src), str(stream), "--quality", str(args.quality), "--model", model,
                           "-q", "-y"],
                "decode": [*mc, "decode", str(stream), str(d / "o.y4m"), "-q", "-y"],
            }
            for what, cmd in runs.items():
                shares, ours, samples, startup = profile(cmd, d / f"{model}_{what}.txt")
                top_level = ("main.py:", "codec.py:encode", "codec.py:decode", "codec.py:iter_decode",
                             "codec.py:_encode_gop", "__main__.py:", "codec.py:iter_decode.<locals>.frames",
                             "codec.py:iter_decode.<locals>.decoded")
                mine = sorted(((v, k) for k, v in shares.items() if k in ours and not k.startswith(top_level)),
                              reverse=True)
                out += [f"### {model} {what} ({samples} samples = {samples / 100:.1f} s)", "",
                        f"start-up (imports + model load): {100 * startup:.0f} %", "",
                        "| function | share |", "|---|---:|"]
                out += [f"| `{k}` | {100 * v:.1f} % |" for v, k in mine[:args.top]]
                out.append("")
    text = "\n".join(out)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
