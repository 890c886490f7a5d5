"""Exception types shared by every part of mcodec.

`McodecError` subclasses are errors a user can cause (bad path, corrupt stream,
unsupported input): the CLI turns them into exit code 2 and one line on stderr.
Anything else escaping to the CLI is an internal error (exit code 1).
"""

from __future__ import annotations


class McodecError(Exception):
    """Base class for errors caused by the user's input or environment."""


class BitstreamError(McodecError):
    """A malformed, truncated or corrupted mcodec bitstream.

    `offset` is the byte offset in the file where the problem was found
    (None when it is not tied to one position).
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at byte offset {offset})")


class FFmpegNotFoundError(McodecError):
    """No working ffmpeg binary could be found."""


class FFmpegError(McodecError):
    """ffmpeg failed; the message carries ffmpeg's last stderr line, `stderr` the tail."""

    stderr: str = ""


class VideoIOError(McodecError):
    """An input video cannot be read or an output cannot be written."""


class ModelError(McodecError):
    """Weights missing, corrupted (SHA-256 mismatch) or not the ones a stream needs."""
