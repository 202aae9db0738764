"""Writing files: the one atomic write, and the one place a disk fault becomes ours.

``atomic_text``: a file is written under a temporary name beside its place, flushed, fsynced,
renamed into place, and its folder fsynced, so a crash leaves the old file or the new one, never
a torn one. Results, the report, subtitles and videos all land this way.

``storage_error``: an ``OSError`` met while writing (no space, a quota, an I/O error, a read-only
file system, no permission) becomes ``errors.StorageError`` naming the path and what to do; a
run that meets one stops cleanly (docs/failures.md, "Disk faults").
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from orchestrator.errors import StorageError

_FAULTS = {
    errno.ENOSPC: ("no space left on the device", "free some space (or move --out)"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or raise the quota"),
    errno.EFBIG: ("the file is too large for the file system", "move --out elsewhere"),
    errno.EIO: ("an I/O error (the disk or the network share failed)", "check the disk"),
    errno.EROFS: ("the file system is read-only", "make it writable or write elsewhere"),
    errno.EACCES: ("permission denied", "make it writable or write elsewhere"),
    errno.EPERM: ("permission denied", "make it writable or write elsewhere"),
}
RERUN = "then run the same command again: nothing is lost"


def storage_error(exc: OSError, path: Path | str) -> StorageError | None:
    """``exc`` (met writing ``path``) as a ``StorageError``, or None when it is not a disk
    fault (the caller re-raises it)."""
    fault = _FAULTS.get(exc.errno) if exc.errno is not None else None
    if fault is None:
        return None
    reason, hint = fault
    return StorageError(path, reason, f"{hint}, {RERUN}")


@contextlib.contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Translate a disk fault met in the block into ``StorageError`` naming ``path``."""
    try:
        yield
    except OSError as exc:
        fault = storage_error(exc, path)
        if fault is None:
            raise
        raise fault from exc


@contextlib.contextmanager
def atomic_text(path: Path, *, newline: str | None = None, part: str = ".tmp") -> Iterator[IO[str]]:
    """Write ``path`` (UTF-8 text) through the file this yields; it takes ``path``'s place only
    when the block ends without an exception (``part``: the temporary name's suffix). The
    temporary name is this process's own, so processes writing the same file (workers sharing
    an ``--out``) never take each other's: the last rename wins, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{part}")
    try:
        with writing(path):
            with tmp.open("w", encoding="utf-8", newline=newline) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            move_into_place(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomically(path: Path, text: str, *, newline: str | None = None) -> None:
    with atomic_text(path, newline=newline) as f:
        f.write(text)


def move_into_place(part: Path, final: Path) -> None:
    """Rename a finished ``part`` to ``final`` and fsync the folder, so the name survives a
    crash too."""
    os.replace(part, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
