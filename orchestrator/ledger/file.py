"""The embedded ledger: ``RUN_DIR/ledger.jsonl``, append-only, one JSON event per line.

``FileLedger`` implements ``ledger.Ledger``. ``append`` returns only once the event is on disk
(written and fsynced); concurrent appends share one fsync (group commit), so durability does not
cap throughput. ``RUN_DIR/run.lock`` (``flock``) keeps a second process out of the run directory.
Events and their stored form: ``orchestrator.ledger.records``.

A torn last line (the process died mid-write) is dropped on open. Any other line that is not a
ledger event is an error naming the line: the file is only ever written by us, so such a line
means it was edited or damaged, and guessing could render a video twice. A line a newer
orchestrator wrote (an event kind this version does not know, a ``run`` record of a newer
format) is refused the same way, naming the line and both formats (``records.newer_ledger``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.errors import DamagedRecord, NewerRecord, RunDirError
from orchestrator.input.rows import RowJob, no_rows
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState, SharedLimits
from orchestrator.ledger.records import (
    UNNUMBERED_FORMAT,
    Event,
    RetryFailed,
    RunStarted,
    decode,
    encode,
    newer_ledger,
)

if TYPE_CHECKING:
    from orchestrator.clock import Clock

LEDGER_NAME = "ledger.jsonl"
LOCK_NAME = "run.lock"
_DAMAGED_HINT = (
    "Restore the ledger from a backup, or remove that line if you know what it held; "
    "orchestrator will not guess, because guessing could render a video twice"
)

RowSource = Callable[[], Iterator[RowJob]]
"""The batch's rows in manifest order (``rows.iter_row_jobs`` over the run's manifest)."""


def read_events(path: Path) -> Iterator[tuple[int, Event]]:
    """Yield ``(line_number, event)``; drop a torn last line; raise ``RunDirError`` naming the
    line on damage elsewhere, and on a line a newer orchestrator wrote."""
    with path.open("rb") as f:
        pending: tuple[int, bytes] | None = None
        for number, raw in enumerate(f, start=1):
            if pending is not None:
                yield pending[0], _decode(path, *pending)
            pending = (number, raw)
        if pending is not None:
            number, raw = pending
            if not raw.endswith(b"\n"):
                return  # torn by a crash mid-write: the event was never acknowledged
            yield number, _decode(path, number, raw)


_JSON = json.JSONDecoder()


def _decode(path: Path, number: int, raw: bytes) -> Event:
    try:
        record: object = _JSON.decode(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError too
        record = None
    try:
        return decode(record)
    except NewerRecord as exc:
        raise newer_ledger(f"{path}:{number}", exc, _declared_format(path, number)) from None
    except DamagedRecord as exc:
        what = (
            f"field {exc.field!r} of this {exc.kind!r} event is missing or of the wrong type"
            if exc.field
            else "this line is not a ledger event"
        )
        raise RunDirError(
            f"{path}:{number}: {what} (the file was edited or damaged). {_DAMAGED_HINT}"
        ) from None


def _declared_format(path: Path, before: int) -> int:
    """The newest format the ``run`` records above line ``before`` declare (read again only to
    word a refusal, so the replay itself never looks)."""
    declared = UNNUMBERED_FORMAT
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number >= before:
                break
            if b'"run"' in raw:
                with contextlib.suppress(ValueError):  # DamagedRecord, NewerRecord: not here
                    event = decode(_JSON.decode(raw.decode("utf-8")))
                    if isinstance(event, RunStarted):
                        declared = max(declared, event.format)
    return declared


def replay(path: Path) -> LedgerState:
    state = LedgerState()
    if path.exists():
        for _, event in read_events(path):
            state.apply_replayed(event)
    return state


def read_ledger(run_dir: Path) -> LedgerState:
    """A run directory's ledger, replayed once, for commands that only read it (``status``,
    ``report``, ``resume``). Close its ``rows`` when done."""
    path = run_dir / LEDGER_NAME
    if not path.exists():
        raise RunDirError(f"{run_dir} holds no ledger ({LEDGER_NAME}); is it a run directory?")
    state = replay(path)
    if not state.runs:
        state.rows.close()
        raise RunDirError(f"{path} has no run record; start the batch with `orchestrator run`")
    return state


def first_run_record(run_dir: Path) -> RunStarted:
    """The batch's run record (the ledger's first ``run`` event, its first line), without a
    replay: what ``resume`` and ``status`` need before they open the ledger."""
    path = run_dir / LEDGER_NAME
    if not path.exists():
        raise RunDirError(f"{run_dir} holds no ledger ({LEDGER_NAME}); is it a run directory?")
    for _, event in read_events(path):
        if isinstance(event, RunStarted):
            return event
    raise RunDirError(f"{path} has no run record; start the batch with `orchestrator run`")


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
    ) -> None:
        self.path = path
        self._state = state
        self._fd = fd
        self._lock_fd = lock_fd
        self._rows = rows
        self._clock = clock
        self._pending: list[bytes] = []
        self._enqueued = 0
        self._durable = 0
        self._flushing = False
        self._flushed = anyio.Event()
        self._error: BaseException | None = None
        self.fsyncs = 0

    @classmethod
    def open(
        cls, run_dir: Path, rows: RowSource | None = None, clock: Clock | None = None
    ) -> FileLedger:
        """Lock the run dir, replay the ledger, and drop a torn tail so appends start clean.
        ``rows``: where ``rows_to_work_on`` reads the batch (the run's manifest)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        if clock is None:
            from orchestrator.clock import RealClock  # a replay alone needs no event loop

            clock = RealClock()
        lock_fd = _lock(run_dir, clock.wall_s())
        try:
            path = run_dir / LEDGER_NAME
            state = replay(path)
            _truncate_torn_tail(path)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, fd, lock_fd, state, rows, clock)

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
            if only is None or job.row_id in only:
                yield job

    @property
    def worker_id(self) -> str | None:
        return None  # one process at a time works a run directory

    @property
    def taken_over(self) -> list[tuple[str, str]]:
        return []  # so nothing is ever taken over

    def shared_limits(self, *, interval_s: float, max_renders: int) -> SharedLimits | None:
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
        if self._pending and self._error is None:
            batch, self._pending = self._pending, []
            self._write_and_sync(b"".join(batch))
        os.close(self._fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path.parent / LOCK_NAME)  # still held: nobody can take it meanwhile
        os.close(self._lock_fd)
        self._state.rows.close()

    async def append(self, event: Event) -> None:
        """Record ``event``; returns once it is on disk. The in-memory state follows at once."""
        event = replace(event, ts=round(self._clock.wall_s(), 3))  # frozen: a stamped copy
        line = _LINE_ENCODER.encode(encode(event)) + "\n"
        self._state.apply(event)
        self._pending.append(line.encode("utf-8"))
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
        upto = self._enqueued
        try:
            await anyio.to_thread.run_sync(self._write_and_sync, b"".join(batch))
            self._durable = upto
        except OSError as exc:
            self._error = exc
            raise
        finally:
            self._flushing = False
            done, self._flushed = self._flushed, anyio.Event()
            done.set()

    def _write_and_sync(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.fsyncs += 1


_LINE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every ledger line (``json.dumps`` with options builds one per call)."""


def _lock(run_dir: Path, now_s: float) -> int:
    """Hold ``RUN_DIR/run.lock`` (``flock``) and write who holds it. The file is removed when
    the run ends (``Ledger.close``), so a lock acquired on a file that was removed meanwhile is
    let go and taken again on the new file."""
    path = run_dir / LOCK_NAME
    while True:
        fd = _try_lock(run_dir, path)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": round(now_s, 3)}
    os.write(fd, json.dumps(record).encode("utf-8"))
    return fd


def _try_lock(run_dir: Path, path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = lock_holder(run_dir)
        os.close(fd)
        who = f"pid {holder['pid']} on {holder['host']}" if holder else "another process"
        raise RunDirError(
            f"{run_dir} is in use by another run ({who}); wait for it to finish, "
            "or choose another --out"
        ) from None
    return fd


def lock_holder(run_dir: Path) -> dict[str, Any] | None:
    """Who holds ``RUN_DIR/run.lock`` (``pid``, ``host``, ``since``), or None when no live
    process does (the run stopped, however it stopped: the kernel drops a dead process's lock)."""
    path = run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = os.read(fd, 512).decode("utf-8", "replace").strip()
            try:
                record = json.loads(raw)
            except ValueError:
                record = None
            if not isinstance(record, dict):  # a lock written by an older version: just a pid
                record = {"pid": raw or "?", "host": "?", "since": None}
            return record
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    with path.open("rb+") as f:
        data_end = f.seek(0, os.SEEK_END)
        if data_end == 0:
            return
        f.seek(data_end - 1)
        if f.read(1) == b"\n":
            return
        # Walk back to the last newline; everything after it is a torn event.
        pos = data_end
        while pos > 0:
            step = min(4096, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                f.truncate(pos - step + idx + 1)
                return
            pos -= step
        f.truncate(0)
