"""How a run ends, as an operator meets it: the summary on stdout (progress on stderr), why it
stopped and the one command that continues; a closed pipe never ends a run; a refused run leaves
no run directory; the lock file goes away with the run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LOCK_NAME

from .helpers import read_results, run_args, write_batch


def test_summary_goes_to_stdout_and_says_why_it_stopped(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api_env(make_sim())
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch)) == 0
    out, err = capsys.readouterr()
    assert "3 rows: 3 done" in out and "3 rows: 3 done" not in err
    assert f"results: {batch['out'] / 'results.csv'}" in out
    assert "stopped: every row done" in out and "next:" not in out
    assert not (batch["out"] / LOCK_NAME).exists()


def test_spend_cap_and_permanent_failures_name_the_next_command(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    api_env(make_sim())
    capped = write_batch(tmp_path / "capped", 3)
    assert main(run_args(capped, "--max-renders", "1")) == 1
    out = capsys.readouterr().out
    assert "stopped: stopped admitting rows: spend cap" in out
    assert f"next: orchestrator resume {capped['out']}\n" in out

    api_env(make_sim(fault_job_failed_p=1.0))
    broken = write_batch(tmp_path / "broken", 2)
    assert main(run_args(broken)) == 1
    out = capsys.readouterr().out
    assert f"next: orchestrator resume {broken['out']} --retry-failed" in out
    rows = read_results(broken["out"])
    assert {r["status"] for r in rows} == {"failed"}
    assert {r["retry"] for r in rows} == {"retry-failed"}


@pytest.mark.slow
def test_a_closed_pipe_never_ends_the_run(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """``orchestrator run … 2>&1 | head -2``: the reader goes away after two lines; the run
    still finishes, writes results.csv and removes its lock."""
    api_env(make_sim(render_s=0.2))
    batch = write_batch(tmp_path, 6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *run_args(batch, "-v")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    for _ in range(2):
        proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert {r["status"] for r in read_results(batch["out"])} == {"done"}
    assert not (batch["out"] / LOCK_NAME).exists()


def test_a_refused_run_leaves_no_run_directory(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    api_env(make_sim())
    batch = write_batch(tmp_path, 2)
    batch["manifest"].write_text("id,name,city\nrow-1,Ann\n")  # a ragged row
    assert main(run_args(batch)) == 2
    assert not batch["out"].exists()


def test_the_logged_request_rate_is_measured_not_the_limiters_ceiling(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """The limiter may allow 500 req/s; a small batch sends a handful a second, and the rate
    events (what the panel and ``status`` show) say so, with the ceiling beside it."""
    api_env(make_sim(render_s=2.5))
    slow_polls = {"poll": {"preview_interval_s": 0.5, "render_interval_s": 0.5}}
    batch = write_batch(tmp_path, 2, config=slow_polls)
    assert main(run_args(batch)) == 0
    log = batch["out"] / "log.jsonl"
    rates = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "rate"]
    assert rates, "the run was too short for a rate report"
    assert all(e["limit_rps"] >= 100 and e["rps"] < 50 for e in rates), rates


def test_a_dead_network_stops_the_run_early_with_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens at the API's address: instead of every row retrying on its own for
    minutes, the run stops after ``network_dead_after_s`` with the rows left to resume."""
    monkeypatch.setenv("PICTORY_API_BASE_URL", "http://127.0.0.1:9/pictoryapis")
    for name, value in (("ID", "c"), ("SECRET", "s"), ("USER_ID", "u")):
        key = "PICTORY_USER_ID" if name == "USER_ID" else f"PICTORY_CLIENT_{name}"
        monkeypatch.setenv(key, value)
    patient = {
        "retry": {"max_attempts": 1000, "base_delay_s": 0.05, "max_delay_s": 0.2},
        "run": {"network_dead_after_s": 1.0},
    }
    batch = write_batch(tmp_path, 4, config=patient)
    started = time.monotonic()
    assert main(run_args(batch)) == 1
    assert time.monotonic() - started < 20
    out = capsys.readouterr().out
    assert "stopped: stopped admitting rows: network: no answer from 127.0.0.1:9 for 1 s" in out
    assert f"next: orchestrator resume {batch['out']}" in out
    assert {r["status"] for r in read_results(batch["out"])} == {"pending"}


def test_max_renders_renders_the_first_rows_and_makes_no_preview_it_cannot_render(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    sim = make_sim(preview_s=0.2, jitter_frac=0.9, seed=3)
    api_env(sim)
    batch = write_batch(tmp_path, 6)
    assert main(run_args(batch, "--max-renders", "2")) == 1
    rows = read_results(batch["out"])
    assert [r["id"] for r in rows if r["status"] == "done"] == ["row-000", "row-001"]
    assert {r["status"] for r in rows[2:]} == {"pending"}
    stats = sim.stats()
    assert stats["renders_started"] == 2 and stats["jobs"]["preview"] == 2


def test_tokens_that_live_shorter_than_the_refresh_margin_do_not_loop(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """Tokens live 2 s, the refresh margin is the default 300 s: before, every fresh token
    counted as expired and the client asked for tokens in a loop, sending no API request. Now
    it renews at half the token's life: the batch finishes with a handful of token requests."""
    sim = make_sim(token_lifetime_s=2.0, render_s=0.3)
    api_env(sim)
    batch = write_batch(tmp_path, 4)
    started = time.monotonic()
    assert main(run_args(batch)) == 0
    elapsed_s = time.monotonic() - started
    tokens = sim.stats()["requests"]["POST /v1/oauth2/token"]
    assert tokens <= 2 + elapsed_s  # about one per second of run (half the 2 s lifetime)
