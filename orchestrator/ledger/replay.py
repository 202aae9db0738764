"""Reading a JSONL ledger back: ``read_events`` (line by line), ``replay`` (into a
``LedgerState``), ``read_ledger`` and ``first_run_record`` for the commands that only read a
run directory, and the torn tail an open drops (``truncate_torn_tail``).

A torn last line (the process died mid-write) is dropped on open. Any other line that is not a
ledger event is an error naming the line: the file is only ever written by us, so such a line
means it was edited or damaged, and guessing could render a video twice. A line a newer
orchestrator wrote (an event kind this version does not know, a ``run`` record of a newer
format) is refused the same way, naming the line and both formats (``codec.newer_ledger``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import DamagedRecord, NewerRecord, RunDirError
from orchestrator.ledger.codec import decode, newer_ledger
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import UNNUMBERED_FORMAT, Event, RunStarted

LEDGER_NAME = "ledger.jsonl"
_DAMAGED_HINT = (
    "Restore the ledger from a backup, or remove that line if you know what it held; "
    "orchestrator will not guess, because guessing could render a video twice"
)


def read_events(path: Path) -> Iterator[tuple[int, Event]]:
    """Yield ``(line_number, event)``; drop a torn last line; raise ``RunDirError`` naming the
    line on damage elsewhere, and on a line a newer orchestrator wrote."""
    with path.open("rb") as f:
        pending: tuple[int, bytes] | None = None
        for number, raw in enumerate(f, start=1):
            if pending is not None:
                yield pending[0], decode_line(path, *pending)
            pending = (number, raw)
        if pending is not None:
            number, raw = pending
            if not raw.endswith(b"\n"):
                return  # torn by a crash mid-write: the event was never acknowledged
            yield number, decode_line(path, number, raw)


_JSON = json.JSONDecoder()


def decode_line(path: Path, number: int, raw: bytes) -> Event:
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


def truncate_torn_tail(path: Path) -> None:
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
