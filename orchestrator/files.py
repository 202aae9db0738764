"""The one atomic write: a file is written under a temporary name beside its place, flushed,
fsynced, renamed into place, and its folder fsynced, so a crash leaves the old file or the new
one, never a torn one. Results, the report, subtitles and videos all land this way."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_text(path: Path, *, newline: str | None = None, part: str = ".tmp") -> Iterator[IO[str]]:
    """Write ``path`` (UTF-8 text) through the file this yields; it takes ``path``'s place only
    when the block ends without an exception (``part``: the temporary name's suffix). The
    temporary name is this process's own, so processes writing the same file (workers sharing
    an ``--out``) never take each other's: the last rename wins, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{part}")
    try:
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
