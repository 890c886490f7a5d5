"""Per quality: mean and largest container overhead per frame, masked-patch and masked-frame shares
of the mcodec streams in bench cache folders.

    python benchmarks/stream_stats_by_quality.py bench_out/RUN [bench_out/RUN2 ...]
"""
import collections
import glob
import json
import sys

sys.path.insert(0, "benchmarks")
from stream_stats import stream_stats

rows = collections.defaultdict(list)
for d in sys.argv[1:]:
    for f in glob.glob(f"{d}/cache/*.json"):
        r = json.load(open(f))["result"]
        if r["codec"] != "mcodec": continue
        s = stream_stats(f.replace(".json", ".bin"))
        rows[int(r["point"])].append((r["clip"], s))
print("q | mean overhead B/frame | max | masked patches | masked frames")
for q in sorted(rows):
    ss = [s for _, s in rows[q]]
    fr = sum(s["frames"] for s in ss)
    print(q, round(sum(s["mean_overhead"]*s["frames"] for s in ss)/fr, 2), max(s["max_overhead"] for s in ss),
          f'{100*sum(s["masked_patch_share"] for s in ss)/len(ss):.1f}%', f'{100*sum(s["masked_frame_share"] for s in ss)/len(ss):.1f}%', len(ss))
