"""`mcodec demo`, the README's main command, through the real command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcodec.codec import bitstream as bs

from .conftest import read_frames

FRAMES, QUALITY = 3, 1          # small and at 1x: the whole run takes seconds
NUMBER = r"(\d+(?:\.\d+)?)"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcodec.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("demo") / "new" / "out"      # created by the demo
    done = run_cli("demo", "--frames", str(FRAMES), "--quality", str(QUALITY), "--out", str(out))
    return done, out


def test_demo_writes_what_it_promises(demo) -> None:
    done, out = demo
    assert done.returncode == 0, done.stderr
    stream, decoded = out / f"mcodec_q{QUALITY}.bin", out / "demo_mcodec.y4m"
    assert sorted(p.name for p in out.iterdir()) == sorted([stream.name, decoded.name])
    assert f"mcodec's decoded frames: {decoded}" in done.stdout
    frames = read_frames(decoded)
    assert len(frames) == FRAMES and (frames[0].width, frames[0].height) == (176, 144)
    units = bs.read_bitstream(str(stream)).frames
    assert len(units) == FRAMES
    # The decoded file is the stream's reconstruction: every frame's check matches
    # (the first 3 bytes of its hash; frames are in display order).
    checks = {unit.display: unit.frame_hash for unit in units}
    for i, frame in enumerate(frames):
        assert bs.frame_hash(*frame.planes())[:3] == checks[i]


def test_demo_table_has_both_codecs_with_numbers(demo) -> None:
    done, _ = demo
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("sample: carphone_pristine.mp4 (176x144, 3 frames")
    rows = {}
    for codec, setting in (("mcodec", rf"quality {QUALITY}"), ("x265", r"CRF \d+")):
        found = [re.fullmatch(rf"{codec}\s+{setting}\s+(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", ln)
                 for ln in lines]
        found = [m for m in found if m]
        assert len(found) == 1, f"no {codec} row in:\n{done.stdout}"
        nbytes, kbps, psnr, seconds = map(float, found[0].groups())
        assert nbytes > 0 and kbps > 0 and 15 < psnr < 100 and seconds >= 0
        rows[codec] = nbytes
    # x265 was searched to a similar rate (within a factor of 3 on 3 frames).
    assert 1 / 3 < rows["x265"] / rows["mcodec"] < 3


@pytest.mark.parametrize("args, message", [
    (["--quality", "99"], "--quality must be in 0.."),
    (["--frames", "0"], "--frames must be >= 1"),
    (["--out", "{file}"], "is not a folder"),
])
def test_demo_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    afile = tmp_path / "a_file"
    afile.write_text("x")
    args = [a.replace("{file}", str(afile)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    done = run_cli("demo", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcodec: error:") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert afile.read_text() == "x" and not (tmp_path / "out").exists()
