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
