"""Two models of the table against each other on training video: BD-rate and speed.

    python benchmarks/model_compare.py [--anchor mcodec-s3] [--test mcodec-s3i] [--frames 9]
        [--qualities all] [--structure randomaccess] [--threads 2] [--json OUT]

The same encoder runs with each model on each training clip at each quality; each
stream is decoded, rate is the file size and PSNR-YUV is measured on the decoded
frames against the source (`mcodec.eval.metrics.sequence_metrics`, the bench's
metric path). Reported: per-clip BD-rate (PCHIP, PSNR-YUV) of `--test` against
`--anchor`, and the encode- and decode-time ratios anchor / test in the same
process. The defaults measure what the exact integer networks cost against the
float64 path (mcodec-s3i against mcodec-s3; `docs/perf/intsynth_cost.json`).

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
    ap.add_argument("--anchor", default="mcodec-s3")
    ap.add_argument("--test", default="mcodec-s3i")
    ap.add_argument("--structure", default="randomaccess", choices=("randomaccess", "lowdelay"))
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--qualities", default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import torch

    from mcodec.codec import bitstream as bs
    from mcodec.codec import codec, zoo
    from mcodec.codec.ladder import quality_ladder
    from mcodec.codec.options import EncodeOptions
    from mcodec.codec.video_io import open_video
    from mcodec.eval.bdrate import bd_rate
    from mcodec.eval.metrics import sequence_metrics
    from mcodec.train.data import default_data_root

    torch.set_num_threads(args.threads)
    test = zoo.get_model(args.test)
    models = {args.anchor: zoo.load_networks(args.anchor), args.test: zoo.load_networks(test.model_id)}
    n_q = len(quality_ladder(test.quality_levels))
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
                    enc = codec.encode(str(src), str(binf), options=EncodeOptions(quality=q, structure=args.structure),
                                       networks=nets,
                                       overwrite=True)
                    t_enc = time.perf_counter() - t
                    t = time.perf_counter()
                    codec.decode(str(binf), str(out), networks=nets, overwrite=True)
                    t_dec = time.perf_counter() - t
                    with open_video(str(src)) as a, open_video(str(out)) as b:
                        m = sequence_metrics(a, b, msssim=False)
                    row = {"clip": name, "quality": q, "model": mid, "bytes": binf.stat().st_size,
                           "kbps": binf.stat().st_size * 8 * 25 / 1000 / enc.frames,
                           "psnr_yuv": m.psnr_yuv, "encode_s": t_enc, "decode_s": t_dec,
                           "upper_layer_frames": sum(bool(f.flags & bs.FRAME_FLAG_SCALE2)
                                                     for f in bs.read_bitstream(str(binf)).frames)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    summary = {}
    for name in CLIPS:
        def curve(mid: str, name: str = name) -> tuple[list[float], list[float]]:
            r = [x for x in rows if x["clip"] == name and x["model"] == mid]
            return [x["kbps"] for x in r], [x["psnr_yuv"] for x in r]

        try:
            bd = bd_rate(*curve(args.anchor), *curve(args.test)).value
        except ValueError as exc:
            bd = f"n/a ({exc})"
        secs = {(m, k): sum(x[k] for x in rows if x["clip"] == name and x["model"] == m)
                for m in models for k in ("encode_s", "decode_s")}
        summary[name] = {"bd_rate_percent": bd,
                         "encode_time_ratio_anchor_over_test": secs[args.anchor, "encode_s"] / secs[args.test, "encode_s"],
                         "decode_time_ratio_anchor_over_test": secs[args.anchor, "decode_s"] / secs[args.test, "decode_s"]}
    print(json.dumps({"summary": summary, "anchor": args.anchor, "test": args.test,
                      "structure": args.structure, "frames": args.frames, "qualities": qualities,
                      "threads": args.threads}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
