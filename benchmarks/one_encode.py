"""One encode of one training clip with given EncoderTuning fields (quick what-if checks).

    python benchmarks/one_encode.py bigbuckbunny 2 "bi_group=4"
    python benchmarks/one_encode.py bikes 2 "structure='lowdelay'"

Clips as `tune_encoder.py` (training clips only: carphone_pristine, bikes, bigbuckbunny),
first 17 frames, one GOP. Prints clip, quality, the settings, bytes, PSNR-YUV, seconds.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import torch

    from mcodec.codec import codec, zoo
    from mcodec.codec.options import EncodeOptions, EncoderTuning
    from tune_encoder import training_clips, tuning_keywords

    torch.set_num_threads(1)
    nets = zoo.load_networks()
    clip, q, settings = sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else ""
    kw = tuning_keywords(settings)
    structure = kw.pop("structure", "randomaccess")
    with tempfile.TemporaryDirectory() as tmp:
        clips = {Path(c).stem: c for c in training_clips(Path(tmp), 17)}
        tuning = dataclasses.replace(EncoderTuning(), **kw)
        s = codec.encode(clips[clip], f"{tmp}/x.bin", networks=nets, overwrite=True,
                         options=EncodeOptions(quality=q, gop=17, tuning=tuning, structure=structure))
        print(clip, q, settings, s.bytes, round(s.psnr_yuv, 3), round(s.seconds, 1), flush=True)


if __name__ == "__main__":
    main()
