"""What the exact integer synthesis costs in RD and gains in speed, against the float64 path.

    python benchmarks/intsynth_cost.py [--frames 9] [--qualities all] [--threads 2]

The same encoder runs twice on each training clip at each quality: with the float
model (mcodec-s3: float64 synthesis) and with its integer add-on (mcodec-s3i);
each stream is decoded, rate is the file size and PSNR-YUV is measured on the
decoded frames against the source (`mcodec.eval.metrics.sequence_metrics`, the
bench's metric path). Reported: per-clip BD-rate (PCHIP, PSNR-YUV) of s3i against
s3, and the decode-time ratio s3 / s3i in the same process, quality by quality.

Clips: training video only, not used for calibration (`mcodec.train.integerize`
calibrates on carphone, bikes, bigbuckbunny and foreman): 416x240 centre cuts of
flower_1280x720, office_1280x720 and street_1920x1080 from ``video_train/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIPS = ("flower_1280x720.264", "office_1280x720.264", "street_1920x1080.264")
SIZE = (416, 240)


def cut(src: str, dst: Path, frames: int) -> None:
    from mcodec.codec.video_io import open_video, open_writer

    w, h = SIZE
    with open_video(src, max_frames=frames) as r:
        clip = list(r)
    x0, y0 = (clip[0].width - w) // 4 * 2, (clip[0].height - h) // 4 * 2
    clip = [f.crop(x0, y0, w, h) for f in clip]
    with open_writer(str(dst), w, h, Fraction(25), overwrite=True) as out:
        for f in clip:
            out.write(f)


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--qualities", default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import torch

    from mcodec.codec import codec, zoo
    from mcodec.codec.ladder import quality_ladder
    from mcodec.codec.options import EncodeOptions
    from mcodec.codec.video_io import open_video
    from mcodec.eval.bdrate import bd_rate
    from mcodec.eval.metrics import sequence_metrics
    from mcodec.train.data import default_data_root

    torch.set_num_threads(args.threads)
    fast = zoo.get_model("mcodec-s3i")
    models = {"mcodec-s3": zoo.load_networks("mcodec-s3"), "mcodec-s3i": zoo.load_networks(fast.model_id)}
    n_q = len(quality_ladder(fast.quality_levels))
    qualities = list(range(n_q)) if args.qualities == "all" else [int(q) for q in args.qualities.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for name in CLIPS:
            src = d / (Path(name).stem + ".y4m")
            cut(str(default_data_root() / "video_train" / name), src, args.frames)
            for q in qualities:
                for mid, nets in models.items():
                    binf, out = d / "s.bin", d / "o.y4m"
                    t = time.perf_counter()
                    enc = codec.encode(str(src), str(binf), options=EncodeOptions(quality=q), networks=nets,
                                       overwrite=True)
                    t_enc = time.perf_counter() - t
                    t = time.perf_counter()
                    codec.decode(str(binf), str(out), networks=nets, overwrite=True)
                    t_dec = time.perf_counter() - t
                    with open_video(str(src)) as a, open_video(str(out)) as b:
                        m = sequence_metrics(a, b, msssim=False)
                    row = {"clip": name, "quality": q, "model": mid, "bytes": binf.stat().st_size,
                           "kbps": binf.stat().st_size * 8 * 25 / 1000 / enc.frames,
                           "psnr_yuv": m.psnr_yuv, "encode_s": t_enc, "decode_s": t_dec}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    summary = {}
    for name in CLIPS:
        def curve(mid: str, name: str = name) -> tuple[list[float], list[float]]:
            r = [x for x in rows if x["clip"] == name and x["model"] == mid]
            return [x["kbps"] for x in r], [x["psnr_yuv"] for x in r]

        try:
            bd = bd_rate(*curve("mcodec-s3"), *curve("mcodec-s3i")).value
        except ValueError as exc:
            bd = f"n/a ({exc})"
        dec = {m: sum(x["decode_s"] for x in rows if x["clip"] == name and x["model"] == m)
               for m in models}
        summary[name] = {"bd_rate_percent": bd, "decode_time_ratio_s3_over_s3i": dec["mcodec-s3"] / dec["mcodec-s3i"]}
    print(json.dumps({"summary": summary, "frames": args.frames, "qualities": qualities,
                      "threads": args.threads}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
