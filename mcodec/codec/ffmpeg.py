"""Finding and running ffmpeg safely.

Every call goes through an argument list (never a shell), with ``-nostdin`` and
inputs restricted to the ``file`` and ``pipe`` protocols. The subprocess is always
ended, also when the caller raises or the user presses Ctrl-C, and failures carry
the tail of ffmpeg's stderr. ffprobe is never needed (imageio-ffmpeg ships none).
"""

from __future__ import annotations

import collections
import functools
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import IO

from mcodec.errors import FFmpegError, FFmpegNotFoundError

ENV_VAR = "MCODEC_FFMPEG"
# How much of ffmpeg's stderr is kept for error messages (lines).
_STDERR_TAIL = 400


@functools.lru_cache(maxsize=8)
def _works(path: str) -> bool:
    """True when `path` runs as ffmpeg (`-version` exits 0)."""
    try:
        done = subprocess.run([path, "-hide_banner", "-version"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stdout.startswith(b"ffmpeg version")


def find_ffmpeg() -> str:
    """Path of the ffmpeg binary to use.

    Order: the ``MCODEC_FFMPEG`` environment variable (must work if set),
    imageio-ffmpeg's bundled binary, then ``ffmpeg`` on PATH.

    Raises:
        FFmpegNotFoundError: none of them runs.
    """
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        if _works(explicit):
            return explicit
        raise FFmpegNotFoundError(f"{ENV_VAR}={explicit!r} does not run as ffmpeg")
    candidates: list[str] = []
    try:
        import imageio_ffmpeg  # local import: optional at run time, cheap

        candidates.append(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        pass
    on_path = shutil.which("ffmpeg")
    if on_path:
        candidates.append(on_path)
    for path in candidates:
        if _works(path):
            return path
    raise FFmpegNotFoundError(
        "no working ffmpeg found: install imageio-ffmpeg, put ffmpeg on PATH, "
        f"or set {ENV_VAR} to an ffmpeg binary")


def ffmpeg_version(ffmpeg: str | None = None) -> str:
    """First line of ``ffmpeg -version`` (for reports)."""
    exe = ffmpeg or find_ffmpeg()
    done = subprocess.run([exe, "-hide_banner", "-version"], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=30, check=False)
    return done.stdout.decode("utf-8", "replace").splitlines()[0].strip()


def input_url(path: str) -> str:
    """ffmpeg URL for a local path or ``-`` (stdin).

    The ``file:`` prefix stops ffmpeg from reading a name such as ``http:x`` or
    ``concat:a|b`` as a protocol.
    """
    return "pipe:0" if path == "-" else "file:" + os.path.abspath(path)


def output_url(path: str) -> str:
    """ffmpeg URL for an output path or ``-`` (stdout)."""
    return "pipe:1" if path == "-" else "file:" + os.path.abspath(path)


def base_args(ffmpeg: str | None = None, loglevel: str = "error") -> list[str]:
    """The common head of every ffmpeg command line."""
    return [ffmpeg or find_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", loglevel]


# Input option that must precede each `-i`: only local files and pipes.
SAFE_INPUT = ["-protocol_whitelist", "file,pipe"]


class FFmpegProcess:
    """A running ffmpeg whose stderr is drained in the background.

    Use as a context manager: leaving the block (normally, by exception or by
    KeyboardInterrupt) always ends the process. `stdin`/`stdout` are the pipes
    requested at construction.
    """

    def __init__(self, args: Sequence[str], *, stdin: int | IO[bytes] | None = None,
                 stdout: int | IO[bytes] | None = None) -> None:
        self.args = list(args)
        self._tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._lines_seen = threading.Condition()
        try:
            self._proc = subprocess.Popen(self.args, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                          stdout=stdout if stdout is not None else subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, bufsize=0)
        except OSError as exc:
            raise FFmpegNotFoundError(f"cannot start ffmpeg ({self.args[0]}): {exc}") from exc
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    @property
    def stdin(self) -> IO[bytes] | None:
        return self._proc.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._proc.stdout

    def _read_stderr(self) -> None:
        # Without draining, ffmpeg blocks once the stderr pipe buffer is full.
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            with self._lines_seen:
                self._tail.append(raw.decode("utf-8", "replace").rstrip())
                self._lines_seen.notify_all()
        with self._lines_seen:
            self._lines_seen.notify_all()

    def stderr_text(self) -> str:
        """What ffmpeg has written to stderr so far (the last lines)."""
        with self._lines_seen:
            return "\n".join(self._tail)

    def wait_for_stderr(self, predicate, timeout: float = 10.0) -> str:
        """Wait until `predicate(stderr_text)` holds, the stream ends or `timeout` s pass."""
        with self._lines_seen:
            self._lines_seen.wait_for(
                lambda: predicate("\n".join(self._tail)) or not self._drain.is_alive(), timeout)
            return "\n".join(self._tail)

    def error(self, what: str) -> FFmpegError:
        """An FFmpegError for `what` carrying the tail of ffmpeg's stderr.

        Raises KeyboardInterrupt instead when ffmpeg ended because of SIGINT
        (a terminal's Ctrl-C reaches mcodec and its ffmpeg children together).
        """
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._drain.join(timeout=5)
        lines = [ln.strip() for ln in self._tail if ln.strip()]
        # Ctrl-C reached ffmpeg (same process group) before it reached us: the user
        # interrupted, ffmpeg did not fail. ffmpeg exits 255 after a signal; at
        # loglevel error it then prints nothing (the "received signal 2" line is
        # info level), while a real failure always leaves an error line.
        signalled = self._proc.returncode == 255 and not lines
        if (self._proc.returncode == -signal.SIGINT or signalled
                or any("received signal 2" in ln for ln in lines[-3:])):
            raise KeyboardInterrupt
        # One line for the user (ffmpeg's last words); the whole tail on the exception.
        err = FFmpegError(f"{what} (ffmpeg exit code {self._proc.returncode})"
                          + (f": {lines[-1]}" if lines else ""))
        err.stderr = "\n".join(lines)
        return err

    def wait(self, what: str, timeout: float | None = None) -> None:
        """Close our ends of the pipes, wait for exit; raise FFmpegError unless it exits 0."""
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise FFmpegError(f"{what}: ffmpeg did not finish within {timeout} s") from exc
        self._drain.join(timeout=5)
        if self._proc.returncode != 0:
            raise self.error(what)

    def kill(self) -> None:
        """End the process now if it is still running (idempotent)."""
        if self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def __enter__(self) -> FFmpegProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def read_exact(stream: IO[bytes], n: int) -> bytes:
    """Up to `n` bytes from a pipe: fewer only when it ends first (reads may return short)."""
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def write_all(stream: IO[bytes], data: bytes) -> None:
    """Write all of `data` to an unbuffered pipe.

    A raw (bufsize=0) pipe's ``write`` may take only part of the buffer (a signal
    during a blocking write ends it early, and Python retries only when nothing was
    written); without this loop the tail of a frame is lost and ffmpeg drops it.
    """
    view = memoryview(data)
    while view:
        n = stream.write(view)
        if n is None:  # non-blocking pipe full: cannot happen for our blocking pipes
            raise OSError("pipe not ready for writing")
        view = view[n:]


def run_ffmpeg(args: Sequence[str], what: str, timeout: float | None = None) -> str:
    """Run ffmpeg to completion with `args` (a full argument list); return its stderr.

    Raises:
        FFmpegError: non-zero exit, with the tail of stderr.
    """
    with FFmpegProcess(args) as proc:
        proc.wait(what, timeout=timeout)
        return proc.stderr_text()
