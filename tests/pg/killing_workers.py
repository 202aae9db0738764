"""The kill-and-restart loop of ``scripts/soak --ledger pg``: several ``orchestrator worker``
processes on one batch in a real PostgreSQL, one of them SIGKILLed at a seeded random moment
and started again at once, over and over; then, once every worker has ended by itself, the
invariants: no row lost (every row ``done`` or ``ambiguous``: a kill between a render's intent
and its job id), no render sent twice (the simulator counts them), every done row's video in a
worker's folder with the bytes the simulator served, and no traceback from any worker.

Kill moments: a quarter early in a worker's life (start-up, opening the batch, the first claims),
the rest after a random pause (``KILL_GAP_S``) while all work, so kills land in claims, ledger
writes, render round trips and downloads. Only the standard library, asyncpg and the package.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

EARLY_KILL_SHARE = 0.25
EARLY_KILL_S = (0.05, 1.0)
"""An early kill lands this long after the worker started."""
KILL_GAP_S = (0.2, 1.5)
"""Otherwise this long after the previous kill."""
BATCH_TIMEOUT_S = 300.0
"""A batch whose workers are not all done this long after the last kill never finished."""
CLI_TIMEOUT_S = 120.0


@dataclass
class BatchReport:
    """What one batch of the soak saw; ``problems`` lists every invariant it broke."""

    kills: int = 0
    starts: int = 0
    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicates: int = 0
    taken_over: int = 0
    problems: list[str] = field(default_factory=list)


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


class Worker:
    """One worker's seat: its ``--out`` folder, the process in it now, what it printed."""

    def __init__(self, url: str, out: Path, config: Path, env: dict[str, str]) -> None:
        self.url, self.out, self.config, self.env = url, out, config, env
        out.mkdir(parents=True, exist_ok=True)
        self.proc = self.start()
        self.started_at = time.monotonic()

    def start(self) -> subprocess.Popen[str]:
        with (self.out / "worker.out").open("a") as said:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "orchestrator", "worker"),
                    *("--ledger", self.url, "--out", str(self.out), "--config", str(self.config)),
                ],
                env=self.env,
                stdout=said,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.started_at = time.monotonic()
        return proc

    def kill_and_restart(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = self.start()

    def said(self) -> str:
        return (self.out / "worker.out").read_text(errors="replace")


def soak_batch(
    url: str,
    batch: dict[str, Path],
    env: dict[str, str],
    served: Callable[[], dict[str, Any]],
    *,
    workers: int,
    kills: int,
    rng: random.Random,
) -> BatchReport:
    """Submit ``batch`` (a ``write_batch`` folder) to the migrated database at ``url``, work it
    with ``workers`` workers, ``kills`` of them killed and restarted along the way; check the
    invariants once every worker ended by itself. ``served``: the simulator's statistics."""
    report = BatchReport()
    submitted = cli(
        [
            *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
            *("--ledger", url, "--name", "soak"),
        ],
        env,
    )
    if submitted.returncode != 0:
        report.problems.append(f"submit failed: {submitted.stderr.strip()}")
        return report
    root = batch["manifest"].parent
    seats = [Worker(url, root / f"w{i}", batch["config"], env) for i in range(workers)]
    report.starts = workers
    while report.kills < kills:
        seat = rng.choice(seats)
        if rng.random() < EARLY_KILL_SHARE:
            time.sleep(max(0.0, seat.started_at + rng.uniform(*EARLY_KILL_S) - time.monotonic()))
        else:
            time.sleep(rng.uniform(*KILL_GAP_S))
        if all(s.proc.poll() is not None for s in seats):
            break  # the batch is done: nothing left to kill
        if seat.proc.poll() is not None:
            continue  # this one ended by itself; the others still work
        seat.kill_and_restart()
        report.kills += 1
        report.starts += 1
    deadline = time.monotonic() + BATCH_TIMEOUT_S
    for seat in seats:
        try:
            code = seat.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            seat.proc.kill()
            seat.proc.wait()
            report.problems.append(f"{seat.out.name} never finished")
            continue
        if code not in (0, 1):
            report.problems.append(f"{seat.out.name} ended with exit {code}: {seat.said()[-800:]}")
    for seat in seats:
        if "Traceback" in seat.said():
            report.problems.append(f"{seat.out.name} printed a traceback: {seat.said()[-2000:]}")
    _check(url, root, seats, env, served(), report)
    return report


def _check(
    url: str,
    root: Path,
    seats: list[Worker],
    env: dict[str, str],
    stats: dict[str, Any],
    report: BatchReport,
) -> None:
    """The invariants, read from the database, ``results.csv`` and the simulator."""
    made = cli(["report", str(root / "results"), "--ledger", url], env)
    if made.returncode not in (0, 1):  # 1: some rows are not done (ambiguous ones)
        report.problems.append(f"report failed: {made.stdout.strip()} {made.stderr.strip()}")
        return
    with (root / "results" / "results.csv").open(newline="") as f:
        results = list(csv.DictReader(f))
    stored = asyncio.run(_rows(url))
    report.rows = len(stored)
    report.statuses.update(status for status, _ in stored.values())
    report.taken_over = sum(1 for _, taken in stored.values() if taken)
    report.lost = sum(1 for status, _ in stored.values() if status not in ("done", "ambiguous"))
    if report.lost:
        report.problems.append(f"{report.lost} row(s) lost: {dict(report.statuses)}")
    if len(results) != len(stored) or len({r["id"] for r in results}) != len(stored):
        report.problems.append(f"results.csv has {len(results)} rows for {len(stored)}")
    report.duplicates = int(stats["duplicate_renders"])
    twice = [job for job, n in stats["renders_per_preview"].items() if n != 1]
    if report.duplicates or twice:
        report.problems.append(f"rendered twice: {report.duplicates} duplicate(s), {twice}")
    videos = stats["videos"]
    for row in results:
        if row["status"] != "done":
            continue
        copies = [s.out / row["file"] for s in seats if (s.out / row["file"]).exists()]
        sums = {hashlib.sha256(c.read_bytes()).hexdigest() for c in copies}
        expected = videos.get(row["render_job_id"], {}).get("sha256")
        if not copies or sums != {row["sha256"]} or expected != row["sha256"]:
            report.problems.append(f"row {row['id']}: its video is missing or not what was served")


async def _rows(url: str) -> dict[str, tuple[str, bool]]:
    """Every row's status, and whether it was taken over from a killed worker."""
    conn = await asyncpg.connect(url)
    try:
        records = await conn.fetch("SELECT row_key, status, taken_from FROM rows")
    finally:
        await conn.close()
    return {r["row_key"]: (r["status"], r["taken_from"] is not None) for r in records}
