"""Writing files: the one atomic write, and the one place a disk fault becomes ours.

``atomic_text``: a file is written under a temporary name beside its place, flushed, fsynced,
renamed into place, and its folder fsynced, so a crash leaves the old file or the new one, never
a torn one. Results, the report, subtitles and videos all land this way.

Private by default: every file we write is created ``PRIVATE_FILE_MODE`` (0600) and every
folder ``PRIVATE_DIR_MODE`` (0700), with the mode given at creation (``private_opener``,
``make_private_dir``), so the result does not depend on the umask (which can only take bits
away). A run directory that already exists with looser bits is not changed behind its owner's
back: ``loose_modes`` names it, and the run says once how to fix it (docs/data.md).

``storage_error``: an ``OSError`` met while writing (no space, a quota, an I/O error, a read-only
file system, no permission) becomes ``errors.StorageError`` naming the path and what to do; a
run that meets one stops cleanly (docs/failures.md, "Disk faults").
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shlex
import stat
from collections.abc import Iterable, Iterator
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

PRIVATE_FILE_MODE = 0o600
"""Files we write: read and written by their owner only."""
PRIVATE_DIR_MODE = 0o700
"""Folders we make (run directories, ``videos/``): their owner's only."""


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for ``open()`` and ``Path.open()``: a file it creates is 0600, whatever
    the umask."""
    return os.open(path, flags, PRIVATE_FILE_MODE)


def make_private_dir(path: Path) -> None:
    """``path`` and its missing parents, each made 0700 whatever the umask (``mkdir -p``
    with a mode); folders that exist are left as they are (see ``loose_modes``)."""
    missing: list[Path] = []
    here = path
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # made meanwhile (another worker sharing --out)
            if not folder.is_dir():
                raise


def loose_modes(run_dir: Path) -> str | None:
    """A one-line warning when ``run_dir`` (made before files were private, or by hand) lets
    other users in, with the command that fixes it; None when it is private, absent or not a
    folder (what is wrong with that is said by whoever uses it)."""
    try:
        mode = run_dir.stat().st_mode
    except OSError:
        return None
    if not stat.S_ISDIR(mode) or not mode & 0o077:
        return None
    return (
        f"{run_dir} can be read by other users of this machine (mode {mode & 0o777:o}); it "
        f"holds your customers' data: run `chmod -R go= {shlex.quote(str(run_dir))}` to make it "
        "private"
    )


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
            with open(tmp, "w", encoding="utf-8", newline=newline, opener=private_opener) as f:
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


def sync_files(paths: Iterable[Path]) -> None:
    """Make ``paths`` durable: each file fsynced, then each folder they are in once (so their
    names survive a crash too). For files written without an fsync (``--out``'s videos, renamed
    into place at once): the ledger calls it in the worker-thread call that writes the record
    naming them, so a record on disk always names files on disk."""
    folders: dict[Path, None] = {}
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # removed meanwhile (by hand): nothing of it to keep
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        folders[path.parent] = None
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def move_into_place(part: Path, final: Path) -> None:
    """Rename a finished ``part`` to ``final`` and fsync the folder, so the name survives a
    crash too."""
    os.replace(part, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
