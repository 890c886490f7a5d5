"""Speed of mcodec against x264, x265 and CompressAI's ssf2020, in one run, on the same frames.

    python benchmarks/speed.py [--clip CLIP] [--sizes 416x240,1280x720] [--frames 8]
        [--qualities all|0,3,6] [--structures randomaccess,lowdelay] [--threads 2]
        [--skip-720p-mcodec-above Q] [--json OUT.json] [--markdown OUT.md]

The clip's first `--frames` frames are scaled once per size with ffmpeg (bicubic,
yuv420p) to a y4m in a temporary folder; every codec reads that same y4m. Timed:

* mcodec encode and decode (`mcodec.codec.codec.encode` / `decode`, y4m in, y4m out)
  at every quality and structure asked for, one network load shared by all runs,
  after one untimed warm-up encode and decode of 2 frames;
* x264 and x265 medium encode through the bench's anchors (`mcodec.eval.anchors`,
  low delay and random access, CRF 30, `-threads`) and ffmpeg decode of their
  streams (`-threads`), each as wall time of the ffmpeg process and as ffmpeg's own
  `-benchmark` rtime (which leaves out process start-up);
* CompressAI `ssf2020` built untrained (`pretrained=False`, `update(force=True)`),
  `compress` / `decompress` of the same frames as RGB [0, 1] tensors, zero-padded to
  a multiple of 128 (its 4 stride-2 transforms and 3 stride-2 hyper transforms;
  CompressAI's own video evaluation pads the same way), under `torch.inference_mode`;
* start-up in fresh processes: interpreter + `from mcodec.codec import codec, zoo` +
  `zoo.load_decoders()` (what `mcodec decode` loads), the same with `zoo.load_encoders()`
  (the encoder's), and `mcodec --help` (median of `--repeats`);
* peak RSS of one mcodec encode and one decode per size, each in its own process
  (the child's own VmHWM from /proc/self/status, network load included; not its
  ffmpeg reader: on Linux `ru_maxrss` survives exec, so a child's carries the
  high-water mark of the process that spawned it and cannot be read that way).

`--threads` sets `torch.set_num_threads` here and in the children (and OMP/MKL
thread variables for the children) and ffmpeg's `-threads`. Nothing is dropped
silently: every skipped run is listed in the output and the JSON. fps figures depend
on the machine's load: the load average is recorded before and after each size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = REPO.parent / "shared/data/clips/cars_320x240.mkv"
ANCHOR_CRF = 30.0
SSF_PAD = 2 ** (4 + 3)
# Issue 16's targets.
TARGET_DECODE_FPS = 25.0
TARGET_ENCODE_FPS = 10.0
TARGET_VS_SSF = 3.0
TARGET_STARTUP_S = 1.5
TARGET_RSS_720P_MB = 2048.0

_STARTUP_CHILD = """
import time
t0 = time.perf_counter()
import json, resource, sys
sys.path.insert(0, {repo!r})
import torch
torch.set_num_threads({threads})
from mcodec.codec import codec, zoo
t1 = time.perf_counter()
nets = zoo.{loader}()
t2 = time.perf_counter()
assert {loader!r} == "load_networks" or "compressai" not in sys.modules
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1,
                  "rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

_RSS_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
import torch
torch.set_num_threads({threads})
from mcodec.codec import codec
from mcodec.codec.options import EncodeOptions
mode, src, dst, quality, structure = sys.argv[1:]
t = time.perf_counter()
if mode == "encode":
    codec.encode(src, dst, options=EncodeOptions(quality=int(quality), structure=structure),
                 overwrite=True)
else:
    codec.decode(src, dst, overwrite=True)
t = time.perf_counter() - t
# VmHWM: this process's own peak (ru_maxrss would carry the spawning parent's peak over exec)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(json.dumps({{"seconds": t,
                  "rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _run_json(args: list[str], threads: int, timeout: float) -> tuple[dict, float]:
    """Run a child that prints one JSON line last; return it and the child's wall time."""
    t = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=_child_env(threads),
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)x(\d+)\s*", part)
        if not m:
            raise SystemExit(f"bad size {part!r}: expected WxH")
        out.append((int(m.group(1)), int(m.group(2))))
    return out


def _rtime(log: str) -> float | None:
    """ffmpeg's `-benchmark` real time (s), or None."""
    m = re.search(r"bench: utime=\S+ stime=\S+ rtime=([0-9.]+)s", log)
    return float(m.group(1)) if m else None


def _fps(n: int, seconds: float | None) -> float | None:
    return n / seconds if seconds else None


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ----------------------------------------------------------------------------- the runs


def make_y4m(ff, clip: str, size: tuple[int, int], frames: int, threads: int, dst: Path) -> None:
    """The clip's first `frames` frames, bicubic-scaled to `size`, yuv420p y4m."""
    w, h = size
    args = ff.base_args() + ["-threads", str(threads), *ff.SAFE_INPUT, "-i", ff.input_url(clip),
                             "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", str(frames),
                             "-vf", f"scale={w}:{h}:flags=bicubic", "-pix_fmt", "yuv420p",
                             "-f", "yuv4mpegpipe", "-y", ff.output_url(str(dst))]
    ff.run_ffmpeg(args, f"scaling {clip} to {w}x{h} failed")


def _startup_runs(loader: str, threads: int, repeats: int) -> dict:
    """Fresh processes: interpreter + imports + `zoo.<loader>()`, medians of `repeats`."""
    code = _STARTUP_CHILD.format(repo=str(REPO), threads=threads, loader=loader)
    runs = []
    for _ in range(repeats):
        info, wall = _run_json([sys.executable, "-c", code], threads, 300)
        runs.append({"wall_s": wall, **info})
    return {
        "code": f"python -c 'import torch; from mcodec.codec import codec, zoo; zoo.{loader}()'",
        "runs": runs,
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "import_s_median": statistics.median(r["import_s"] for r in runs),
        "load_s_median": statistics.median(r["load_s"] for r in runs),
        "rss_mb_after_load": max(r["rss_mb"] for r in runs),
    }


def time_startup(threads: int, repeats: int) -> dict:
    """Start-up of the decoder (`zoo.load_decoders`: what `mcodec decode` loads; no
    CompressAI import, checked in the child) and of the encoder (`zoo.load_encoders`: what
    `mcodec encode` loads, no CompressAI import either),
    in fresh processes, and `mcodec --help`."""
    decoder = _startup_runs("load_decoders", threads, repeats)
    encoder = _startup_runs("load_encoders", threads, repeats)
    # the floor: a fresh process that imports torch and exits (same child environment)
    torch_walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, env=_child_env(threads),
                       check=True, timeout=120, stdin=subprocess.DEVNULL)
        torch_walls.append(time.perf_counter() - t)
    exe = Path(sys.executable).with_name("mcodec")
    cli = str(exe) if exe.exists() else shutil.which("mcodec")
    help_walls = []
    if cli:
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([cli, "--help"], capture_output=True, env=_child_env(threads),
                           check=True, timeout=120, stdin=subprocess.DEVNULL)
            help_walls.append(time.perf_counter() - t)
    return {
        "repeats": repeats,
        # the decoder's figures at the top level (the start-up target is a decoder's)
        **decoder,
        "encoder": encoder,
        "torch_only_wall_s": torch_walls,
        "torch_only_wall_s_median": statistics.median(torch_walls),
        "help_cli": cli,
        "help_wall_s": help_walls,
        "help_wall_s_median": statistics.median(help_walls) if help_walls else None,
    }


def time_mcodec(codec, bs, EncodeOptions, nets, decoders, src: Path, work: Path, n: int, quality: int,
                structure: str) -> dict:
    binf, out = work / f"mc_{structure}_{quality}.bin", work / f"mc_{structure}_{quality}.y4m"
    c0, t = _cpu_self(), time.perf_counter()
    enc = codec.encode(str(src), str(binf), options=EncodeOptions(quality=quality, structure=structure),
                       networks=nets, overwrite=True)
    t_enc, c_enc = time.perf_counter() - t, _cpu_self() - c0
    c0, t = _cpu_self(), time.perf_counter()
    dec = codec.decode(str(binf), str(out), networks=decoders, overwrite=True)
    t_dec, c_dec = time.perf_counter() - t, _cpu_self() - c0
    n2x = sum(bool(f.flags & bs.FRAME_FLAG_SCALE2) for f in bs.read_bitstream(str(binf)).frames)
    assert enc.frames == n and dec.frames == n, (enc.frames, dec.frames, n)
    out.unlink()
    return {"codec": "mcodec", "structure": structure, "quality": quality, "frames": n,
            "bytes": enc.bytes, "kbps": enc.kbps, "psnr_yuv": enc.psnr_yuv, "frames_2x": n2x,
            "encode_s": t_enc, "decode_s": t_dec, "encode_cpu_s": c_enc, "decode_cpu_s": c_dec,
            "encode_fps": n / t_enc, "decode_fps": n / t_dec}


def time_anchor(ff, anchors, name: str, config: str, src: Path, work: Path, n: int, fps: float,
                threads: int) -> dict:
    anchor = anchors.anchor_codec(name, config, threads=threads)
    out = work / f"{name}_{config}{anchor.spec.extension}"
    args = anchor.command(src, 32, ANCHOR_CRF, out)
    args.insert(len(ff.base_args(anchor._exe(), loglevel="info")), "-benchmark")
    t = time.perf_counter()
    log = ff.run_ffmpeg(args, f"{name} encode failed")
    t_enc = time.perf_counter() - t
    data = out.read_bytes()
    dargs = ff.base_args(anchor._exe(), loglevel="info") + [
        "-benchmark", "-nostats", "-threads", str(threads), "-f", anchor.spec.muxer, *ff.SAFE_INPUT,
        "-i", ff.input_url(str(out)), "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "null", "-"]
    t = time.perf_counter()
    dlog = ff.run_ffmpeg(dargs, f"{name} decode failed")
    t_dec = time.perf_counter() - t
    r_enc, r_dec = _rtime(log), _rtime(dlog)
    return {"codec": name, "config": config, "preset": "medium", "crf": ANCHOR_CRF, "frames": n,
            "bytes": len(data), "kbps": len(data) * 8 / 1000 * fps / n,
            "encode_s": t_enc, "decode_s": t_dec, "encode_rtime_s": r_enc, "decode_rtime_s": r_dec,
            "encode_fps": n / t_enc, "decode_fps": n / t_dec,
            "encode_fps_rtime": _fps(n, r_enc), "decode_fps_rtime": _fps(n, r_dec),
            "command": " ".join(args)}


def read_rgb(ff, src: Path, w: int, h: int, threads: int):
    """The y4m's frames as RGB [0, 1] float tensors (1, 3, H, W) (ffmpeg's yuv->rgb24, BT.601)."""
    import subprocess as sp

    import numpy as np
    import torch

    args = ff.base_args() + ["-threads", str(threads), "-f", "yuv4mpegpipe", *ff.SAFE_INPUT,
                             "-i", ff.input_url(str(src)), "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"]
    frames = []
    with ff.FFmpegProcess(args, stdout=sp.PIPE) as proc:
        while True:
            buf = ff.read_exact(proc.stdout, w * h * 3)
            if len(buf) < w * h * 3:
                break
            arr = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
            frames.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255)
        proc.wait("reading rgb frames failed", timeout=120)
    return frames


def build_ssf():
    import torch
    from compressai.zoo import ssf2020

    torch.manual_seed(0)  # the same untrained weights in every run
    t = time.perf_counter()
    net = ssf2020(quality=1, pretrained=False).eval()
    net.update(force=True)
    params = sum(p.numel() for p in net.parameters())
    del torch
    return net, time.perf_counter() - t, params


def time_ssf(net, frames) -> dict:
    import torch
    import torch.nn.functional as F
    from compressai.ops import compute_padding

    h, w = frames[0].shape[-2:]
    pad, _ = compute_padding(h, w, min_div=SSF_PAD)
    padded = [F.pad(x, pad, mode="constant", value=0) for x in frames]
    ph, pw = padded[0].shape[-2:]
    with torch.inference_mode():
        c0, t = _cpu_self(), time.perf_counter()
        strings, shapes = net.compress(padded)
        t_c, c_c = time.perf_counter() - t, _cpu_self() - c0
        c0, t = _cpu_self(), time.perf_counter()
        rec = net.decompress(strings, shapes)
        t_d, c_d = time.perf_counter() - t, _cpu_self() - c0
    assert len(rec) == len(frames)

    def nbytes(obj) -> int:
        if isinstance(obj, (bytes, bytearray)):
            return len(obj)
        if isinstance(obj, dict):
            return sum(nbytes(v) for v in obj.values())
        return sum(nbytes(v) for v in obj)

    n = len(frames)
    return {"codec": "ssf2020", "trained": False, "frames": n, "coded_size": f"{pw}x{ph}",
            "bytes": nbytes(strings), "compress_s": t_c, "decompress_s": t_d,
            "compress_cpu_s": c_c, "decompress_cpu_s": c_d,
            "compress_fps": n / t_c, "decompress_fps": n / t_d}


def rss_runs(src: Path, work: Path, quality: int, structure: str, threads: int) -> dict:
    code = _RSS_CHILD.format(repo=str(REPO), threads=threads)
    binf, out = work / "rss.bin", work / "rss.y4m"
    enc, enc_wall = _run_json([sys.executable, "-c", code, "encode", str(src), str(binf),
                               str(quality), structure], threads, 3600)
    dec, dec_wall = _run_json([sys.executable, "-c", code, "decode", str(binf), str(out),
                               str(quality), structure], threads, 3600)
    out.unlink(missing_ok=True)
    return {"quality": quality, "structure": structure,
            "encode_rss_mb": enc["rss_mb"],
            "encode_s_in_child": enc["seconds"], "encode_wall_s": enc_wall,
            "decode_rss_mb": dec["rss_mb"],
            "decode_s_in_child": dec["seconds"], "decode_wall_s": dec_wall}


# ----------------------------------------------------------------------------- report


def _f(x, fmt: str = ".2f") -> str:
    return "—" if x is None else format(x, fmt)


def markdown(res: dict) -> str:
    cfg = res["config"]
    lines = [(f"Clip `{Path(cfg['clip']).name}`, first {cfg['frames']} frames scaled (bicubic) to each "
             f"size; {cfg['threads']} threads (torch and ffmpeg); {cfg['cpu_count']} CPU cores; "
             f"{res['started_utc']} to {res.get('finished_utc', '(unfinished)')}."), ""]
    st = res.get("startup")
    if st:
        lines += [f"| start-up (fresh process, median of {st['repeats']}) | seconds |", "|---|---|",
                  f"| decoder: interpreter + imports + `zoo.load_decoders()` (wall) | {st['wall_s_median']:.2f} |",
                  f"| of which imports (in process) | {st['import_s_median']:.2f} |",
                  f"| of which decoder load | {st['load_s_median']:.2f} |",
                  *([(f"| encoder: interpreter + imports + `zoo.load_encoders()` (wall) | "
                      f"{st['encoder']['wall_s_median']:.2f} |"),
                     (f"| of which encoder load | "
                      f"{st['encoder']['load_s_median']:.2f} |")] if "encoder" in st else []),
                  f"| reference: `python -c 'import torch'` (wall) | {_f(st.get('torch_only_wall_s_median'))} |",
                  f"| `mcodec --help` (wall) | {_f(st['help_wall_s_median'])} |",
                  f"| target | ≤ {TARGET_STARTUP_S} |", ""]
    for size in res["sizes"]:
        s = res["by_size"].get(size)
        if not s:
            continue
        ssf = s.get("ssf2020")
        lines += [(f"### {size}, {s['frames']} frames (load average before {s['load_before']}, "
                  f"after {s.get('load_after', '?')})"), ""]
        if ssf:
            lines += [(f"ssf2020 (untrained, coded at {ssf['coded_size']}): compress "
                      f"{ssf['compress_fps']:.3f} fps, decompress {ssf['decompress_fps']:.3f} fps "
                      f"({ssf['bytes']} bytes)."), ""]
        lines += [("| structure | q | kbps | PSNR-YUV | upper-layer frames (2x or fine) | encode fps | decode fps | "
                  "enc / 10 | dec / 25 | enc / ssf compress | dec / ssf decompress |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in s["mcodec"]:
            ec = r["encode_fps"] / ssf["compress_fps"] if ssf else None
            dc = r["decode_fps"] / ssf["decompress_fps"] if ssf else None
            lines.append(f"| {r['structure']} | {r['quality']} | {r['kbps']:.0f} | {r['psnr_yuv']:.2f} | "
                         f"{r['frames_2x']}/{r['frames']} | {r['encode_fps']:.3f} | {r['decode_fps']:.3f} | "
                         f"{r['encode_fps'] / TARGET_ENCODE_FPS:.4f} | {r['decode_fps'] / TARGET_DECODE_FPS:.4f} | "
                         f"{_f(ec, '.3f')} | {_f(dc, '.3f')} |")
        for sk in s["skipped"]:
            lines.append(f"| {sk['structure']} | {sk['quality']} | skipped: {sk['why']} | | | | | | | | |")
        lines += ["", ("| codec | config | kbps | encode fps (wall) | encode fps (ffmpeg rtime) | "
                  "decode fps (wall) | decode fps (ffmpeg rtime) |"), "|---|---|---|---|---|---|---|"]
        for a in s["anchors"]:
            lines.append(f"| {a['codec']} medium | {a['config']} CRF {a['crf']:.0f} | {a['kbps']:.0f} | "
                         f"{a['encode_fps']:.1f} | {_f(a['encode_fps_rtime'], '.1f')} | "
                         f"{a['decode_fps']:.1f} | {_f(a['decode_fps_rtime'], '.1f')} |")
        if ssf:
            lines.append(f"| ssf2020 (untrained) | {ssf['coded_size']} | — | {ssf['compress_fps']:.3f} | — | "
                         f"{ssf['decompress_fps']:.3f} | — |")
        rss = s.get("rss")
        if rss:
            lines += ["", (f"Peak RSS (own process, quality {rss['quality']} {rss['structure']}): encode "
                          f"{rss['encode_rss_mb']:.0f} MB, decode {rss['decode_rss_mb']:.0f} MB "
                          "(the Python process; the ffmpeg reader/writer not included).")]
        lines.append("")
    if res.get("skipped_total"):
        lines += [f"Skipped: {len(res['skipped_total'])} mcodec runs (listed above and in the JSON)", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default=str(DEFAULT_CLIP))
    ap.add_argument("--sizes", default="416x240,1280x720")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--qualities", default="all", help="'all' or a comma list, e.g. 0,3,6")
    ap.add_argument("--structures", default="randomaccess,lowdelay")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="model table id (default: the default model; "
                                                   "the start-up runs always load the default)")
    ap.add_argument("--skip-720p-mcodec-above", type=int, default=None, metavar="Q",
                    help="at sizes of 1280x720 pixels or more, time mcodec only at qualities <= Q "
                         "(the skipped runs are listed)")
    ap.add_argument("--rss-quality", type=int, default=None,
                    help="quality of the peak-RSS encode/decode (default: the highest one timed at that size)")
    ap.add_argument("--repeats", type=int, default=3, help="start-up measurements")
    ap.add_argument("--no-startup", action="store_true")
    ap.add_argument("--startup-only", action="store_true", help="time the start-up only")
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--no-ssf", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here (also after every size)")
    ap.add_argument("--markdown", default=None, help="write the tables here")
    args = ap.parse_args()

    import compressai
    import torch

    from mcodec.codec import bitstream as bs
    from mcodec.codec import codec, zoo
    from mcodec.codec import ffmpeg as ff
    from mcodec.codec.ladder import quality_ladder
    from mcodec.codec.options import EncodeOptions
    from mcodec.eval import anchors

    torch.set_num_threads(args.threads)
    entry = zoo.get_model(args.model)
    n_q = len(quality_ladder(entry.quality_levels))
    qualities = list(range(n_q)) if args.qualities == "all" else [int(q) for q in args.qualities.split(",")]
    bad = [q for q in qualities if not 0 <= q < n_q]
    if bad:
        raise SystemExit(f"qualities {bad} outside 0..{n_q - 1}")
    structures = [s.strip() for s in args.structures.split(",") if s.strip()]
    sizes = _parse_sizes(args.sizes)

    res: dict = {
        "started_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "config": {"clip": args.clip, "sizes": [f"{w}x{h}" for w, h in sizes], "frames": args.frames,
                   "qualities": qualities, "structures": structures, "threads": args.threads,
                   "torch_threads": torch.get_num_threads(), "skip_720p_mcodec_above": args.skip_720p_mcodec_above,
                   "cpu_count": os.cpu_count(), "platform": platform.platform(),
                   "python": platform.python_version(), "torch": torch.__version__,
                   "compressai": compressai.__version__, "ffmpeg": ff.ffmpeg_version(),
                   "model": entry.model_id, "anchor_crf": ANCHOR_CRF, "ssf_pad": SSF_PAD,
                   "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])},
        "targets": {"decode_fps": TARGET_DECODE_FPS, "encode_fps": TARGET_ENCODE_FPS,
                    "vs_ssf2020": TARGET_VS_SSF, "startup_s": TARGET_STARTUP_S,
                    "rss_720p_mb": TARGET_RSS_720P_MB},
        "sizes": [f"{w}x{h}" for w, h in sizes], "by_size": {}, "skipped_total": [],
    }

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        if args.markdown:
            Path(args.markdown).write_text(markdown(res))

    if not args.no_startup:
        _log("start-up")
        res["startup"] = time_startup(args.threads, args.repeats)
        save()
    if args.startup_only:
        res["finished_utc"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        save()
        return
    t = time.perf_counter()
    nets = zoo.load_encoders(entry.model_id)  # what `mcodec encode` encodes with
    res["network_load_in_process_s"] = time.perf_counter() - t
    decoders = zoo.load_decoders(entry.model_id)  # what `mcodec decode` decodes with
    ssf_net = None
    if not args.no_ssf:
        ssf_net, t_build, params = build_ssf()
        res["ssf2020_build_s"], res["ssf2020_params"] = t_build, params

    with tempfile.TemporaryDirectory(prefix="mcodec_speed_") as tmp:
        work = Path(tmp)
        warm = False
        for w, h in sizes:
            key = f"{w}x{h}"
            src = work / f"src_{key}.y4m"
            make_y4m(ff, args.clip, (w, h), args.frames, args.threads, src)
            from mcodec.codec.video_io import open_video
            with open_video(str(src)) as r:
                n = sum(1 for _ in r)
                fps = float(r.info.fps)
            s = res["by_size"][key] = {"frames": n, "load_before": [round(x, 2) for x in os.getloadavg()],
                                       "mcodec": [], "skipped": [], "anchors": []}
            if not warm:
                _log("warm-up")
                wsrc = work / "warm.y4m"
                make_y4m(ff, args.clip, (w, h), 2, args.threads, wsrc)
                codec.encode(str(wsrc), str(work / "warm.bin"), options=EncodeOptions(quality=0),
                             networks=nets, overwrite=True)
                codec.decode(str(work / "warm.bin"), str(work / "warm_out.y4m"), networks=decoders,
                             overwrite=True)
                if ssf_net is not None:
                    time_ssf(ssf_net, read_rgb(ff, wsrc, w, h, args.threads))
                warm = True
            big = w * h >= 1280 * 720
            for structure in structures:
                for q in qualities:
                    if big and args.skip_720p_mcodec_above is not None and q > args.skip_720p_mcodec_above:
                        sk = {"size": key, "structure": structure, "quality": q,
                              "why": f"--skip-720p-mcodec-above {args.skip_720p_mcodec_above}"}
                        s["skipped"].append(sk)
                        res["skipped_total"].append(sk)
                        continue
                    _log(f"{key} mcodec {structure} q{q}")
                    r = time_mcodec(codec, bs, EncodeOptions, nets, decoders, src, work, n, q, structure)
                    s["mcodec"].append(r)
                    _log(f"  enc {r['encode_fps']:.3f} fps, dec {r['decode_fps']:.3f} fps, "
                         f"{r['kbps']:.0f} kbps, upper layer {r['frames_2x']}")
                    save()
            for name in ("x264", "x265"):
                for config in ("lowdelay", "randomaccess"):
                    _log(f"{key} {name} {config}")
                    s["anchors"].append(time_anchor(ff, anchors, name, config, src, work, n, fps,
                                                             args.threads))
            save()
            if ssf_net is not None:
                _log(f"{key} ssf2020")
                s["ssf2020"] = time_ssf(ssf_net, read_rgb(ff, src, w, h, args.threads))
                save()
            if not args.no_rss and s["mcodec"]:
                timed = [r["quality"] for r in s["mcodec"]]
                q = args.rss_quality if args.rss_quality is not None else max(timed)
                _log(f"{key} peak RSS (quality {q})")
                s["rss"] = rss_runs(src, work, q, structures[0], args.threads)
            s["load_after"] = [round(x, 2) for x in os.getloadavg()]
            save()
    res["finished_utc"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    save()
    print(markdown(res))


if __name__ == "__main__":
    main()
