"""Per quality: mean and largest container overhead per frame, masked-patch and masked-frame
shares of the mcodec streams in bench cache folders (`stream_stats.py` per stream; the
shares are means over the streams of that quality). The overhead is given as the streams
hold it and as this version's writer frames the same frames.

    python benchmarks/stream_stats_by_quality.py bench_out/RUN [bench_out/RUN2 ...]
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_stats import stream_stats

from mcodec.codec import bitstream as bs


def main(folders: list[str]) -> None:
    rows: dict[int, list[dict]] = collections.defaultdict(list)
    for folder in folders:
        for meta in sorted(Path(folder, "cache").glob("*.json")):
            result = json.loads(meta.read_text())["result"]
            if result["codec"] == "mcodec":
                rows[int(result["point"])].append(stream_stats(str(meta.with_suffix(".bin"))))
    print(f"q | mean overhead B/frame | max | as written by format version {bs.FORMAT_VERSION}: mean | max "
          "| masked patches | masked frames | streams")
    for q in sorted(rows):
        ss = rows[q]
        frames = sum(s["frames"] for s in ss)
        print(q, round(sum(s["mean_overhead"] * s["frames"] for s in ss) / frames, 2),
              max(s["max_overhead"] for s in ss),
              round(sum(s["written_mean_overhead"] * s["frames"] for s in ss) / frames, 2),
              max(s["written_max_overhead"] for s in ss),
              f'{100 * sum(s["masked_patch_share"] for s in ss) / len(ss):.1f}%',
              f'{100 * sum(s["masked_frame_share"] for s in ss) / len(ss):.1f}%', len(ss))


if __name__ == "__main__":
    main(sys.argv[1:])
