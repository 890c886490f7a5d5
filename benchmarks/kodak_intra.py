"""Key-frame (intra network) rate and quality on Kodak-24, every quality level.

    python benchmarks/kodak_intra.py [--model ID] [--images 24]

Kodak is evaluation data only (never trained or tuned on). Each image is coded
as a key frame through the codec's exact path (`IntraCodec.compress`: real rANS
strings, bit-exact reconstruction); rate = bytes of all its strings, PSNR-YUV =
(6·Y+U+V)/8 on the 8-bit 4:2:0 planes, against the image converted to yuv420p
by ffmpeg. Prints mean bpp and mean PSNR-YUV per level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    from mcodec.codec import zoo
    from mcodec.codec import packing
    from mcodec.codec.frame import Frame
    from mcodec.codec.video_io import open_video
    from mcodec.codec.distortion import frame_psnr_yuv

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/images/kodak"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    nets = zoo.load_networks(args.model)
    frames = []
    for f in sorted(Path(args.data).glob("*.png"))[:args.images]:
        with open_video(str(f)) as r:
            frames.append(next(iter(r)))
    print(f"Kodak ({len(frames)} images), model {nets.model_id}, key frames (intra network)")
    print("quality |    bpp | PSNR-YUV dB")
    for q in range(nets.levels):
        bpp, psnr = [], []
        for fr in frames:
            x, geo = packing.yuv420_to_tensor(*fr.planes())
            comp = nets.intra.compress(x, q)
            bpp.append(8 * sum(len(s) for s in comp.strings) / (fr.width * fr.height))
            psnr.append(frame_psnr_yuv(fr, Frame(*packing.tensor_to_yuv420(comp.x_hat, geo))))
        print(f"{q:7d} | {np.mean(bpp):.4f} | {np.mean(psnr):.2f}")


if __name__ == "__main__":
    main()
