"""The real CLI as a subprocess, killed and interrupted, against a standalone simulator."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger.file import LEDGER_NAME

from .helpers import check_invariants, run_args, write_batch
from .killing import cli, kill_until_done

pytestmark = pytest.mark.slow


def test_sigkill_at_random_moments_then_rerun_completes(
    tmp_path: Path, standalone_sim: Any
) -> None:
    """Killed with SIGKILL part-way (several times), re-run until done: no row lost or rendered
    twice, and every file matches what the simulator served."""
    sim = standalone_sim(
        "--profile",
        "test",
        "--preview-seconds",
        "0.1",
        "--render-seconds",
        "1.0",
        "--max-concurrent-renders",
        "4",
        "--seed",
        "7",
    )
    batch = write_batch(tmp_path, 24)
    report = kill_until_done(
        run_args(batch), batch["out"], sim.env(), rng=random.Random(1234), kills=6
    )
    assert report.finished, "the batch never completed"
    assert report.kills >= 3, f"only {report.kills} kills landed ({report.runs} runs)"
    results = check_invariants(batch["out"], sim.stats(), 24)
    assert {r["status"] for r in results} <= {"done", "ambiguous"}


def test_ctrl_c_drains_then_resume_completes(tmp_path: Path, standalone_sim: Any) -> None:
    """The first SIGINT stops admitting and drains; exit 130; the next run completes the batch."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "0.5")
    batch = write_batch(tmp_path, 30, extra_config="")
    env = sim.env()
    proc = cli(run_args(batch, "--concurrency", "2"), env)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "finishing the rows in flight" in err
    assert "Traceback" not in err
    proc = cli(run_args(batch), env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    results = check_invariants(batch["out"], sim.stats(), 30)
    assert {r["status"] for r in results} == {"done"}


def test_a_drain_counts_down_and_stops_at_its_limit(tmp_path: Path, standalone_sim: Any) -> None:
    """The reported wait: a first Ctrl-C drained for minutes on slow renders, saying nothing.
    Now it says what it waits for, counts down to ``[run] drain_limit_s`` and that a second
    Ctrl-C stops now; at the limit the rows stop where they are (exit 130), and the next run
    re-attaches to their renders: nothing renders twice."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "6")
    batch = write_batch(tmp_path, 4, config={"run": {"drain_limit_s": 1.5}})
    env = sim.env()
    proc = cli(run_args(batch), env)
    ledger = batch["out"] / "ledger.jsonl"
    deadline = time.monotonic() + 30
    while not (ledger.exists() and ledger.read_bytes().count(b'"render_job"') >= 4):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    sent_at = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent_at < 5.0  # not the renders' 6 s
    assert "Traceback" not in err
    assert "waiting for 4 row(s) in flight" in err
    assert "Ctrl-C again stops now: every row resumes from the ledger" in err
    assert "drain limit (0m01s, [run] drain_limit_s) reached: stopping 4 row(s)" in err
    proc = cli(run_args(batch), env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    stats = sim.stats()
    assert stats["duplicate_renders"] == 0
    check_invariants(batch["out"], stats, 4)


def test_double_ctrl_c_stops_at_once_and_resumes(tmp_path: Path, standalone_sim: Any) -> None:
    """A second SIGINT cancels in-flight rows at once; the ledger stays consistent for resume."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "2")
    batch = write_batch(tmp_path, 10)
    env = sim.env()
    proc = cli(run_args(batch), env)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    proc = cli(run_args(batch), env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    check_invariants(batch["out"], sim.stats(), 10)


def test_sigterm_drains_a_run_whose_tokens_live_shorter_than_the_margin(
    tmp_path: Path, make_sim: Any
) -> None:
    """One SIGTERM while rows render with 1 s tokens (against the default 300 s margin): the run
    stops admitting, finishes the rows in flight renewing tokens as they expire, and exits 130
    with a bounded number of token requests (a client that asked for tokens in a loop never
    drained); a resume then completes the batch, nothing rendered twice."""
    sim = make_sim(token_lifetime_s=1.0, render_s=1.5, preview_s=0.2)
    slower = {"poll": {"preview_interval_s": 0.1, "render_interval_s": 0.1}}
    batch = write_batch(tmp_path, 30, config=slower)
    env = sim.env()
    proc = cli(run_args(batch, "--concurrency", "4"), env)
    try:
        ledger = batch["out"] / LEDGER_NAME
        deadline = time.monotonic() + 30
        while b'"render_job"' not in (ledger.read_bytes() if ledger.exists() else b""):
            assert proc.poll() is None and time.monotonic() < deadline, "no render started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "finishing the rows in flight" in err and "Traceback" not in err
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert any(e["e"] == "downloaded" for e in events)
    assert sim.stats()["requests"]["POST /v1/oauth2/token"] < 60
    proc = cli(run_args(batch), env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    results = check_invariants(batch["out"], sim.stats(), 30)
    assert {r["status"] for r in results} == {"done"}
