"""mcodec as one more codec of the bench (implements `mcodec.eval.codecs.Codec`).

It goes through the same public API as `mcodec encode` / `mcodec decode`. The
rate counts the whole .bin file (headers, index and end unit included), and
the bench scores the frames decoded from that file with the same metrics code
as every ffmpeg codec.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from pathlib import Path

from mcodec.codec.frame import Frame
from mcodec.codec.options import EncodeOptions, EncoderTuning
from mcodec.eval.codecs import Encoded


class McodecBenchCodec:
    """The shipped (or a given) mcodec model at every quality level.

    Args:
        config: the bench configuration, also mcodec's --structure ("lowdelay" or
            "randomaccess", as the ffmpeg anchors of that configuration).
        threads: torch threads while encoding.
        networks: `mcodec.codec.zoo.CodecNetworks` (default: the shipped model).
        mask: --mask mode ("auto", "off" or a ratio).
        name: the codec's name in the bench.
        tuning: the encoder's tuned constants (default: the shipped tuning); every
            field is part of the cache token, so changing any knob re-codes.
    """

    name = "mcodec"
    point_label = "quality"
    stream_format = "whole mcodec .bin file (container headers, index and end unit included)"

    def __init__(self, config: str, threads: int = 2, networks=None, mask: str | float = "auto",
                 name: str = "mcodec", tuning: EncoderTuning | None = None) -> None:
        from mcodec import __version__
        from mcodec.codec import zoo

        self.name = name
        self.config = config
        self.threads = int(threads)
        self.tuning = tuning if tuning is not None else EncoderTuning()
        self._nets = networks if networks is not None else zoo.load_encoders()
        self._mask = mask
        self.points = tuple(float(q) for q in range(len(self.tuning.quality_ladder(self._nets.levels))))
        structure = ("low delay (key frame every gop frames, P frames)" if config == "lowdelay" else
                     f"random access (key frame every gop frames, anchors every "
                     f"{self.tuning.bi_group}, hierarchical bi frames)")
        self.description = f"mcodec {__version__}, model {self._nets.model_id}, {structure}, mask {mask}"
        # Weights, structure, masking mode and the encoder's tuned constants: changing any re-codes.
        self.cache_token = repr(("mcodec", __version__, self._nets.digest.hex(), config, mask,
                                 self.tuning.key()))
        self.version = f"mcodec {__version__} ({self._nets.model_id} {self._nets.digest.hex()[:12]})"

    def encode(self, src: Path, gop: int, point: float, workdir: Path) -> Encoded:
        """Encode `src` (.y4m) at quality level `point` into workdir."""
        import torch

        from mcodec.codec import codec

        q = int(point)
        out = Path(workdir) / f"mcodec_q{q}.bin"
        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        codec.encode(str(src), str(out),
                     options=EncodeOptions(quality=q, gop=gop, mask=self._mask, structure=self.config,
                                           tuning=self.tuning),
                     networks=self._nets, overwrite=True)
        seconds = time.perf_counter() - t0
        size = out.stat().st_size
        cmd = shlex.join(["mcodec", "encode", str(src), str(out), "--quality", str(q),
                          "--gop", str(gop), "--mask", str(self._mask), "--structure", self.config,
                          "-y"])
        return Encoded(out, size, size, (cmd,), self.version, seconds)

    def decode(self, bitstream: Path, width: int, height: int) -> Iterator[Frame]:
        """Decode the file (hash-verified) frame by frame."""
        from mcodec.codec import codec

        with open(bitstream, "rb") as f:
            info, frames = codec.iter_decode(f, networks=self._nets)
            if (info.width, info.height) != (width, height):
                raise ValueError(f"{bitstream}: {info.width}x{info.height}, expected {width}x{height}")
            yield from frames
