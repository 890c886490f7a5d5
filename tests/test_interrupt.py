"""Ctrl-C during encode and decode: exit 130, no partial output, no stray ffmpeg.

The terminal delivers Ctrl-C to the whole foreground process group, so the
signal goes to mcodec *and* its ffmpeg children at once (os.killpg).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO


def _ffmpeg_processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if "ffmpeg" in cmd and text in cmd:
            pids.append(int(entry.name))
    return pids


def _interrupt(args: list[str], workdir: Path, wait_for: Path | None, delay: float) -> tuple[int, str]:
    """Run mcodec, send Ctrl-C to its process group once it is working; (exit code, stderr)."""
    p = subprocess.Popen([sys.executable, "-m", "mcodec.cli.main", "-q", *args], cwd=workdir,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    # wait until the work is under way (an ffmpeg child runs), then a little more
    while time.monotonic() < deadline and p.poll() is None:
        if wait_for is None or _ffmpeg_processes_mentioning(str(wait_for)):
            break
        time.sleep(0.05)
    time.sleep(delay)
    assert p.poll() is None, "finished before it could be interrupted"
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=60)
    return p.returncode, err


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_ctrl_c_during_encode_and_decode(clips_dir: Path, tmp_path: Path) -> None:
    clip = clips_dir / "cars_320x240.mkv"
    before = set(os.listdir(tmp_path))
    code, err = _interrupt(["encode", str(clip), "out.bin", "--quality", "2"], tmp_path, clip, 2.0)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "mcodec: interrupted"
    assert set(os.listdir(tmp_path)) == before  # no out.bin, no temporary file
    time.sleep(0.5)
    assert _ffmpeg_processes_mentioning(str(clip)) == []

    # a whole stream to decode, then interrupt its decode into an ffmpeg-written mp4
    done = subprocess.run([sys.executable, "-m", "mcodec.cli.main", "-q", "encode", str(clip), "s.bin",
                           "--quality", "0", "--frames", "12", "--mask", "off"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    before = set(os.listdir(tmp_path))
    code, err = _interrupt(["decode", "s.bin", "out.mp4"], tmp_path, tmp_path, 0.3)
    assert code == 130, err
    assert set(os.listdir(tmp_path)) == before
    time.sleep(0.5)
    assert _ffmpeg_processes_mentioning(str(tmp_path)) == []
