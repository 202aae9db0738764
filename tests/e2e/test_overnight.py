"""Unattended-run features through the CLI: the window, status, quota and the live display."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main

from .helpers import read_results, run_args, write_batch


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
    """--check-quota reads GET /v1/quota and refuses, exit 2, before rendering anything."""
    sim = make_sim(quota_video_minutes=2.0)
    api_env(sim)
    batch = write_batch(tmp_path, 5)
    assert main(run_args(batch, "--check-quota")) == 2
    assert "video minutes" in capsys.readouterr().err
    assert sim.stats()["renders_started"] == 0
