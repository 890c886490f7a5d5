"""The command line: exit codes, one-line errors, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mcodec.cli.main import main


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcodec.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_help_lists_commands_and_exits_zero() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for command in ("info", "bench"):
        assert command in done.stdout


def test_help_and_parsing_do_not_import_torch() -> None:
    code = ("import sys; from mcodec.cli.main import build_parser; "
            "build_parser().parse_args(['info', 'x.bin']); "
            "print(sorted(m for m in ('torch', 'compressai', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bad_usage_exits_2() -> None:
    assert run_cli("no-such-command").returncode == 2
    assert run_cli("info").returncode == 2


def test_user_error_is_one_line_exit_2(tmp_path: Path) -> None:
    done = run_cli("info", str(tmp_path / "missing.bin"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcodec: error:"), done.stderr
    assert "Traceback" not in done.stderr


def test_corrupt_bitstream_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x8bMCD\r\n\x1a\n" + b"\x00" * 40)
    done = run_cli("info", str(bad))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1


def test_internal_error_exits_1(monkeypatch, capsys) -> None:
    import mcodec.cli.main as cli

    def boom(args):
        raise ZeroDivisionError("bug")

    monkeypatch.setitem(cli.COMMANDS, "info", boom)
    assert main(["info", "x.bin"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "Traceback" not in err


def test_encode_decode_info_through_the_cli(clips_dir: Path, tmp_path: Path) -> None:
    src = clips_dir / "ciscovt2people_320x192.mkv"
    out = tmp_path / "c.bin"
    done = run_cli("-q", "encode", str(src), str(out), "--frames", "3", "--quality", "2",
                   timeout=600)
    assert done.returncode == 0, done.stderr
    assert "3 frames 320x192" in done.stdout and "kbps" in done.stdout and "PSNR-YUV" in done.stdout
    before = src.stat().st_mtime_ns
    # Existing output without -y, output == input: user errors, nothing written.
    again = run_cli("encode", str(src), str(out), "--frames", "1")
    assert again.returncode == 2 and "-y" in again.stderr
    same = run_cli("decode", str(out), str(out), "-y")
    assert same.returncode == 2 and "input" in same.stderr
    dec = tmp_path / "c.y4m"
    done = run_cli("decode", str(out), str(dec), "--quiet", timeout=600)
    assert done.returncode == 0, done.stderr
    assert dec.stat().st_size > 0 and src.stat().st_mtime_ns == before
    info = run_cli("info", str(out), "--json")
    assert info.returncode == 0
    import json

    summary = json.loads(info.stdout)
    assert summary["header"]["width"] == 320 and len(summary["frames"]) == 3


def test_encode_user_errors_exit_2(tmp_path: Path) -> None:
    missing = run_cli("encode", str(tmp_path / "nope.mp4"), str(tmp_path / "o.bin"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x8bMCD\r\n\x1a\n" + bytes(100))
    bad = run_cli("decode", str(junk), str(tmp_path / "o.y4m"))
    assert bad.returncode == 2 and not (tmp_path / "o.y4m").exists()
    assert run_cli("encode", str(junk), str(tmp_path / "p.bin"), "--quality", "99").returncode == 2


def test_pipe_round_trip_through_ffmpeg(cars_cut, tmp_path: Path) -> None:
    """`ffmpeg ... | mcodec encode - x.bin` and `mcodec decode x.bin - | ffmpeg ...`, as users
    pipe them: real processes on both ends, and the piped decode equals a decode to a file."""
    import hashlib

    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    mc = [sys.executable, "-m", "mcodec.cli.main"]
    stream = tmp_path / "x.bin"
    src = subprocess.Popen([ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(cars_cut), "-frames:v", "4",
                            "-f", "yuv4mpegpipe", "-"], stdout=subprocess.PIPE)
    try:
        enc = subprocess.run([*mc, "encode", "-", str(stream), "--quality", "0"], stdin=src.stdout,
                             capture_output=True, text=True, timeout=600)
    finally:
        src.stdout.close()
        src.wait(timeout=60)
    assert enc.returncode == 0, enc.stderr
    assert src.returncode == 0
    dec = subprocess.Popen([*mc, "decode", str(stream), "-"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        sink = subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-f", "yuv4mpegpipe", "-i", "-",
                               "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], stdin=dec.stdout,
                              capture_output=True, timeout=600)
    finally:
        dec.stdout.close()
        dec.wait(timeout=60)
    assert dec.returncode == 0, dec.stderr.read().decode()
    assert sink.returncode == 0, sink.stderr
    assert len(sink.stdout) == 4 * 320 * 240 * 3 // 2
    to_file = tmp_path / "d.yuv"
    done = run_cli("decode", str(stream), str(to_file), timeout=600)
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(to_file.read_bytes()).digest() == hashlib.sha256(sink.stdout).digest()
