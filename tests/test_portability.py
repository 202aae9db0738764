"""Where POSIX pieces are missing (Windows): the command starts without ``fcntl``, the run
directory's lock keeps its POSIX meaning, and Ctrl-C drains and stops through Python's own
signal handlers when the event loop cannot watch signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from e2e.helpers import check_invariants, run_args, write_batch

from orchestrator.ledger.locks import held_elsewhere, try_exclusive
from orchestrator.run.watchers import python_signal_receiver

ROOT = Path(__file__).resolve().parent.parent

WITHOUT_FCNTL = """
import sys
sys.modules["fcntl"] = None  # as on Windows: `import fcntl` raises ImportError
from orchestrator.cli.main import main
code = main(sys.argv[1:])
assert "fcntl" not in sys.modules or sys.modules["fcntl"] is None
sys.exit(code)
"""

LOOP_WITHOUT_SIGNALS = """
import asyncio.events, asyncio.unix_events, sys
# asyncio's event loops on Windows have no add_signal_handler: the abstract one raises
# NotImplementedError, which is what anyio's signal receiver meets there.
asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = (
    asyncio.events.AbstractEventLoop.add_signal_handler
)
from orchestrator.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["validate", "jobs/welcome/manifest.csv", "--template", "jobs/welcome/welcome.pictai"],
    ],
)
def test_the_command_starts_where_fcntl_does_not_exist(args: list[str]) -> None:
    """`orchestrator --help`, `--version` and `validate` run on a Python without ``fcntl``
    (Windows): no POSIX-only module is imported at start-up, only when a run directory is
    locked."""
    proc = _python(WITHOUT_FCNTL, *args)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert out.strip(), "it printed nothing"


def test_an_exclusive_lock_is_seen_by_another_descriptor_and_dropped_on_close(
    tmp_path: Path,
) -> None:
    """``try_exclusive`` takes the file's lock once; another descriptor of the same file can
    neither take it nor miss it (``held_elsewhere``); closing the owner's descriptor frees it.
    (The run directory's own semantics: tests/e2e/test_ownership.py.)"""
    path = tmp_path / "ledger.jsonl"
    path.write_text("")
    owner = os.open(path, os.O_RDWR | os.O_APPEND)
    other = os.open(path, os.O_RDONLY)
    try:
        assert not held_elsewhere(other)
        assert try_exclusive(owner)
        assert held_elsewhere(other)
        assert not try_exclusive(other)
        os.close(owner)
        owner = -1
        assert not held_elsewhere(other)
        assert try_exclusive(other)
    finally:
        os.close(other)
        if owner >= 0:
            os.close(owner)


async def test_python_signal_receiver_hands_each_signal_to_the_loop() -> None:
    """The fallback receiver gets every SIGINT and SIGTERM through Python's handlers, in order,
    and puts the handlers it found back when it closes."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with python_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        received = []
        with anyio.fail_after(5):
            async for signum in signals:
                received.append(signum)
                if len(received) == 2:
                    break
    assert received == [signal.SIGINT, signal.SIGTERM]
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.slow
def test_ctrl_c_drains_then_stops_where_the_loop_cannot_watch_signals(
    tmp_path: Path, make_sim: Any
) -> None:
    """On an event loop without signal handlers (as asyncio's on Windows), the first SIGINT
    still stops admitting and drains, a second stops the rows in flight at once (exit 130, no
    traceback), and the next run completes the batch without rendering anything twice."""
    sim = make_sim(render_s=3.0, preview_s=0.1)
    batch = write_batch(tmp_path, 12)
    env = sim.env()
    proc = _python(LOOP_WITHOUT_SIGNALS, *run_args(batch, "--concurrency", "3"), env=env)
    ledger = batch["out"] / "ledger.jsonl"
    deadline = time.monotonic() + 30
    while not (ledger.exists() and ledger.read_bytes().count(b'"render_job"') >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None, "the first Ctrl-C stopped the run instead of draining"
    sent_at = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent_at < 2.5  # not the renders' 3 s
    assert "finishing the rows in flight" in err
    assert "Traceback" not in err
    rerun = _python(LOOP_WITHOUT_SIGNALS, *run_args(batch), env=env)
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    stats = sim.stats()
    assert stats["duplicate_renders"] == 0
    check_invariants(batch["out"], stats, 12)
