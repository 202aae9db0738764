"""Unattended-run features through the CLI: the window, status, quota and the live display."""

from __future__ import annotations

import datetime as dt
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import check_invariants, read_results, run_args, write_batch
from .killing import cli


def test_until_refuses_rows_that_cannot_finish_in_time(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """--until a minute from now, with rows assumed to take 10 min: no row starts; all pending."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3, extra_config="[run]\nassumed_row_s = 600.0\n")
    until = (dt.datetime.now() + dt.timedelta(minutes=1)).strftime("%H:%M")
    assert main(run_args(batch, "--until", until)) == 1
    assert {r["status"] for r in read_results(batch["out"])} == {"pending"}
    assert sim.stats()["renders_started"] == 0
    assert "window closes" in capsys.readouterr().err


def test_status_reports_counts_failures_and_rate(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status RUN_DIR` prints counts by state and failures grouped by class with an example."""
    sim = make_sim(fault_job_failed_p=0.5, seed=3)
    api_env(sim)
    batch = write_batch(tmp_path, 10)
    main(run_args(batch))
    capsys.readouterr()
    assert main(["status", str(batch["out"])]) == 0
    out = capsys.readouterr().out
    results = read_results(batch["out"])
    done = sum(r["status"] == "done" for r in results)
    failed = sum(r["status"] == "failed" for r in results)
    assert "rows: 10 in the manifest" in out
    assert f"done              {done}" in out
    if failed:
        assert f"failed (job_failed): {failed}" in out


def test_quota_check_refuses_a_batch_that_cannot_fit(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check-quota reads GET /v1/quota and refuses, exit 2, before rendering anything (5 rows
    of the 4-second test template need 0.33 video minutes; docs/cost.md)."""
    sim = make_sim(quota_video_minutes=0.2)
    api_env(sim)
    batch = write_batch(tmp_path, 5)
    assert main(run_args(batch, "--check-quota")) == 2
    assert "video minutes" in capsys.readouterr().err
    assert sim.stats()["renders_started"] == 0


def test_window_not_open_yet_waits_and_ctrl_c_leaves_every_row_pending(
    tmp_path: Path, standalone_sim: Any
) -> None:
    """--window opening in two hours: the real CLI says it waits, starts nothing, and a Ctrl-C
    ends the wait at once (exit 130) with every row pending for the next run."""
    sim = standalone_sim("--profile", "test")
    batch = write_batch(tmp_path, 3)
    opens = dt.datetime.now() + dt.timedelta(hours=2)
    window = f"{opens:%H:%M}-{opens + dt.timedelta(hours=1):%H:%M}"
    proc = cli(run_args(batch, "--window", window), sim.env())
    log = batch["out"] / "log.jsonl"
    deadline = time.monotonic() + 30
    while b"waiting_for_window" not in (log.read_bytes() if log.exists() else b""):
        assert time.monotonic() < deadline and proc.poll() is None, "never waited for the window"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "for the window to open" in err
    assert "Traceback" not in err
    assert {r["status"] for r in read_results(batch["out"])} == {"pending"}
    assert sim.stats()["renders_started"] == 0


def test_at_window_end_stop_leaves_rows_in_flight_for_the_next_run(
    tmp_path: Path, standalone_sim: Any
) -> None:
    """--at-window-end stop with a window closing 6 s from now while renders run: the CLI stops
    them there (rows pending, nothing failed), and a run after it finishes them from the same
    render jobs: nothing is rendered twice."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "12")  # 6-18 s with jitter
    batch = write_batch(tmp_path, 4, extra_config="[run]\nassumed_row_s = 1.0\n")
    now = dt.datetime.now()
    window = f"{now - dt.timedelta(minutes=1):%H:%M:%S}-{now + dt.timedelta(seconds=6):%H:%M:%S}"
    env = sim.env()
    started = time.monotonic()
    proc = cli(run_args(batch, "--window", window, "--at-window-end", "stop"), env)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30, "the run did not stop at the window's end"
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert {r["status"] for r in read_results(batch["out"])} == {"pending"}
    assert b"window_closed" in (batch["out"] / "log.jsonl").read_bytes()
    assert sim.stats()["renders_started"] == 4
    proc = cli(run_args(batch), env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    results = check_invariants(batch["out"], sim.stats(), 4)
    assert {r["status"] for r in results} == {"done"}
    assert sim.stats()["renders_started"] == 4


def test_until_against_the_simulator_judges_rows_by_its_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --simulate, before any row has finished a row is expected to take about as long as
    the profile's jobs (milliseconds here), not the real API's 10 minutes: --until two minutes
    from now renders the batch."""
    batch = write_batch(tmp_path, 3)
    until = (dt.datetime.now() + dt.timedelta(minutes=2)).strftime("%H:%M:%S")
    assert main(run_args(batch, "--until", until, "--simulate", "test")) == 0
    assert {r["status"] for r in read_results(batch["out"])} == {"done"}


def test_until_a_time_already_past_today_is_refused_with_what_it_would_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = dt.datetime.now()
    past = now - dt.timedelta(minutes=5)
    if past.date() != now.date():
        pytest.skip("five minutes ago was yesterday; run again after 00:05")
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--until", f"{past:%H:%M}", "--simulate", "test")) == 2
    err = capsys.readouterr().err
    assert f"--until {past:%H:%M}: that time has passed today" in err
    assert f"it would mean tomorrow {past + dt.timedelta(days=1):%a %H:%M}" in err
    assert not batch["out"].exists()
