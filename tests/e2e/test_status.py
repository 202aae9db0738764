"""``orchestrator status`` tells a live run from a stopped one: live shows the pid and host; a
killed run shows no row "rendering" and no ETA, says it ended without finishing, and names the
command that resumes it; a finished run says so; ``--json`` carries the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import run_args, write_batch

pytestmark = pytest.mark.slow


def _status(run_dir: Path, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "status", str(run_dir), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _render_jobs(run_dir: Path) -> int:
    try:
        text = (run_dir / LEDGER_NAME).read_text()
    except FileNotFoundError:
        return 0
    return text.count('"e":"render_job"')


def test_status_of_a_live_run_then_of_the_same_run_killed(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    # No render ends before the kill, however busy the machine.
    sim = make_sim(preview_s=0.05, render_s=60.0)
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    out = batch["out"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *run_args(batch)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while _render_jobs(out) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _render_jobs(out) == 3
        live = _status(out)
        assert live.startswith(f"live: pid {proc.pid} on {os.uname().nodename} since ")
        assert "rendering" in live and "next:" not in live
        assert json.loads(_status(out, "--json"))["state"] == "live"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stopped = _status(out)
    assert stopped.startswith("stopped at ")
    assert "ended without finishing (killed, crashed" in stopped
    assert "rendering" not in stopped and "eta" not in stopped
    assert "to resume         3" in stopped
    assert f"next: orchestrator resume {out}" in stopped
    report = json.loads(_status(out, "--json"))
    assert report["state"] == "stopped" and report["rows"] == {"to resume": 3}
    assert report["eta_s"] is None and report["next"] == f"orchestrator resume {out}"


def test_status_of_finished_runs(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """A spend-capped run leaves rows to resume (not "previewing"); a complete one has no next
    step; --watch on a stopped run prints once and returns."""
    api_env(make_sim())
    batch = write_batch(tmp_path, 3)
    out = batch["out"]
    assert main(run_args(batch, "--max-renders", "1")) == 1
    capped = _status(out)
    first = capped.splitlines()[0]
    assert first.startswith("stopped at ") and "spend cap: 1 renders sent" in first
    assert "previewing" not in capped and "not started       2" in capped
    assert f"next: orchestrator resume {out}" in capped
    assert main(run_args(batch)) == 0
    complete = _status(out, "--watch", "0.01")
    assert ": finished" in complete.splitlines()[0] and "next:" not in complete
    assert complete.count("stopped at ") == 1


def test_how_a_run_stopped_is_read_from_the_ledger_not_the_log(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """The ledger records how a session ended (``ended``): with log.jsonl gone, status still
    says a spend-capped run stopped admitting rows, and why."""
    api_env(make_sim())
    batch = write_batch(tmp_path, 3)
    out = batch["out"]
    assert main(run_args(batch, "--max-renders", "1")) == 1
    (out / "log.jsonl").unlink()
    report = json.loads(_status(out, "--json"))
    assert report["state"] == "stopped"
    assert report["stopped_how"].startswith("stopped admitting rows: spend cap: 1 renders sent")
    ended = [json.loads(line) for line in (out / LEDGER_NAME).read_text().splitlines()][-1]
    assert ended["e"] == "ended" and ended["how"] == "halted"


def test_report_that_cannot_write_is_one_line_and_leaves_nothing_half_written(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report`` where results.csv cannot be written (here a folder stands in its place, as a
    read-only disk would refuse it) says so in one line with exit 2, and leaves no temporary
    file behind; the ledger is untouched."""
    api_env(make_sim())
    batch = write_batch(tmp_path, 2)
    out = batch["out"]
    assert main(run_args(batch)) == 0
    ledger = (out / LEDGER_NAME).read_bytes()
    (out / "results.csv").unlink()
    (out / "results.csv").mkdir()
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"orchestrator: error: {out}: cannot write results.csv")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert (out / LEDGER_NAME).read_bytes() == ledger
