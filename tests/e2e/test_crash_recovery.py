"""Crashes and a damaged run directory: SIGKILL storms, torn and garbage ledger lines, two runs
on one run directory."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME, LOCK_NAME, replay

from .helpers import check_invariants, read_results, run_args, write_batch
from .killing import cli, kill_until_done


@pytest.mark.slow
def test_sigkill_storm_then_rerun_keeps_every_invariant(
    tmp_path: Path,
    standalone_sim: Any,
) -> None:
    """Sixteen SIGKILLs at seeded random moments (start-up, between and during ledger writes,
    mid-render, mid-download), then runs until the batch ends by itself: no row lost or rendered
    twice, every file what the simulator served, and only a render caught in flight ambiguous."""
    sim = standalone_sim(
        "--profile",
        "test",
        "--preview-seconds",
        "0.05",
        "--render-seconds",
        "0.3",
        "--max-concurrent-renders",
        "4",
        "--seed",
        "21",
    )
    # 50 rows write ~380 ledger lines: room for 16 kills of at most 12 new lines each, so every
    # kill lands before the batch can finish (with 30 a loaded machine sometimes finished first).
    batch = write_batch(tmp_path, 50)
    report = kill_until_done(
        run_args(batch), batch["out"], sim.env(), rng=random.Random(2024), kills=16
    )
    assert report.finished and report.kills == 16, report
    results = check_invariants(batch["out"], sim.stats(), 50)
    assert {r["status"] for r in results} <= {"done", "ambiguous"}
    state = replay(batch["out"] / LEDGER_NAME)
    for r in results:
        if r["status"] == "ambiguous":
            assert state.rows[r["id"]].render_intent and state.rows[r["id"]].render_job is None


def _half_run(tmp_path: Path, make_sim: Any, api_env: Any) -> tuple[Any, dict[str, Path]]:
    """A batch of 6 with 2 rows done and 4 left pending by the spend cap."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 6)
    assert main(run_args(batch, "--max-renders", "2")) == 1
    return sim, batch


def test_torn_last_ledger_line_is_dropped_and_the_run_carries_on(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ledger ending mid-JSON (a crash mid-write) loses only that unacknowledged event: the next
    run drops it, finishes the batch, and leaves a ledger of whole lines."""
    sim, batch = _half_run(tmp_path, make_sim, api_env)
    ledger = batch["out"] / LEDGER_NAME
    with ledger.open("ab") as f:
        f.write(b'{"e":"render_job","row":"row-005","jo')
    assert main(run_args(batch)) == 0
    assert "Traceback" not in capsys.readouterr().err
    check_invariants(batch["out"], sim.stats(), 6)
    data = ledger.read_bytes()
    assert data.endswith(b"\n") and b'"jo\n' not in data and b'"jo{' not in data


@pytest.mark.parametrize("command", ["run", "resume", "report", "status"])
def test_garbage_ledger_line_stops_with_its_line_number(
    tmp_path: Path,
    make_sim: Any,
    api_env: Any,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """A damaged line in the middle of the ledger stops every command with exit 2 and one message
    naming the file and line; nothing is sent and nothing is rewritten."""
    sim, batch = _half_run(tmp_path, make_sim, api_env)
    ledger = batch["out"] / LEDGER_NAME
    lines = ledger.read_bytes().splitlines(keepends=True)
    lines.insert(3, b"this is not json\n")
    ledger.write_bytes(b"".join(lines))
    capsys.readouterr()
    requests = sim.stats()["requests_total"]
    args = {
        "run": run_args(batch),
        "resume": ["resume", str(batch["out"]), "--config", str(batch["config"])],
        "report": ["report", str(batch["out"])],
        "status": ["status", str(batch["out"])],
    }[command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert f"{ledger}:4: this line is not a ledger event" in first
    assert sim.stats()["requests_total"] == requests + 1  # only our own stats read
    assert ledger.read_bytes() == b"".join(lines)


@pytest.mark.slow
def test_second_run_on_a_busy_run_dir_is_refused(
    tmp_path: Path,
    standalone_sim: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While one run works in a run directory, a second one on it is refused (exit 2, naming the
    first one's pid) without touching the ledger; the first carries on and finishes."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "1.5")
    batch = write_batch(tmp_path, 3)
    env = sim.env()
    first = cli(run_args(batch), env)
    ledger = batch["out"] / LEDGER_NAME
    deadline = time.monotonic() + 30
    while not (ledger.exists() and b'"render_job"' in ledger.read_bytes()):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    before = ledger.read_bytes()
    for name in ("PICTORY_API_BASE_URL", "PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("PICTORY_USER_ID", env["PICTORY_USER_ID"])
    try:
        assert main(run_args(batch)) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert f"is in use by another run (pid {first.pid} on " in err
        assert first.poll() is None, "the first run should still be working"
        assert ledger.read_bytes()[: len(before)] == before
        assert json.loads((batch["out"] / LOCK_NAME).read_text())["pid"] == first.pid
    finally:
        _, first_err = first.communicate(timeout=60)
    assert first.returncode == 0, first_err
    check_invariants(batch["out"], sim.stats(), 3)
    assert {r["status"] for r in read_results(batch["out"])} == {"done"}
