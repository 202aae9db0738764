"""``orchestrator purge --older-than DAYS ROOT...``: run directories whose batch is over and old.

A folder under a root is a candidate only when it is ours: it holds a ``ledger.jsonl`` whose
first record is one of our ``run`` records (anything else is never touched, and a folder that
holds a run directory is only looked into, never removed). It is removed when

- its last session ended on its own terms (the ledger's last record is ``ended``: finished,
  halted or interrupted) more than ``older_than_s`` ago; a ledger that ends without one (its
  last run was killed) is kept and said so: it may be resumed;
- and no live process holds it (``run.lock`` or the ledger's own lock, ``file.lock_holder``).
  The ledger's lock is taken while the folder is removed, so a run starting meanwhile is
  refused rather than writing into a folder being removed; the folder is renamed
  ``.NAME.purging`` first, so a removal cut short leaves no half-emptied run directory under
  its name (the next purge finds the rest: it still holds its ledger).

Shared batches in PostgreSQL: ``ledger.pg.purge``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import RunDirError, UserError
from orchestrator.ledger.file import LEDGER_NAME, first_run_record, lock_holder
from orchestrator.ledger.locks import try_exclusive

TAIL_BYTES = 64 * 1024
"""Read from a ledger's end to find its last record (a record is far shorter)."""
MAX_DEPTH = 4
"""How deep under a root run directories are looked for."""


@dataclass(frozen=True)
class Found:
    """A run directory under a root, and what purge makes of it."""

    path: Path
    last_at: float | None
    """When its last record was written (seconds since the epoch), when readable."""
    bytes: int
    action: str
    """``remove``, or why it is kept: ``fresh``, ``live``, ``unended``, ``unreadable``."""
    note: str = ""


def run_dirs(roots: Iterable[Path]) -> Iterator[Path]:
    """Every folder under ``roots`` (the roots too) holding a ``ledger.jsonl``; symbolic links
    are not followed, and a run directory is not looked into."""
    for root in roots:
        if not root.is_dir():
            raise UserError(f"{root}: no such folder; give the folders that hold run directories")
        yield from _walk(root, 0)


def _walk(folder: Path, depth: int) -> Iterator[Path]:
    if (folder / LEDGER_NAME).is_file():
        yield folder
        return
    if depth >= MAX_DEPTH:
        return
    try:
        with os.scandir(folder) as entries:
            subfolders = sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return  # unreadable: not ours to judge
    for sub in subfolders:
        yield from _walk(Path(sub), depth + 1)


def survey(roots: Iterable[Path], *, older_than_s: float, now_s: float) -> list[Found]:
    """What ``purge`` would do with each run directory under ``roots``."""
    return [_judge(path, older_than_s, now_s) for path in run_dirs(roots)]


def _judge(path: Path, older_than_s: float, now_s: float) -> Found:
    size = disk_bytes(path)
    try:
        first_run_record(path)
        last = last_record(path / LEDGER_NAME)
    except (RunDirError, OSError, ValueError) as exc:
        return Found(path, None, size, "unreadable", f"not one of our ledgers: {exc}")
    ts = last.get("ts")
    last_at = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None
    if lock_holder(path) is not None:
        return Found(path, last_at, size, "live", "a run holds it")
    if last.get("e") != "ended":
        return Found(path, last_at, size, "unended", "its last run was killed; resume it")
    if last_at is None or now_s - last_at < older_than_s:
        return Found(path, last_at, size, "fresh")
    return Found(path, last_at, size, "remove")


def last_record(ledger: Path) -> dict[str, object]:
    """The ledger's last complete record, as stored (a torn last line is skipped)."""
    with ledger.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        f.seek(max(0, end - TAIL_BYTES))
        tail = f.read()
    lines = tail.split(b"\n")
    complete = lines[:-1] if not tail.endswith(b"\n") else lines
    for raw in reversed(complete):
        if raw.strip():
            record = json.loads(raw)
            if isinstance(record, dict):
                return record
            break
    raise ValueError(f"{ledger} holds no record")


def remove(found: Found) -> bool:
    """Remove ``found``'s folder while holding its ledger's lock; False when a run took it
    meanwhile (then nothing is removed)."""
    if lock_holder(found.path) is not None:
        return False
    fd = os.open(found.path / LEDGER_NAME, os.O_RDWR)
    try:
        if not try_exclusive(fd):  # a run took it since: it owns the ledger's lock
            return False
        # Renamed first, so a removal cut short (a permission, a crash) never leaves a run
        # directory with part of its videos gone under its own name.
        doomed = found.path.with_name(f".{found.path.name}.purging")
        os.rename(found.path, doomed)
        shutil.rmtree(doomed)
        return True
    finally:
        os.close(fd)


def disk_bytes(path: Path) -> int:
    """The space the files under ``path`` take on the disk (allocated blocks where known)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(folder, name))
                blocks = getattr(st, "st_blocks", None)
                total += blocks * 512 if blocks is not None else st.st_size
    return total
