"""Does the intra network's masked-latent fill-in earn its place in restore's spatial fallback?

    python benchmarks/spatial_fill.py [--images 12] [--boxes 3]

On TRAINING photos (images/train/cbsd68 and mcmaster; never Kodak or the development
clips): random boxes of 5-20 % of the picture are hidden and rebuilt by push-pull alone
(`fill.push_pull`) and by the intra network at its top level and at level 4 after the
push-pull prefill (`fill.fill_spatial(..., nets)`), scored as PSNR-Y over the hidden pixels
(MSE pooled over all boxes). The spatial fill is restore's fallback for a region that no
frame within the window shows; the temporal rebuild does not use the network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--boxes", type=int, default=3)
    args = ap.parse_args()
    from mcodec.codec import fill, zoo
    from mcodec.codec.video_io import open_video

    nets = zoo.load_networks()
    root = REPO.parent / "shared/data/images/train"
    photos = sorted((root / "cbsd68").glob("*.png"))[: args.images // 2] + \
        sorted((root / "mcmaster").glob("*"))[: args.images - args.images // 2]
    rng = np.random.default_rng(0)
    sse = {"push-pull": 0.0, f"network L{nets.levels - 1}": 0.0, "network L4": 0.0}
    count = 0
    for path in photos:
        with open_video(str(path)) as r:
            f = next(iter(r))
        h, w = f.height, f.width
        for _ in range(args.boxes):
            area = rng.uniform(0.05, 0.20) * h * w
            bh = int(min(h - 4, np.sqrt(area * rng.uniform(0.6, 1.6))))
            bw = int(min(w - 4, area / bh))
            y0, x0 = int(rng.integers(2, h - bh - 1)), int(rng.integers(2, w - bw - 1))
            hidden = np.zeros((h, w), bool)
            hidden[y0:y0 + bh, x0:x0 + bw] = True
            outs = {"push-pull": fill.fill_spatial(f, hidden),
                    f"network L{nets.levels - 1}": fill.fill_spatial(f, hidden, nets),
                    "network L4": fill.fill_spatial(f, hidden, nets, quality=4)}
            for k, o in outs.items():
                sse[k] += float(((o.y.astype(np.float64) - f.y) ** 2)[hidden].sum())
            count += int(hidden.sum())
    print(f"{len(photos)} photos x {args.boxes} boxes, {count} hidden luma pixels")
    for k, v in sse.items():
        print(f"  {k:12s} PSNR-Y {10 * np.log10(255 ** 2 / (v / count)):.2f} dB")


if __name__ == "__main__":
    main()
