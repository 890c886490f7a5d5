"""RD and speed of `--preset fast|medium|slow` on training clips, in one process.

    python benchmarks/presets.py [--frames 9] [--qualities 0,2,4,6,8] [--threads 2] [--json OUT]

Clips: the tuning clips of `benchmarks/tune_encoder.py` (carphone, a 320x272 cut
of bikes, a 320x240 cut of bigbuckbunny; training material only). Each preset
encodes each clip at each quality (random access, the default); the stream is
decoded, rate is its file size, PSNR-YUV is measured on the decoded frames
(`mcodec.eval.metrics.sequence_metrics`). Reported: BD-rate (PCHIP, PSNR-YUV)
of fast and slow against medium per clip and their mean, and encode / decode
frames per second summed over the clip's points.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--qualities", default="0,2,4,6,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import torch
    from tune_encoder import training_clips

    from mcodec.codec import codec, zoo
    from mcodec.codec.options import PRESETS, EncodeOptions, preset_tuning
    from mcodec.codec.video_io import open_video
    from mcodec.eval.bdrate import bd_rate
    from mcodec.eval.metrics import sequence_metrics

    torch.set_num_threads(args.threads)
    nets = zoo.load_networks()
    qualities = [int(q) for q in args.qualities.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clips = training_clips(d, args.frames)
        for clip in clips:
            for q in qualities:
                for preset in PRESETS:
                    binf, out = d / "s.bin", d / "o.y4m"
                    t = time.perf_counter()
                    enc = codec.encode(clip, str(binf), options=EncodeOptions(quality=q, tuning=preset_tuning(preset)),
                                       networks=nets, overwrite=True)
                    t_enc = time.perf_counter() - t
                    t = time.perf_counter()
                    codec.decode(str(binf), str(out), networks=nets, overwrite=True)
                    t_dec = time.perf_counter() - t
                    with open_video(clip) as a, open_video(str(out)) as b:
                        m = sequence_metrics(a, b, msssim=False)
                    row = {"clip": Path(clip).stem, "quality": q, "preset": preset, "frames": enc.frames,
                           "kbps": binf.stat().st_size * 8 * float(enc.fps) / 1000 / enc.frames,
                           "psnr_yuv": m.psnr_yuv, "encode_s": t_enc, "decode_s": t_dec}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    summary: dict = {"per_clip": {}}
    for clip in sorted({r["clip"] for r in rows}):
        def curve(preset: str, clip: str = clip) -> tuple[list[float], list[float]]:
            r = [x for x in rows if x["clip"] == clip and x["preset"] == preset]
            return [x["kbps"] for x in r], [x["psnr_yuv"] for x in r]

        entry = {}
        for preset in PRESETS:
            r = [x for x in rows if x["clip"] == clip and x["preset"] == preset]
            n = sum(x["frames"] for x in r)
            entry[preset] = {"encode_fps": n / sum(x["encode_s"] for x in r),
                             "decode_fps": n / sum(x["decode_s"] for x in r)}
            if preset != "medium":
                try:
                    entry[preset]["bd_rate_vs_medium"] = bd_rate(*curve("medium"), *curve(preset)).value
                except ValueError as exc:
                    entry[preset]["bd_rate_vs_medium"] = f"n/a ({exc})"
        summary["per_clip"][clip] = entry
    for preset in PRESETS:
        per = [summary["per_clip"][c][preset] for c in summary["per_clip"]]
        summary[preset] = {
            "encode_fps_mean": statistics.mean(p["encode_fps"] for p in per),
            "decode_fps_mean": statistics.mean(p["decode_fps"] for p in per),
        }
        vals = [p.get("bd_rate_vs_medium") for p in per]
        if preset != "medium" and all(isinstance(v, float) for v in vals):
            summary[preset]["bd_rate_vs_medium_mean"] = statistics.mean(vals)
    summary.update(frames=args.frames, qualities=qualities, threads=args.threads)
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
