"""Encode time of two encoder tunings, interleaved in one process (a fair ratio on a
shared machine): the same clip, quality and structure, `--reps` runs each.

    python benchmarks/ab_encode_time.py CLIP --quality 4 --frames 9 \\
        --a "bi_exact_modes=False, motion_exact=False, mask_map_bits=False" --b ""

`--a` / `--b`: EncoderTuning fields as Python keywords, as in `one_encode.py` (empty =
the shipped tuning). Prints each run's seconds, the medians and the ratio b / a, and the
two streams' sizes.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    sys.path.insert(0, str(REPO))
    import torch
    from tune_encoder import tuning_keywords

    from mcodec.codec import codec, zoo
    from mcodec.codec.options import EncodeOptions, EncoderTuning

    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("--quality", type=int, default=4)
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--structure", default="randomaccess")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--a", default="")
    ap.add_argument("--b", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nets = zoo.load_networks()
    runs: dict[str, list[float]] = {"a": [], "b": []}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps + 1):          # the first round warms up, not counted
            for name in ("a", "b"):
                opts = EncodeOptions(quality=args.quality, gop=32, frames=args.frames,
                                     structure=args.structure,
                                     tuning=dataclasses.replace(EncoderTuning(),
                                                                **tuning_keywords(getattr(args, name))))
                t0 = time.perf_counter()
                stats = codec.encode(args.clip, str(Path(tmp) / f"{name}.bin"), options=opts,
                                     networks=nets, overwrite=True)
                dt = time.perf_counter() - t0
                sizes[name] = stats.bytes
                if rep:
                    runs[name].append(dt)
                print(f"{name} rep {rep}: {dt:.2f} s, {stats.bytes} bytes", flush=True)
    ma, mb = statistics.median(runs["a"]), statistics.median(runs["b"])
    print(f"median a {ma:.2f} s, b {mb:.2f} s, b / a = {mb / ma:.3f}; bytes a {sizes['a']}, b {sizes['b']}")


if __name__ == "__main__":
    main()
