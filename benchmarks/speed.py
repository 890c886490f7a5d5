"""Encode/decode speed of mcodec against x265 -preset medium, in one script.

    python benchmarks/speed.py [CLIP] [--frames 32] [--threads 2] [--quality 4]

Times, on the same frames (cut once to y4m): mcodec encode and decode (shipped
model, CPU, `--threads` torch threads) and x265 medium low-delay encode (CRF 30,
the bench's x265 anchor, `--threads` threads) through the bundled ffmpeg. Prints fps and the ratios, which
are what to compare across machines (absolute fps depend on the machine's load).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))
    ap = argparse.ArgumentParser()
    ap.add_argument("clip", nargs="?", default=str(REPO.parent / "shared/data/clips/cars_320x240.mkv"))
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quality", type=int, default=4)
    args = ap.parse_args()
    import torch

    from mcodec.codec import bitstream as bs
    from mcodec.codec import codec, zoo
    from mcodec.codec.options import EncodeOptions
    from mcodec.codec.video_io import open_video, open_writer
    from mcodec.eval.anchors import anchor_codec

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        with open_video(args.clip, max_frames=args.frames) as r, \
                open_writer(str(d / "src.y4m"), r.info.width, r.info.height, r.info.fps) as w:
            for f in r:
                w.write(f)
            n, size = r.frames_read, f"{r.info.width}x{r.info.height}"
        nets = zoo.load_networks()
        t = time.perf_counter()
        enc = codec.encode(str(d / "src.y4m"), str(d / "s.bin"),
                           options=EncodeOptions(quality=args.quality), networks=nets)
        t_enc = time.perf_counter() - t
        t = time.perf_counter()
        codec.decode(str(d / "s.bin"), str(d / "out.y4m"), networks=nets)
        t_dec = time.perf_counter() - t
        n2x = sum(bool(f.flags & bs.FRAME_FLAG_SCALE2) for f in bs.read_bitstream(str(d / "s.bin")).frames)
        # The bench's own x265 low-delay anchor (medium, tune psnr, no B-frames), CRF 30.
        x265 = anchor_codec("x265", "lowdelay", threads=args.threads)
        t = time.perf_counter()
        x265.encode(d / "src.y4m", 32, 30.0, d)
        t_x265 = time.perf_counter() - t
    print(f"{Path(args.clip).name} {size}, {n} frames, {args.threads} threads, mcodec quality "
          f"{args.quality} ({enc.kbps:.0f} kbps, {n2x} of {n} frames coded at 2x)")
    print(f"mcodec encode {n / t_enc:7.2f} fps   decode {n / t_dec:7.2f} fps")
    print(f"x265 medium encode {n / t_x265:7.2f} fps (includes ffmpeg start-up)")
    print(f"ratios: mcodec encode / x265 encode = {t_x265 / t_enc:.3f}; "
          f"mcodec decode fps / clip fps = {n / t_dec / float(enc.fps):.3f}")


if __name__ == "__main__":
    main()
