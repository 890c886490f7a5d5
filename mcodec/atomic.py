"""Atomic outputs: every file mcodec writes appears whole or not at all.

A writer gets a temporary name beside the destination (same folder, so the
final rename is atomic), and the file is moved into place only once it is
complete; on any failure the temporary file is removed and the destination is
untouched. Published files get ordinary permissions (0666 minus the umask), not
mkstemp's private 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def publish(tmp: str, dst: str) -> None:
    """Atomically move the finished temporary file `tmp` onto `dst` with ordinary permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, dst)


def temporary_beside(dst: str, directory: bool = False) -> str:
    """A new, empty temporary file (or folder) in `dst`'s folder, named after it."""
    parent = os.path.dirname(os.path.abspath(dst))
    base = os.path.basename(dst)
    if directory:
        return tempfile.mkdtemp(prefix=f".{base.split('%')[0]}", suffix=".partial", dir=parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".partial", dir=parent)
    os.close(fd)
    return tmp


@contextmanager
def atomic_path(dst: str | os.PathLike[str]) -> Iterator[str]:
    """A temporary path to write `dst` through (for writers that want a path:
    torch.save, numpy, safetensors); published on success, removed on failure."""
    dst = os.fspath(dst)
    tmp = temporary_beside(dst)
    try:
        yield tmp
        publish(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(dst: str | os.PathLike[str], data: str | bytes) -> None:
    """Write `data` (str as UTF-8) to `dst` atomically."""
    with atomic_path(dst) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
