"""One owner per run directory, which nobody can delete from under it:

- The owner holds a lock on the open ledger file itself (``flock``; on Windows a byte-range
  lock: ``ledger.locks``). A second run is refused while it is held, naming the owner; the
  kernel drops it when the owner dies, however it dies. Deleting ``run.lock`` (which names the
  owner for ``status``: pid, host, since) changes nothing.
- Each session's ``run`` record carries its owner (host, pid, a nonce). A session that opens a
  ledger whose last session never recorded its end takes it over (``run_taken_over``).
- Before every write the owner checks that ``ledger.jsonl`` is still its file
  (``FileLedger._still_ours``, in ``ledger.file``).
- A missing ledger is never a fresh start when the directory holds finished work (videos or
  ``results.csv``): ``open`` refuses and names ``orchestrator adopt``
  (``refuse_fresh_start_beside_finished_work``).

Here: taking the run directory (``take_run_dir``, ``own``), naming its owner (``lock_holder``,
``in_use``), and the refusal of a fresh start beside finished work.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from orchestrator.errors import RunDirError
from orchestrator.files import PRIVATE_FILE_MODE, writing
from orchestrator.ledger.locks import held_elsewhere, try_exclusive
from orchestrator.ledger.records import RunStarted
from orchestrator.ledger.replay import LEDGER_NAME, read_events

LOCK_NAME = "run.lock"
TAKE_TRIES = 10
TAKE_PAUSE_S = 0.02
FINISHED_WORK = ("results.csv", "videos")
"""What a run directory holds once anything was delivered (a missing ledger beside these is
never a fresh start)."""


def sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def work_without_ledger(run_dir: Path) -> list[str]:
    """What a run directory delivered (``FINISHED_WORK`` it holds) when it has no ledger: [] when
    it has one, or holds nothing delivered."""
    ledger = run_dir / LEDGER_NAME
    if ledger.exists() and ledger.stat().st_size > 0:
        return []
    return [name for name in FINISHED_WORK if _holds_work(run_dir / name)]


def refuse_fresh_start_beside_finished_work(run_dir: Path) -> None:
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


def take_run_dir(run_dir: Path) -> int:
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


def write_holder(lock_fd: int, now_s: float) -> None:
    """Name this process in ``run.lock`` (read by ``status`` and by a refused second run)."""
    os.ftruncate(lock_fd, 0)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": round(now_s, 3)}
    os.lseek(lock_fd, 0, os.SEEK_SET)  # not os.pwrite: Windows has none
    os.write(lock_fd, json.dumps(record).encode("utf-8"))


def own(run_dir: Path, ledger_fd: int, lock_fd: int) -> None:
    """Take the ledger file's own ``flock``: the ownership nobody can delete. Refused (while
    another process holds it, e.g. after someone deleted ``run.lock``), the ``run.lock`` this
    process took is given back and the owner named."""
    if not _take(ledger_fd):
        with contextlib.suppress(OSError):
            if os.fstat(lock_fd).st_size == 0:  # a run.lock this process made: not the owner's
                os.unlink(run_dir / LOCK_NAME)
        raise in_use(run_dir, ledger_owner(run_dir))


def in_use(run_dir: Path, holder: dict[str, Any] | None) -> RunDirError:
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}" if holder else None
    return RunDirError(
        f"{run_dir} is in use by another run ({who or 'another process'}); wait for it to "
        "finish, or choose another --out"
    )


def ledger_owner(run_dir: Path) -> dict[str, Any] | None:
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
        raise in_use(run_dir, _lock_record(run_dir))
    return fd


def lock_holder(run_dir: Path) -> dict[str, Any] | None:
    """Who owns the run directory (``pid``, ``host``, ``since``), or None when no live process
    does (the run stopped, however it stopped: the kernel drops a dead process's locks). Live
    means holding ``run.lock`` or, should that file have been deleted, the ledger's own lock."""
    for name in (LOCK_NAME, LEDGER_NAME):
        if _held(run_dir / name):
            holder = ledger_owner(run_dir)
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
