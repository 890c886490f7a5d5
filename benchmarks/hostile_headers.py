"""Time and peak memory of `mcodec decode` on streams whose valid-CRC headers lie.

    python benchmarks/hostile_headers.py

Each case is a real stream whose sequence header is patched (CRC recomputed,
so the lie reaches the parser's limit checks) and decoded by the CLI in a
fresh process; the reference is the same process doing nothing but importing
the CLI. Prints wall time and peak RSS (VmHWM of the child, Linux) per case.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
import zlib
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _patch_header(data: bytes, field_offset: int, fmt: str, value: int) -> bytes:
    """Patch a sequence-header field (offset inside the payload) and fix the header CRC."""
    b = bytearray(data)
    struct.pack_into(fmt, b, 16 + field_offset, value)
    (length,) = struct.unpack_from(">I", b, 12)
    struct.pack_into(">I", b, 16 + length, zlib.crc32(bytes(b[8:16 + length])))
    return bytes(b)


_WRAPPER = """
import sys, time
t = time.perf_counter()
code = 0
try:
    exec(sys.argv[1])
except SystemExit as e:
    code = e.code or 0
finally:
    # VmHWM (peak RSS of this address space); ru_maxrss would include the parent's before exec
    hwm = [l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
    print("BENCH", code, time.perf_counter() - t, int(hwm) / 1024, file=sys.stderr)
"""


def _child(code: str, *args: str) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS MiB, first stderr line) of `code` run in a fresh interpreter."""
    r = subprocess.run([sys.executable, "-c", _WRAPPER, code, *args], capture_output=True, text=True,
                       cwd=REPO)
    lines = r.stderr.strip().splitlines()
    _, exit_code, seconds, rss = lines[-1].split()
    return int(exit_code), float(seconds), float(rss), (lines[0] if len(lines) > 1 else "")


def main() -> None:
    sys.path.insert(0, str(REPO))
    from mcodec.codec import codec
    from mcodec.codec.frame import Frame
    from mcodec.codec.options import EncodeOptions
    from mcodec.codec.video_io import open_writer
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rng = np.random.default_rng(0)
        with open_writer(str(d / "in.y4m"), 64, 48, Fraction(25)) as w:
            for _ in range(3):
                w.write(Frame(rng.integers(0, 256, (48, 64), np.uint8),
                              np.full((24, 32), 128, np.uint8), np.full((24, 32), 128, np.uint8)))
        codec.encode(str(d / "in.y4m"), str(d / "ok.bin"), options=EncodeOptions(quality=0))
        ok = (d / "ok.bin").read_bytes()
        cases = {
            "valid 64x48, 3 frames": ok,
            "100000x100000": _patch_header(_patch_header(ok, 0, ">I", 100000), 4, ">I", 100000),
            "16384x4096 (container max pixels)": _patch_header(_patch_header(ok, 0, ">I", 16384), 4, ">I", 4096),
            "frame_count 2^40": _patch_header(ok, 16, ">Q", 2**40),
        }
        cli = "from mcodec.cli.main import main; sys.exit(main(sys.argv[2:]))"
        code, sec, rss, _ = _child("import mcodec.cli.main, torch, compressai")
        print(f"{'reference: import CLI, torch, compressai':40s} exit {code}  {sec:6.3f} s  {rss:7.1f} MiB")
        for name, data in cases.items():
            path = d / "case.bin"
            path.write_bytes(data)
            out = d / "out.y4m"
            out.unlink(missing_ok=True)
            code, sec, rss, msg = _child(cli, "-q", "decode", str(path), str(out), "-y")
            print(f"{name:40s} exit {code}  {sec:6.3f} s  {rss:7.1f} MiB  {msg[:110]}")


if __name__ == "__main__":
    main()
