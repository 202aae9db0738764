"""The embedded ledger: ``RUN_DIR/ledger.jsonl``, append-only, one JSON event per line.

``FileLedger`` implements ``ledger.Ledger``. ``append`` returns only once the event is on disk
(written and fsynced); concurrent appends share one fsync (group commit), so durability does not
cap throughput. Events and their stored form: ``orchestrator.ledger.records``.

One owner per run directory, which nobody can delete from under it:

- The owner holds a lock on the open ledger file itself (``flock``; on Windows a byte-range
  lock: ``ledger.locks``). A second run is refused while it is held, naming the owner; the
  kernel drops it when the owner dies, however it dies. Deleting ``run.lock`` (which names the
  owner for ``status``: pid, host, since) changes nothing.
- Each session's ``run`` record carries its owner (host, pid, a nonce). A session that opens a
  ledger whose last session never recorded its end takes it over (``run_taken_over``).
- Before every write (so before every render intent, and so before every billable request) the
  owner checks that ``ledger.jsonl`` is still its file. Removed meanwhile: it puts its own copy
  back (``ledger_restored``) and goes on. Replaced by another file: it stops before anything
  else is billed (``RunDirError``).
- A missing ledger is never a fresh start when the directory holds finished work (videos or
  ``results.csv``): ``open`` refuses and names ``orchestrator adopt``.

Disk faults. ``RUN_DIR/.ledger-reserve`` holds ``RESERVE_BYTES`` of space for the ledger. When a
write meets a full disk, the reserve is given up and the write tried again, so the events of the
rows in flight (a render's job id above all) are still recorded while the run stops; then
``StorageError`` is raised to the appender (``files.storage_error``).

A torn last line (the process died mid-write) is dropped on open. Any other line that is not a
ledger event is an error naming the line: the file is only ever written by us, so such a line
means it was edited or damaged, and guessing could render a video twice. A line a newer
orchestrator wrote (an event kind this version does not know, a ``run`` record of a newer
format) is refused the same way, naming the line and both formats (``records.newer_ledger``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.errors import DamagedRecord, NewerRecord, RunDirError, StorageError
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
from orchestrator.ledger.locks import held_elsewhere, try_exclusive
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState, SharedLimits
from orchestrator.ledger.records import (
    UNNUMBERED_FORMAT,
    Event,
    JsonObject,
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
RESERVE_NAME = ".ledger-reserve"
RESERVE_BYTES = 256 * 1024
"""Room for ~1,000 events: every row in flight records its outcome while a full disk stops a
run."""
TAKE_TRIES = 10
TAKE_PAUSE_S = 0.02
FINISHED_WORK = ("results.csv", "videos")
"""What a run directory holds once anything was delivered (a missing ledger beside these is
never a fresh start)."""
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
        lock_fd = _lock(run_dir)
        fd = -1
        try:
            if not adopting:
                _refuse_fresh_start_beside_finished_work(run_dir)
            with writing(path):
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
            _own(run_dir, fd, lock_fd)
            state = replay(path)
            with writing(path):
                _truncate_torn_tail(path)
                _keep_reserve(run_dir)
            with writing(run_dir / LOCK_NAME):
                _write_holder(lock_fd, clock.wall_s())
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
                    raise _in_use(self.path.parent, _ledger_owner(self.path.parent))
            except BaseException:
                if out >= 0:
                    os.close(out)
                raise
            finally:
                tmp.unlink(missing_ok=True)
            old, self._fd = self._fd, out
            os.close(old)
            _sync_folder(self.path.parent)
        self._sink.emit("ledger_restored", path=str(self.path), bytes=size)


def _as_storage(exc: OSError, path: Path) -> OSError | StorageError:
    return storage_error(exc, path) or exc


def _nonce() -> str:
    return secrets.token_hex(4)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def work_without_ledger(run_dir: Path) -> list[str]:
    """What a run directory delivered (``FINISHED_WORK`` it holds) when it has no ledger: [] when
    it has one, or holds nothing delivered."""
    ledger = run_dir / LEDGER_NAME
    if ledger.exists() and ledger.stat().st_size > 0:
        return []
    return [name for name in FINISHED_WORK if _holds_work(run_dir / name)]


def _refuse_fresh_start_beside_finished_work(run_dir: Path) -> None:
    """A run directory with videos or results but no ledger lost its ledger: starting afresh
    would render every row again and write over the delivered videos."""
    found = work_without_ledger(run_dir)
    if found:
        raise fresh_start_refused(
            run_dir,
            found,
            f"orchestrator adopt {run_dir} MANIFEST",
            " (with the run's --template/--flow)",
        )


def fresh_start_refused(
    run_dir: Path, found: list[str], adopt_command: str, note: str = ""
) -> RunDirError:
    """The refusal of a fresh start beside ``found`` (``work_without_ledger``), naming the
    ``adopt_command`` that rebuilds the ledger (the CLI names it whole)."""
    return RunDirError(
        f"{run_dir} holds {' and '.join(found)} but no ledger ({LEDGER_NAME}): it was removed, "
        "and starting afresh would render every row again over the delivered videos. "
        f"`{adopt_command}`{note} rebuilds the ledger from them without rendering anything; or "
        "choose another --out"
    )


def _holds_work(path: Path) -> bool:
    if path.is_dir():
        with os.scandir(path) as entries:
            return any(e.name.endswith(".mp4") and not e.name.startswith(".") for e in entries)
    return path.exists()


_LINE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every ledger line (``json.dumps`` with options builds one per call)."""


def _lock(run_dir: Path) -> int:
    """Hold ``RUN_DIR/run.lock`` (``flock``). The file is removed when the run ends
    (``Ledger.close``), so a lock acquired on a file that was removed meanwhile is let go and
    taken again on the new file."""
    path = run_dir / LOCK_NAME
    while True:
        fd = _try_lock(run_dir, path)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _write_holder(lock_fd: int, now_s: float) -> None:
    """Name this process in ``run.lock`` (read by ``status`` and by a refused second run)."""
    os.ftruncate(lock_fd, 0)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": round(now_s, 3)}
    os.lseek(lock_fd, 0, os.SEEK_SET)  # not os.pwrite: Windows has none
    os.write(lock_fd, json.dumps(record).encode("utf-8"))


def _own(run_dir: Path, ledger_fd: int, lock_fd: int) -> None:
    """Take the ledger file's own ``flock``: the ownership nobody can delete. Refused (while
    another process holds it, e.g. after someone deleted ``run.lock``), the ``run.lock`` this
    process took is given back and the owner named."""
    if not _take(ledger_fd):
        with contextlib.suppress(OSError):
            if os.fstat(lock_fd).st_size == 0:  # a run.lock this process made: not the owner's
                os.unlink(run_dir / LOCK_NAME)
        raise _in_use(run_dir, _ledger_owner(run_dir))


def _in_use(run_dir: Path, holder: dict[str, Any] | None) -> RunDirError:
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}" if holder else None
    return RunDirError(
        f"{run_dir} is in use by another run ({who or 'another process'}); wait for it to "
        "finish, or choose another --out"
    )


def _ledger_owner(run_dir: Path) -> dict[str, Any] | None:
    """Who ``run.lock`` names, else who the ledger's latest ``run`` record names (``owner``)."""
    holder = _lock_record(run_dir)
    if holder:
        return holder
    owner = None
    with contextlib.suppress(OSError, RunDirError):
        for _, event in read_events(run_dir / LEDGER_NAME):
            if isinstance(event, RunStarted) and event.owner is not None:
                owner = event.owner
    return dict(owner) if owner is not None else None


def _lock_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        raw = (run_dir / LOCK_NAME).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _try_lock(run_dir: Path, path: Path) -> int:
    with writing(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    if not _take(fd):
        os.close(fd)
        raise _in_use(run_dir, _lock_record(run_dir))
    return fd


def lock_holder(run_dir: Path) -> dict[str, Any] | None:
    """Who owns the run directory (``pid``, ``host``, ``since``), or None when no live process
    does (the run stopped, however it stopped: the kernel drops a dead process's locks). Live
    means holding ``run.lock`` or, should that file have been deleted, the ledger's own lock."""
    for name in (LOCK_NAME, LEDGER_NAME):
        if _held(run_dir / name):
            holder = _ledger_owner(run_dir)
            return holder if holder is not None else {"pid": "?", "host": "?", "since": None}
    return None


def _held(path: Path) -> bool:
    """Whether a live process holds ``path``'s ``flock`` (tested with a shared lock, let go at
    once: ``_take`` retries briefly for a run starting meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return held_elsewhere(fd)
    finally:
        os.close(fd)


def _take(fd: int) -> bool:
    """An exclusive ``flock`` on ``fd`` without waiting on a live owner, retried for a moment so
    that a ``status`` looking (with a shared lock) never turns a run away."""
    for _ in range(TAKE_TRIES):
        if try_exclusive(fd):
            return True
        time.sleep(TAKE_PAUSE_S)
    return False


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
