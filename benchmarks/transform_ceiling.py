"""Quality ceiling of the intra transforms: how well g_s(g_a(x)) reconstructs without quantization.

    python benchmarks/transform_ceiling.py [CLIP_OR_FOLDER ...] [--qualities 0,3,7] [--model ID]

For the first frame of each clip (default: every clip of ../shared/data/clips),
prints PSNR-Y of

* continuous: the synthesis of the unquantized latent (the transforms alone;
  no rate spent can do better than this),
* coded: the eval-mode forward pass (the real coding path) and its bpp.

When `coded` approaches `continuous` at the top quality while the rate keeps
growing, the codec is capped by its transforms, not by its entropy model:
more capacity or training is the fix, not more bits.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser()
    ap.add_argument("clips", nargs="*", default=[str(REPO.parent / "shared/data/clips")])
    ap.add_argument("--qualities", default="0,3,7")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    import torch

    from mcodec.codec import packing
    from mcodec.codec.zoo import load_networks
    from mcodec.codec.video_io import open_video
    from mcodec.eval.bench import resolve_clips

    torch.set_num_threads(2)
    files = resolve_clips(args.clips)
    net = load_networks(args.model).intra
    qualities = [int(q) for q in args.qualities.split(",")]
    print("clip | " + " | ".join(f"q{q} continuous / coded dB (bpp)" for q in qualities))
    for f in files:
        with open_video(str(f), max_frames=1) as reader:
            frame = next(iter(reader))
        x, _ = packing.yuv420_to_tensor(frame.y, frame.u, frame.v)
        h, w = frame.y.shape
        luma = x[:, :4, :(h + 1) // 2, :(w + 1) // 2]  # compare on the unpadded area only

        def psnr_y(x_hat: torch.Tensor) -> float:
            err = (x_hat[:, :4, :luma.shape[2], :luma.shape[3]] - luma) ** 2
            return 10 * math.log10(1.0 / err.mean().item())

        cells = []
        with torch.no_grad():
            for q in qualities:
                latent = net.g_a(x) * net._gain(net.log_gain, q)
                cont = net.g_s(latent * net._gain(net.log_inv_gain, q)).clamp(0, 1)
                out = net.forward(x, q)
                bpp = out.bits.item() / (h * w)
                cells.append(f"{psnr_y(cont):.2f} / {psnr_y(out.x_hat):.2f} ({bpp:.3f})")
        print(f"{f.stem} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
