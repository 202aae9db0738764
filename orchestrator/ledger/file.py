"""The embedded ledger: ``RUN_DIR/ledger.jsonl``, append-only, one JSON event per line.

``FileLedger`` implements ``ledger.Ledger``. ``append`` returns only once the event is on disk
(written and fsynced); concurrent appends share one fsync (group commit), so durability does not
cap throughput. Events and their stored form: ``orchestrator.ledger.records``; reading a ledger
back (a torn tail, a damaged or newer line): ``ledger.replay``.

One owner per run directory, which nobody can delete from under it (the lock, the owner named,
no fresh start beside finished work: ``ledger.owner``). Before every write (so before every
render intent, and so before every billable request) the owner checks that ``ledger.jsonl`` is
still its file. Removed meanwhile: it puts its own copy back (``ledger_restored``) and goes on.
Replaced by another file: it stops before anything else is billed (``RunDirError``).

Disk faults. ``RUN_DIR/.ledger-reserve`` holds ``RESERVE_BYTES`` of space for the ledger. When a
write meets a full disk, the reserve is given up and the write tried again, so the events of the
rows in flight (a render's job id above all) are still recorded while the run stops; then
``StorageError`` is raised to the appender (``files.storage_error``).

The names of ``ledger.replay`` and ``ledger.owner`` that many modules import from here are
re-exported (``__all__``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from orchestrator.errors import RunDirError, StorageError
from orchestrator.events import NullSink, Sink
from orchestrator.files import (
    PRIVATE_FILE_MODE,
    RERUN,
    make_private_dir,
    private_opener,
    storage_error,
    sync_files,
    writing,
)
from orchestrator.input.rows import RowJob, no_rows
from orchestrator.ledger.codec import encode
from orchestrator.ledger.locks import try_exclusive
from orchestrator.ledger.owner import (
    LOCK_NAME,
    fresh_start_refused,
    in_use,
    ledger_owner,
    lock_holder,
    own,
    refuse_fresh_start_beside_finished_work,
    sync_folder,
    take_run_dir,
    work_without_ledger,
    write_holder,
)
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState, SharedLimits
from orchestrator.ledger.records import Event, JsonObject, RetryFailed, RunStarted
from orchestrator.ledger.replay import (
    LEDGER_NAME,
    first_run_record,
    read_events,
    read_ledger,
    replay,
    truncate_torn_tail,
)

__all__ = [
    "LEDGER_NAME",
    "LOCK_NAME",
    "RESERVE_BYTES",
    "RESERVE_NAME",
    "FileLedger",
    "RowSource",
    "first_run_record",
    "fresh_start_refused",
    "lock_holder",
    "read_events",
    "read_ledger",
    "replay",
    "work_without_ledger",
]

if TYPE_CHECKING:
    from orchestrator.clock import Clock

RESERVE_NAME = ".ledger-reserve"
RESERVE_BYTES = 256 * 1024
"""Room for ~1,000 events: every row in flight records its outcome while a full disk stops a
run."""
RowSource = Callable[[], Iterator[RowJob]]
"""The batch's rows in manifest order (``rows.iter_row_jobs`` over the run's manifest)."""


class FileLedger:
    """``ledger.Ledger`` on a JSONL file with group commit. Open with ``FileLedger.open``."""

    def __init__(
        self,
        path: Path,
        fd: int,
        lock_fd: int,
        state: LedgerState,
        rows: RowSource | None,
        clock: Clock,
        sink: Sink,
    ) -> None:
        self.path = path
        self._sink = sink
        self.owner: JsonObject = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "nonce": _nonce(),
        }
        """This session's owner, stamped on its ``run`` record."""
        self.storage_fault: StorageError | None = None
        """Set once a write needed the reserve: the run stops admitting rows (the next row the
        batch offers raises it), and the rows in flight still record their outcome."""
        self._state = state
        self._fd = fd
        self._lock_fd = lock_fd
        self._rows = rows
        self._clock = clock
        self._pending: list[bytes] = []
        self._pending_files: list[Path] = []
        self._enqueued = 0
        self._durable = 0
        self._flushing = False
        self._flushed = anyio.Event()
        self._error: BaseException | None = None
        self.fsyncs = 0

    @classmethod
    def open(
        cls,
        run_dir: Path,
        rows: RowSource | None = None,
        clock: Clock | None = None,
        *,
        sink: Sink | None = None,
        adopting: bool = False,
    ) -> FileLedger:
        """Take the run directory, replay the ledger, and drop a torn tail so appends start
        clean. ``rows``: where ``rows_to_work_on`` reads the batch (the run's manifest).
        ``adopting``: ``orchestrator adopt`` builds a missing ledger beside finished work."""
        with writing(run_dir):
            make_private_dir(run_dir)
        if clock is None:
            from orchestrator.clock import RealClock  # a replay alone needs no event loop

            clock = RealClock()
        path = run_dir / LEDGER_NAME
        lock_fd = take_run_dir(run_dir)
        fd = -1
        try:
            if not adopting:
                refuse_fresh_start_beside_finished_work(run_dir)
            with writing(path):
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
            own(run_dir, fd, lock_fd)
            state = replay(path)
            with writing(path):
                truncate_torn_tail(path)
                _keep_reserve(run_dir)
            with writing(run_dir / LOCK_NAME):
                write_holder(lock_fd, clock.wall_s())
        except BaseException:
            if fd >= 0:
                os.close(fd)
            os.close(lock_fd)
            raise
        return cls(path, fd, lock_fd, state, rows, clock, sink or NullSink())

    @property
    def state(self) -> LedgerState:
        return self._state

    @property
    def location(self) -> str:
        return str(self.path)

    async def rows_to_work_on(self, only: frozenset[str] | None = None) -> AsyncIterator[RowJob]:
        if self._rows is None:
            return
        for job in self._rows():
            if self.storage_fault is not None:
                raise self.storage_fault
            if only is None or job.row_id in only:
                yield job

    @property
    def worker_id(self) -> str | None:
        return None  # one process at a time works a run directory

    @property
    def taken_over(self) -> list[tuple[str, str]]:
        return []  # so nothing is ever taken over

    def shared_limits(
        self, *, max_rps: float, max_per_minute: float | None, max_renders: int
    ) -> SharedLimits | None:
        return None  # a run directory has one process at a time: its own limits are the account's

    async def snapshot(self) -> BatchSnapshot:
        return BatchSnapshot(rows=self._rows or no_rows, state=self._state)

    async def retry_failed(self) -> None:
        await self.append(RetryFailed())

    def release(self, row_id: str) -> None:
        self._state.rows.release(row_id)

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Write what cancelled appenders left pending, then release the file and the lock."""
        try:
            if self._pending and self._error is None:
                batch, self._pending = self._pending, []
                files, self._pending_files = self._pending_files, []
                self._write_and_sync(b"".join(batch), files)
        finally:
            os.close(self._fd)
            lock = self.path.parent / LOCK_NAME
            with contextlib.suppress(OSError):  # still held: nobody can take it meanwhile
                if os.stat(lock).st_ino == os.fstat(self._lock_fd).st_ino:
                    os.unlink(lock)
            os.close(self._lock_fd)
            self._state.rows.close()

    async def append(self, event: Event, files: Sequence[Path] = ()) -> None:
        """Record ``event``; returns once it is on disk, ``files`` first. The in-memory state
        follows at once."""
        event = replace(event, ts=round(self._clock.wall_s(), 3))  # frozen: a stamped copy
        if isinstance(event, RunStarted) and event.owner is None:
            event = replace(event, owner=dict(self.owner))
        line = _LINE_ENCODER.encode(encode(event)) + "\n"
        self._state.apply(event)
        self._pending.append(line.encode("utf-8"))
        self._pending_files.extend(files)
        self._enqueued += 1
        ticket = self._enqueued
        while self._durable < ticket:
            if self._error is not None:
                raise self._error
            if self._flushing:
                await self._flushed.wait()
                continue
            await self._flush()

    async def _flush(self) -> None:
        self._flushing = True
        batch, self._pending = self._pending, []
        files, self._pending_files = self._pending_files, []
        upto = self._enqueued
        try:
            await anyio.to_thread.run_sync(self._write_and_sync, b"".join(batch), files)
            self._durable = upto
        except (OSError, StorageError, RunDirError) as exc:  # every later append fails alike
            self._error = exc
            raise
        finally:
            self._flushing = False
            done, self._flushed = self._flushed, anyio.Event()
            done.set()

    def _write_and_sync(self, data: bytes, files: Sequence[Path] = ()) -> None:
        """``files`` made durable (``files.sync_files``), then ``data`` written and fsynced: a
        record on disk never names a file that is not."""
        if files:
            with writing(files[0].parent):
                sync_files(files)
        self._still_ours()
        end = os.fstat(self._fd).st_size
        try:
            self._write_all(data)
        except OSError as exc:
            self._cut_back(end)  # a write cut short leaves no torn line between events
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _give_up_reserve(self.path):
                raise _as_storage(exc, self.path) from exc
            try:  # the reserve's room: this write and the rest of the rows in flight
                self._write_all(data)
            except OSError as again:
                self._cut_back(end)
                raise _as_storage(again, self.path) from again
            self.storage_fault = StorageError(
                self.path,
                "no space left on the device (the ledger is writing into its reserve)",
                f"free some space (or move --out), {RERUN}",
            )
            self._sink.emit("ledger_reserve_used", path=str(self.path))
        self.fsyncs += 1

    def _cut_back(self, end: int) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, end)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def _still_ours(self) -> None:
        """The owner's check before each write: is ``ledger.jsonl`` still the file it holds?"""
        mine = os.fstat(self._fd)
        try:
            there = os.stat(self.path)
        except FileNotFoundError:
            self._restore()
            return
        if (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino):
            raise RunDirError(
                f"{self.path} was replaced by another file while this run worked; it stopped "
                "before sending anything else. Move that file away and run the same command "
                "again (this run's ledger is the one it put back), or choose another --out"
            )

    def _restore(self) -> None:
        """``ledger.jsonl`` was removed while this run held it: put this run's copy (the open
        file's bytes) back under the name, and go on writing there."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.restore")
        with writing(self.path):
            size = os.fstat(self._fd).st_size
            out = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
            try:
                offset = 0
                while offset < size:
                    chunk = os.pread(self._fd, min(1 << 20, size - offset), offset)
                    if not chunk:
                        break
                    os.write(out, chunk)
                    offset += len(chunk)
                os.fsync(out)
                try:
                    os.link(tmp, self.path)  # never over a file someone else put there
                except FileExistsError:
                    os.close(out)
                    out = -1
                    self._still_ours()  # raises: another file took the name
                if not try_exclusive(out):  # another process opened it meanwhile
                    raise in_use(self.path.parent, ledger_owner(self.path.parent))
            except BaseException:
                if out >= 0:
                    os.close(out)
                raise
            finally:
                tmp.unlink(missing_ok=True)
            old, self._fd = self._fd, out
            os.close(old)
            sync_folder(self.path.parent)
        self._sink.emit("ledger_restored", path=str(self.path), bytes=size)


def _as_storage(exc: OSError, path: Path) -> OSError | StorageError:
    return storage_error(exc, path) or exc


def _nonce() -> str:
    return secrets.token_hex(4)


def _keep_reserve(run_dir: Path) -> None:
    """Make sure ``.ledger-reserve`` holds ``RESERVE_BYTES`` (written, so the space is taken)."""
    path = run_dir / RESERVE_NAME
    try:
        if path.stat().st_size >= RESERVE_BYTES:
            return
    except FileNotFoundError:
        pass
    with open(path, "wb", opener=private_opener) as f:
        f.write(b"\0" * RESERVE_BYTES)
        f.flush()
        os.fsync(f.fileno())


def _give_up_reserve(ledger_path: Path) -> bool:
    """Free the reserve's space for the ledger; False when there was none left to free."""
    try:
        (ledger_path.parent / RESERVE_NAME).unlink()
    except FileNotFoundError:
        return False
    return True


_LINE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every ledger line (``json.dumps`` with options builds one per call)."""
