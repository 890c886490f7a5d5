"""mcodec: learned video compression with masked autoencoders.

The Python API mirrors the command line. Attributes are imported on first use
(PEP 562), so ``import mcodec`` stays cheap and pulls in neither torch nor
compressai until coding starts.

    open_video(path, ...)        -> VideoReader   (mcodec.codec.video_io)
    open_writer(path, w, h, fps) -> VideoWriter   (mcodec.codec.video_io)
    read_bitstream(path)         -> Bitstream     (mcodec.codec.bitstream)
    inspect_bitstream(path)      -> dict          (what `mcodec info --json` prints)
    encode(src, dst, options=EncodeOptions(...)) -> EncodeSummary (mcodec.codec.codec;
                                    options and tuning: mcodec.codec.options)
    decode(src, dst, ...)        -> DecodeSummary (mcodec.codec.codec)
    run_bench(config)            -> BenchResult   (mcodec.eval.bench)
    restore(src, dst, masks=[...], drop_frames=...) -> RestoreSummary (mcodec.apps.restore)
    anomaly(src)                 -> AnomalyResult (mcodec.apps.anomaly.score_video;
                                    write_anomaly_report(result, folder) writes the files)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# name -> (module, attribute); resolved lazily by __getattr__.
_API = {
    "open_video": ("mcodec.codec.video_io", "open_video"),
    "open_writer": ("mcodec.codec.video_io", "open_writer"),
    "Frame": ("mcodec.codec.frame", "Frame"),
    "EncodeOptions": ("mcodec.codec.options", "EncodeOptions"),
    "EncoderTuning": ("mcodec.codec.options", "EncoderTuning"),
    "preset_tuning": ("mcodec.codec.options", "preset_tuning"),
    "read_bitstream": ("mcodec.codec.bitstream", "read_bitstream"),
    "inspect_bitstream": ("mcodec.codec.bitstream", "inspect"),
    "encode": ("mcodec.codec.codec", "encode"),
    "decode": ("mcodec.codec.codec", "decode"),
    "run_bench": ("mcodec.eval.bench", "run_bench"),
    "restore": ("mcodec.apps.restore", "restore"),
    "anomaly": ("mcodec.apps.anomaly", "score_video"),
    "write_anomaly_report": ("mcodec.apps.anomaly", "write_report"),
    "BenchConfig": ("mcodec.eval.bench", "BenchConfig"),
    "McodecError": ("mcodec.errors", "McodecError"),
    "BitstreamError": ("mcodec.errors", "BitstreamError"),
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'mcodec' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attr)
