"""Peak memory of mcodec encode and decode against clip length (streaming check).

    python benchmarks/memory.py [--size 416x240] [--lengths 100,1000] [--quality 0]
        [--preset fast] [--structures randomaccess,lowdelay] [--json OUT]

The clip is cars_320x240 looped and scaled (ffmpeg `loop` + bicubic scale) and piped
into `mcodec encode -` in a fresh process; the stream is decoded by `mcodec decode
X.bin -` into a pipe that is drained. Each mcodec process reports its own peak
resident set (VmHWM from /proc/self/status at exit, via an atexit hook in a
`sitecustomize` on PYTHONPATH; `ru_maxrss` would carry the parent's peak over
exec). Reported per structure: peak RSS at each length and the ratio longest /
shortest (issue 16: <= 1.1, and <= 2 GB at 1280x720).
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
CLIP = REPO.parent / "shared/data/clips/cars_320x240.mkv"
HOOK = """
import atexit, os
def _report():
    path = os.environ.get("MCODEC_HWM_FILE")
    if path:
        with open("/proc/self/status") as f:
            hwm = [l for l in f if l.startswith("VmHWM:")][0].split()[1]
        with open(path, "w") as out:
            out.write(hwm)
atexit.register(_report)
"""


def run(ffmpeg: str, size: str, frames: int, quality: int, preset: str, structure: str,
        work: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{work}{os.pathsep}{REPO}", OMP_NUM_THREADS="2")
    mc = [sys.executable, "-m", "mcodec.cli.main"]
    stream = work / "s.bin"
    w, h = size.split("x")
    src = subprocess.Popen([ffmpeg, "-nostdin", "-loglevel", "error", "-stream_loop", "-1", "-i", str(CLIP),
                            "-vf", f"scale={w}:{h}:flags=bicubic", "-frames:v", str(frames),
                            "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-"], stdout=subprocess.PIPE)
    t = time.perf_counter()
    try:
        enc = subprocess.run([*mc, "encode", "-", str(stream), "--quality", str(quality), "--preset", preset,
                              "--structure", structure, "--quiet", "-y"], stdin=src.stdout,
                             env={**env, "MCODEC_HWM_FILE": str(work / "enc.hwm")},
                             capture_output=True, text=True, check=False)
    finally:
        src.stdout.close()
        src.wait()
    t_enc = time.perf_counter() - t
    if enc.returncode:
        raise RuntimeError(enc.stderr)
    t = time.perf_counter()
    dec = subprocess.run([*mc, "decode", str(stream), "-", "--quiet"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=False,
                         env={**env, "MCODEC_HWM_FILE": str(work / "dec.hwm")})
    t_dec = time.perf_counter() - t
    if dec.returncode:
        raise RuntimeError(dec.stderr)
    return {"size": size, "frames": frames, "structure": structure, "quality": quality, "preset": preset,
            "bytes": stream.stat().st_size,
            "encode_peak_mb": int((work / "enc.hwm").read_text()) / 1024,
            "decode_peak_mb": int((work / "dec.hwm").read_text()) / 1024,
            "encode_s": t_enc, "decode_s": t_dec}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="416x240")
    ap.add_argument("--lengths", default="100,1000")
    ap.add_argument("--quality", type=int, default=0)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--structures", default="randomaccess,lowdelay")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    lengths = [int(x) for x in args.lengths.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "sitecustomize.py").write_text(HOOK)
        for structure in args.structures.split(","):
            for n in lengths:
                row = run(ffmpeg, args.size, n, args.quality, args.preset, structure, work)
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = {}
    for structure in args.structures.split(","):
        r = {x["frames"]: x for x in rows if x["structure"] == structure}
        lo, hi = r[min(lengths)], r[max(lengths)]
        summary[structure] = {"encode_ratio": hi["encode_peak_mb"] / lo["encode_peak_mb"],
                              "decode_ratio": hi["decode_peak_mb"] / lo["decode_peak_mb"]}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
