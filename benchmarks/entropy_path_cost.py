"""Rate-distortion cost of mcodec's deterministic entropy path (issue: cross-platform exactness).

    python benchmarks/entropy_path_cost.py [--images 8] [--qualities 1,4,7] [--model ID]

For key frames (the intra network) on Kodak images, compares two ways to get the
entropy parameters from the same latent:

* float:  the hyper-decoder and checkerboard context in float (continuous
  means and scales, CompressAI's usual path; not reproducible across machines);
* grid:   mcodec's coding path: float64 networks, means snapped to 1/64,
  log-scales rounded to the 64-entry table index, symbols clamped into the
  escape-free tables (bit-exact everywhere).

Rate is -log2 of the likelihoods (bits) for both, plus the real rANS size of
the grid path; distortion is PSNR-YUV (6:1:1) of the synthesis output. The
cost of exactness is the relative rate and PSNR difference grid vs float.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch
    from mcodec.codec import zoo
    from mcodec.codec import entropy as ent
    from mcodec.codec import latent_decoder as ld
    from mcodec.codec import model as mdl
    from mcodec.codec import packing
    from mcodec.codec.video_io import open_video

    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--qualities", default="1,4,7")
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "images" / "kodak"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    net = zoo.load_networks(args.model).intra
    files = sorted(Path(args.data).glob("*.png"))[:args.images]
    qs = [int(q) for q in args.qualities.split(",")]
    rows = {q: [] for q in qs}
    for f in files:
        with open_video(str(f)) as r:
            frame = next(iter(r))
        x, geo = packing.yuv420_to_tensor(*frame.planes())
        pixels = frame.width * frame.height
        for q in qs:
            with torch.no_grad():
                y, z_sym, hs64 = net.analyse(x, q)
                # grid path (what is coded)
                p, _ = ld.coding_params(net, hs64, y)
                _, yh_g = ent.quantize_to_tables(net.gaussian_conditional, y, p)
                lik_g = net.likelihood_lower_bound(mdl._gaussian_likelihood(yh_g - p.means, p.scales))
                bits_g = float(-torch.log2(lik_g).sum())
                # float path: same networks, continuous parameters
                m0, ls0 = hs64.chunk(2, dim=1)
                yh0 = torch.round(y.double() - m0) + m0
                a = ld.anchor_mask(y.shape[2], y.shape[3])
                ctx = mdl._run_float64(net.cb_ctx, yh0 * a)
                out1 = hs64 + mdl._run_float64(net.cb_ep, torch.cat([hs64, ctx], dim=1))
                m1, ls1 = out1.chunk(2, dim=1)
                means = torch.where(a, m0, m1)
                scales = torch.exp(torch.where(a, ls0, ls1)).clamp(ent.SCALE_MIN, ent.SCALE_MAX)
                yh_f = torch.round(y.double() - means) + means
                lik_f = mdl._gaussian_likelihood(yh_f - means, scales).clamp_min(1e-9)
                bits_f = float(-torch.log2(lik_f).sum())
                comp = net.compress(x, q, reconstruct=True)
                real_y = 8 * sum(len(s) for s in comp.strings[:-1])
                gain = torch.exp(net.log_inv_gain[q].double()).view(1, -1, 1, 1)
                xf = mdl._run_float64(net.g_s, yh_f * gain).clamp(0, 1)
                xf = torch.round(xf * 255) / 255
                ps = []
                for xh in (comp.x_hat.double(), xf):
                    mse = float(mdl.mse_yuv(xh[..., :x.shape[2], :x.shape[3]].float(), x).mean())
                    ps.append(10 * math.log10(1 / mse))
            rows[q].append((bits_f / pixels, bits_g / pixels, real_y / pixels, ps[1], ps[0]))
    print(f"{len(files)} Kodak images, model {args.model or 'default'}; y latent only (z identical)")
    print(" q | bpp float | bpp grid (est) | bpp grid (rANS) | rate grid/float | PSNR float | PSNR grid")
    for q in qs:
        r = np.array(rows[q]).mean(axis=0)
        print(f"{q:2d} | {r[0]:9.4f} | {r[1]:14.4f} | {r[2]:15.4f} | {100 * (r[1] / r[0] - 1):+14.2f}% "
              f"| {r[3]:10.3f} | {r[4]:9.3f}")


if __name__ == "__main__":
    main()
