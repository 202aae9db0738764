"""Rewriting a run directory's ``ledger.jsonl`` without some rows' values (``orchestrator
forget``), crash-safe, under the run directory's lock.

Why a rewrite, and not values kept encrypted under a per-row key that is destroyed: the ledger
is read by every command (``status``, ``report``, ``serve``, ``adopt``, a shared batch's
workers) and each would need the keys; the keys would need a store of their own, which a
deletion rewrites anyway; and ``results.csv``, the report and the log hold the same values in
plain text and must be rewritten regardless. A rewrite keeps the ledger one plain file, read
as before.

How. The caller holds the directory (``FileLedger.open``: ``run.lock`` and the ledger's own
``flock``, so no run is live and none can start). ``rewrite`` copies the ledger line by line to
``.ledger.jsonl.PID.forget`` (0600), each record of a forgotten row redacted (``forget.redact``)
and every other line byte for byte, then appends a ``forgotten`` record per newly forgotten row,
fsyncs it and renames it over ``ledger.jsonl``, then fsyncs the folder. A crash before the
rename leaves the ledger as it was (the temporary file is removed by the next ``forget``, with
any other leftover copy, ``stale_copies``); after it, the new one. The rename is the one
moment the rows become forgotten: there is no state in between. The holder's open descriptor
still names the old file, so the caller closes the ledger right after (``FileLedger.close``)
and appends nothing more; the next run opens and locks the new file as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from orchestrator.files import PRIVATE_FILE_MODE
from orchestrator.ledger.codec import encode
from orchestrator.ledger.forget import redact, row_of
from orchestrator.ledger.owner import sync_folder
from orchestrator.ledger.records import Event, Forgotten, forgotten_marker
from orchestrator.ledger.replay import LEDGER_NAME, decode_line

FORGET_PART = ".forget"
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def stale_copies(run_dir: Path) -> list[Path]:
    """Copies of the ledger a crash may have left (a ``forget`` rewrite's, a restore's): each
    holds what the ledger held. Only call while holding the directory."""
    prefix = f".{LEDGER_NAME}."
    with os.scandir(run_dir) as entries:
        return [
            Path(e.path)
            for e in entries
            if e.name.startswith(prefix) and e.name.endswith((FORGET_PART, ".restore"))
        ]


def rewrite(path: Path, forgotten: Mapping[str, str], new: Iterable[str], now_s: float) -> int:
    """Rewrite the ledger at ``path``: every record of a row in ``forgotten`` (row → the day it
    is forgotten, ``YYYY-MM-DD``) redacted, then a ``forgotten`` record for each row of ``new``
    (those not forgotten before). Returns how many records were redacted. See the module
    docstring for the crash-safety."""
    needles = [_ENCODER.encode(row).encode() for row in forgotten]  # then decoded to be sure
    tmp = path.with_name(f".{path.name}.{os.getpid()}{FORGET_PART}")
    redacted = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out, path.open("rb") as source:
            for number, raw in enumerate(source, start=1):
                if not raw.endswith(b"\n"):
                    break  # a torn tail: never acknowledged (``FileLedger.open`` drops it too)
                if any(needle in raw for needle in needles):
                    event = decode_line(path, number, raw)
                    row = row_of(event)
                    if row is not None and row in forgotten:
                        marker = forgotten_marker(forgotten[row])
                        raw = _line(redact(event, marker))
                        redacted += 1
                out.write(raw)
            for row in new:
                out.write(_line(Forgotten(row=row, date=forgotten[row], ts=round(now_s, 3))))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    sync_folder(path.parent)
    return redacted


def _line(event: Event) -> bytes:
    return (_ENCODER.encode(encode(event)) + "\n").encode("utf-8")
