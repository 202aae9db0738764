"""Locks on an open file, for a run directory's one owner (``ledger.owner``). The platform's
module (``fcntl``, ``msvcrt``) is imported when a lock is first taken or looked at, never at
start-up, so every command starts on a Python without ``fcntl``.

- POSIX (Linux, macOS): ``flock`` on the descriptor, exclusive to own, shared to look. Taken on
  the open ``ledger.jsonl``, it holds whatever happens to the file's name, and the kernel drops
  it when the process dies, however it dies.
- Windows: ``msvcrt.locking`` of the one byte at ``WINDOWS_LOCK_OFFSET``, past the end of any
  ledger. Windows byte-range locks are mandatory: a lock on the file's first bytes would refuse
  every other reader of the ledger (the run's own replay, ``status``, ``report``), while a byte
  past the end excludes a second owner and nothing else. ``msvcrt`` has no shared lock, so
  ``held_elsewhere`` looks with an exclusive one let go at once (the owner's ``try_exclusive``
  is retried for a moment, see ``ledger.owner._take``). Windows drops a dead process's locks too.

Why not portalocker: on POSIX it is this same ``flock`` on the descriptor; on Windows it locks
64 KiB from byte 0 (the mandatory lock above), and a shared lock needs pywin32. filelock locks a
lock file of its own, which is ``run.lock``'s part, not the ledger's.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable

WINDOWS_LOCK_OFFSET = 0x7FFF_FFFE
"""The byte a Windows owner locks: past the end of any ledger under 2 GiB, and within the
32-bit file positions the C runtime's ``_locking`` counts from."""

if sys.platform == "win32":

    def try_exclusive(fd: int) -> bool:
        """An exclusive lock on ``fd``'s file, without waiting: False while another holds it."""
        import msvcrt

        return _at_lock_byte(fd, lambda: msvcrt.locking(fd, msvcrt.LK_NBLCK, 1))

    def held_elsewhere(fd: int) -> bool:
        """Whether another process holds the exclusive lock on ``fd``'s file."""
        import msvcrt

        if not try_exclusive(fd):
            return True
        _at_lock_byte(fd, lambda: msvcrt.locking(fd, msvcrt.LK_UNLCK, 1))
        return False

    def _at_lock_byte(fd: int, call: Callable[[], None]) -> bool:
        """``call`` (which locks or unlocks from the file position) at the lock byte; the
        position is put back. False when the byte is locked by another handle."""
        position = os.lseek(fd, 0, os.SEEK_CUR)
        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            call()
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLK):  # the byte is locked
                return False
            raise
        finally:
            os.lseek(fd, position, os.SEEK_SET)
        return True

else:

    def try_exclusive(fd: int) -> bool:
        """An exclusive ``flock`` on ``fd``, without waiting: False while another holds it."""
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def held_elsewhere(fd: int) -> bool:
        """Whether another process holds an exclusive ``flock`` on ``fd``'s file (looked at with
        a shared lock, let go at once)."""
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
