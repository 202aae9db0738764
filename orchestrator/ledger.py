"""The run's memory: ``RUN_DIR/ledger.jsonl``, append-only, one JSON event per line.

Every state change of a row is an event; replaying the file rebuilds every row's state, which is
how a run resumes after a crash, a Ctrl-C or a failure. ``append`` returns only once the event is
on disk (written and fsynced); concurrent appends share one fsync (group commit), so durability
does not cap throughput.

Events (``e`` is the type; every event has ``ts``, seconds since the epoch):

===================  ==========================================================================
``run``              a run session began: ``session``, ``manifest``, ``manifest_sha256``,
                     ``template``, ``config`` (no secrets). The file's first line is one.
``template``         a template was uploaded: ``sha256`` (of the .pictai bytes), ``template_id``
``row``              a row was admitted: ``row`` (identity), ``line``, ``output``
``uploaded``         a row's source video is where the API can read it: ``row``, ``url``,
                     ``bytes`` (0 when the row gave a URL)
``aux_job``          a transcription or highlights job exists: ``row``, ``stage``, ``job``
``preview_job``      the preview job exists: ``row``, ``job``
``preview_ready``    the preview finished: ``row``, ``job``
``render_intent``    we are about to send the render request: ``row``, ``preview_job``
``render_refused``   the render request was answered with an error, so no job was started:
                     ``row``, ``kind``, ``message`` (clears the intent)
``render_job``       the render job exists: ``row``, ``job``
``render_ready``     the render finished: ``row``, ``job``, ``video_url``, ``duration_s``
``downloaded``       the video is in place: ``row``, ``file``, ``bytes``, ``sha256``
``failed``           the row failed: ``row``, ``stage``, ``kind``, ``message``, ``permanent``
``ambiguous``        a render may or may not exist: ``row``, ``stage``, ``message``
``retry``            a failed row starts over (its earlier jobs are abandoned): ``row``, ``reason``
===================  ==========================================================================

A torn last line (the process died mid-write) is dropped on open. Any other line that is not a
ledger event is an error naming the line: the file is only ever written by us, so such a line
means it was edited or damaged, and guessing could render a video twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import anyio

from orchestrator.errors import RunDirError
from orchestrator.row_state import RowState, RowStore

LEDGER_NAME = "ledger.jsonl"
LOCK_NAME = "run.lock"


@dataclass(slots=True)
class LedgerState:
    """What replaying the ledger tells: the sessions, the uploaded templates, every row."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    templates: dict[str, str] = field(default_factory=dict)
    rows: RowStore = field(default_factory=RowStore)

    def row(self, row_id: str) -> RowState:
        """The row's live state (see ``row_state.RowStore.take``)."""
        return self.rows.take(row_id)

    def apply_replayed(self, event: dict[str, Any]) -> None:
        """``apply`` for replays, which hold no row references: memory stays bounded."""
        self.apply(event)
        self.rows.spill_excess()

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one event into the state. Unknown event types are ignored (forward compatible)."""
        kind = event.get("e")
        if kind == "run":
            self.runs.append(event)
            return
        if kind == "template":
            self.templates[event["sha256"]] = event["template_id"]
            return
        row_id = event.get("row")
        if not isinstance(row_id, str):
            return
        state = self.row(row_id)
        if kind == "row":
            state.attempts += 1
            state.line = event.get("line", state.line)
            state.output = event.get("output", state.output)
        elif kind == "uploaded":
            state.source_url = event["url"]
        elif kind == "aux_job":
            if state.aux_jobs is None:
                state.aux_jobs = {}
            state.aux_jobs[event["stage"]] = event["job"]
        elif kind == "preview_job":
            state.preview_job = event["job"]
        elif kind == "preview_ready":
            state.preview_ready = True
        elif kind == "render_intent":
            state.render_intent = True
            state.rendered_vars = event.get("vars", state.rendered_vars)
            state.rendered_values = event.get("values", state.rendered_values)
        elif kind == "render_refused":
            state.render_intent = False
        elif kind == "render_job":
            state.render_job = event["job"]
            if state.status == "ambiguous":  # resolved after the fact (e.g. by a webhook)
                state.status = "pending"
        elif kind == "render_ready":
            state.video_url = event.get("video_url")
            state.duration_s = event.get("duration_s")
        elif kind == "downloaded":
            state.file = event["file"]
            state.extras = event.get("extras")
            state.bytes = event["bytes"]
            state.sha256 = event["sha256"]
            state.status = "done"
        elif kind == "failed":
            state.status = "failed"
            state.fail_stage = event.get("stage")
            state.fail_kind = event.get("kind")
            state.fail_message = event.get("message")
            state.fail_permanent = bool(event.get("permanent"))
        elif kind == "ambiguous":
            state.status = "ambiguous"
            state.fail_stage = event.get("stage")
            state.fail_kind = "ambiguous"
            state.fail_message = event.get("message")
        elif kind == "retry":
            state.restart()
            if isinstance(event.get("output"), str):
                state.output_override = event["output"]


def read_events(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, event)``; drop a torn last line; raise on damage elsewhere."""
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


_NUMBER = (int, float)
_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "template": {"sha256": str, "template_id": str},
    "uploaded": {"row": str, "url": str},
    "aux_job": {"row": str, "stage": str, "job": str},
    "preview_job": {"row": str, "job": str},
    "render_job": {"row": str, "job": str},
    "downloaded": {"row": str, "file": str, "bytes": int, "sha256": str},
}
"""Per event kind, the fields ``LedgerState.apply`` reads and must find, with their types."""
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "row": str,
    "line": int,
    "output": str,
    "video_url": str,
    "duration_s": _NUMBER,
    "stage": str,
    "kind": str,
    "message": str,
    "extras": list,
    "vars": str,
    "values": dict,
}
"""Fields that may be absent or null, and their type when given."""
_DAMAGED_HINT = (
    "Restore the ledger from a backup, or remove that line if you know what it held; "
    "orchestrator will not guess, because guessing could render a video twice"
)


def _decode(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError:
        event = None
    if not isinstance(event, dict) or not isinstance(event.get("e"), str):
        raise RunDirError(
            f"{path}:{number}: this line is not a ledger event (the file was edited or "
            f"damaged). {_DAMAGED_HINT}"
        )
    kind = event["e"]
    for name, expected in _OPTIONAL.items():
        value = event.get(name)
        if value is not None and not isinstance(value, expected):
            _damaged_field(path, number, kind, name)
    for name, expected in _REQUIRED.get(kind, {}).items():
        if not isinstance(event.get(name), expected):
            _damaged_field(path, number, kind, name)
    return event


def _damaged_field(path: Path, number: int, kind: str, name: str) -> NoReturn:
    raise RunDirError(
        f"{path}:{number}: field {name!r} of this {kind!r} event is missing or of the wrong "
        f"type (the file was edited or damaged). {_DAMAGED_HINT}"
    )


def replay(path: Path) -> LedgerState:
    state = LedgerState()
    if path.exists():
        for _, event in read_events(path):
            state.apply_replayed(event)
    return state


class Ledger:
    """Durable, append-only event log with group commit. Open with ``Ledger.open(run_dir)``."""

    def __init__(self, path: Path, fd: int, lock_fd: int, state: LedgerState) -> None:
        self.path = path
        self.state = state
        self._fd = fd
        self._lock_fd = lock_fd
        self._pending: list[bytes] = []
        self._enqueued = 0
        self._durable = 0
        self._flushing = False
        self._flushed = anyio.Event()
        self._error: BaseException | None = None
        self.fsyncs = 0

    @classmethod
    def open(cls, run_dir: Path) -> Ledger:
        """Lock the run dir, replay the ledger, and drop a torn tail so appends start clean."""
        run_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(run_dir)
        try:
            path = run_dir / LEDGER_NAME
            state = replay(path)
            _truncate_torn_tail(path)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, fd, lock_fd, state)

    def close(self) -> None:
        """Write what cancelled appenders left pending, then release the file and the lock."""
        if self._pending and self._error is None:
            batch, self._pending = self._pending, []
            self._write_and_sync(b"".join(batch))
        os.close(self._fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path.parent / LOCK_NAME)  # still held: nobody can take it meanwhile
        os.close(self._lock_fd)
        self.state.rows.close()

    async def append(self, event: dict[str, Any]) -> None:
        """Record ``event``; returns once it is on disk. The in-memory state follows at once."""
        event = {"e": event["e"], "ts": round(time.time(), 3), **event}
        line = json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"
        self.state.apply(event)
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


def _lock(run_dir: Path) -> int:
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
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": round(time.time(), 3)}
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
