"""The kill-and-rerun loop shared by the crash tests and ``scripts/soak``.

A run of the real CLI (a subprocess) is killed with SIGKILL at a seeded random moment, then run
again, until the batch finishes by itself. Moments are drawn two ways, so kills land everywhere:

- by time, early in a run (start-up, pre-flight, token, template upload), or
- by progress: once the ledger has grown by a random number of lines (1 to ``max_lines_per_kill``),
  plus a few random milliseconds, so kills land between and during ledger writes, in the render
  request's round trip and mid-download.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.ledger.file import LEDGER_NAME

EARLY_KILL_SHARE = 0.25
EARLY_KILL_S = (0.05, 1.2)
EXTRA_DELAY_S = (0.0, 0.03)
POLL_S = 0.005
RUN_TIMEOUT_S = 120.0


@dataclass
class KillReport:
    kills: int = 0
    runs: int = 0
    finished: bool = False
    last_exit: int | None = None


def cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ledger_lines(run_dir: Path) -> int:
    try:
        return (run_dir / LEDGER_NAME).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_moment(
    proc: subprocess.Popen[str], run_dir: Path, rng: random.Random, max_lines_per_kill: int
) -> bool:
    """Wait for a random moment of this run and SIGKILL it; False if it ended first."""
    if rng.random() < EARLY_KILL_SHARE:
        try:
            proc.wait(timeout=rng.uniform(*EARLY_KILL_S))
            return False
        except subprocess.TimeoutExpired:
            pass
    else:
        target = _ledger_lines(run_dir) + rng.randint(1, max_lines_per_kill)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while _ledger_lines(run_dir) < target:
            if proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise AssertionError("the run made no progress")
            time.sleep(POLL_S)
        time.sleep(rng.uniform(*EXTRA_DELAY_S))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    return True


def kill_until_done(
    args: list[str],
    run_dir: Path,
    env: dict[str, str],
    *,
    rng: random.Random,
    kills: int,
    max_lines_per_kill: int = 12,
    max_runs: int = 1000,
    on_stderr: Callable[[str], None] | None = None,
) -> KillReport:
    """Run the batch, killing up to ``kills`` runs at random moments, until a run ends by itself.

    Every run's stderr must be free of tracebacks. A run that ends by itself has done all it can:
    rows whose render was in flight at a kill are ambiguous by contract (never resent), so its
    exit status may be 1.
    """
    report = KillReport()
    while report.runs < max_runs:
        report.runs += 1
        proc = cli(args, env)
        killed = False
        if report.kills < kills:
            killed = _kill_moment(proc, run_dir, rng, max_lines_per_kill)
            report.kills += killed
        _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
        if on_stderr is not None:
            on_stderr(err)
        assert "Traceback" not in err, err
        report.last_exit = proc.returncode
        if not killed:
            assert proc.returncode in (0, 1), err
            report.finished = True
            return report
    return report
