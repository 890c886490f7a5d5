"""What an mcodec stream spends per frame: container overhead, masked patches, masked frames.

    python benchmarks/stream_stats.py OUT.bin [OUT2.bin ...]   # one JSON line per file, then totals

Reads the files and parses every frame's side information (motion, mask map),
without running the networks. Per frame type: count, mean unit size, and
mean container overhead (unit bytes that are not segment payload: unit head,
frame fields, segment lengths, CRC), as the stream holds it and as this
version's writer frames the same frames ("written_": a version-4 stream read by
a version-5 mcodec shows what its 3-byte frame_check saves). "Masked patches" counts the patches (16x16; 8x8 in a fine upper layer)
of predicted and bi frames that send no latent (every patch of a rebuilt frame);
"masked frames" are predicted frames sent with no patch at all (rebuilt and
bi-rebuilt: motion only).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from types import SimpleNamespace

from mcodec.codec import bitstream as bs
from mcodec.codec.reconstruct import (
    FrameDecoder,
    Picture,
    forward_field,
    reference_distances,
)
from mcodec.codec.syntax import FINE_PATCH, PATCH, FrameSyntax

NAMES = {bs.FRAME_KEY: "key", bs.FRAME_INTER: "inter", bs.FRAME_REBUILT: "rebuilt",
         bs.FRAME_BI_INTER: "bi-inter", bs.FRAME_BI_REBUILT: "bi-rebuilt"}


def stream_stats(path: str) -> dict:
    """Per-frame-type sizes and overheads, masked-patch and masked-frame shares of one stream."""
    stream = bs.read_bitstream(path)
    h = stream.header
    sizes = [s.size for s in stream.unit_summaries if s.type_name == "frame"]
    by_type: dict[str, list[tuple[int, int]]] = defaultdict(list)
    masked = total = 0
    # The decoder's picture buffer, holding motion fields only (bi frames predict their
    # vectors from their future reference's field).
    version = 4 if stream.min_reader_version >= 4 else 3   # the unit layout (BitstreamReader.layout_version)
    fine = bool(h.coding.flags & bs.CODING_FLAG_FINE)   # the upper layer: fine networks at 1x
    # No networks are run: a stand-in with the layers' strides passes the decoder's checks.
    shapes = SimpleNamespace(tensor_stride=PATCH // 2, fine=SimpleNamespace(tensor_stride=FINE_PATCH // 2))
    buffer = FrameDecoder(shapes, h.width, h.height, version=version, fine=fine)  # type: ignore[arg-type]
    strings = 1 if version >= 4 else 3
    for unit, size in zip(stream.frames, sizes):
        payload = sum(len(s) for s in unit.segments)
        by_type[NAMES[unit.frame_type]].append((size, size - payload))
        upper = bool(unit.flags & bs.FRAME_FLAG_SCALE2)
        scale = 2 if upper and not fine else 1
        geo = buffer.geometry(scale, upper and fine)
        displays = buffer.references(unit)
        refs = [buffer.pictures[d] for d in displays]
        distances = reference_distances(unit.display, displays)
        direct = buffer.direct(refs, distances) if len(refs) == 2 else None
        syntax = FrameSyntax.from_segments(unit, strings, version, geo, distances, direct)
        buffer.store(unit.display, Picture(None, scale, forward_field(syntax), distances[0],  # type: ignore[arg-type]
                                           upper and fine),
                     key=unit.frame_type == bs.FRAME_KEY)
        if unit.frame_type == bs.FRAME_KEY:
            continue
        rows, cols = geo.latent_shape
        total += rows * cols
        masked += rows * cols if syntax.mask is None else int(syntax.mask.sum())
    predicted = [u for u in stream.frames if u.frame_type != bs.FRAME_KEY]
    rebuilt = [u for u in predicted if u.frame_type in (bs.FRAME_REBUILT, bs.FRAME_BI_REBUILT)]
    return {
        "file": path, "format_version": stream.format_version, "frames": len(stream.frames),
        "bytes": stream.size,
        "types": {k: {"count": len(v), "mean_bytes": sum(s for s, _ in v) / len(v),
                      "mean_overhead": sum(o for _, o in v) / len(v)} for k, v in sorted(by_type.items())},
        "mean_overhead": sum(s - sum(len(x) for x in u.segments) for u, s in zip(stream.frames, sizes))
        / max(len(sizes), 1),
        "max_overhead": max((s - sum(len(x) for x in u.segments) for u, s in zip(stream.frames, sizes)),
                            default=0),
        # FrameUnit.unit_size: the framing the current writer gives the same frame.
        "written_mean_overhead": sum(u.unit_size - sum(len(x) for x in u.segments) for u in stream.frames)
        / max(len(sizes), 1),
        "written_max_overhead": max((u.unit_size - sum(len(x) for x in u.segments) for u in stream.frames),
                                    default=0),
        "masked_patch_share": masked / total if total else 0.0,
        "masked_frame_share": len(rebuilt) / len(predicted) if predicted else 0.0,
    }


def main(paths: list[str]) -> None:
    rows = [stream_stats(p) for p in paths]
    for r in rows:
        print(json.dumps(r))
    if len(rows) > 1:
        frames = sum(r["frames"] for r in rows)
        print(json.dumps({"files": len(rows), "frames": frames,
                          "mean_overhead": sum(r["mean_overhead"] * r["frames"] for r in rows) / frames,
                          "max_overhead": max(r["max_overhead"] for r in rows)}))


if __name__ == "__main__":
    main(sys.argv[1:])
