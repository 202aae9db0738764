"""The canary and the notification end to end through the CLI against the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import EXIT_AWAITING_APPROVAL, main

from .helpers import check_invariants, read_results, run_args, write_batch
from .receiver import Receiver


def test_canary_renders_three_then_approve_renders_the_other_47(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """--canary 3 on 50 rows renders exactly 3 and exits 3 saying how to approve; running it
    again renders nothing; `approve` renders the other 47 and nothing twice (50 renders)."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 50)
    assert main(run_args(batch, "--canary", "3")) == EXIT_AWAITING_APPROVAL == 3
    out = capsys.readouterr().out
    assert f"orchestrator approve {batch['out']}" in out
    assert "render the other 47" in out
    statuses = [r["status"] for r in read_results(batch["out"])]
    assert statuses.count("done") == 3 and statuses.count("pending") == 47
    assert sim.stats()["renders_started"] == 3
    assert "approve" in (batch["out"] / "report.html").read_text()
    (batch["out"] / "report.html").unlink()
    assert main(["report", str(batch["out"])]) == 1  # `report` rewrites it (rows pending: 1)
    assert "orchestrator approve" in (batch["out"] / "report.html").read_text()

    assert main(run_args(batch)) == 3  # the same command without --canary still waits
    assert sim.stats()["renders_started"] == 3

    approve = ["approve", str(batch["out"]), "--config", str(batch["config"])]
    assert main(approve) == 0
    check_invariants(batch["out"], sim.stats(), 50)
    assert sim.stats()["renders_started"] == 50
    assert "approve" not in (batch["out"] / "report.html").read_text()


def test_approve_flag_on_the_same_command_renders_the_rest(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """The same run command with --approve finishes the batch after a canary."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 8)
    assert main(run_args(batch, "--canary", "2")) == 3
    assert main(run_args(batch, "--canary", "2", "--approve")) == 0
    check_invariants(batch["out"], sim.stats(), 8)
    assert sim.stats()["renders_started"] == 8


def test_approve_without_a_canary_is_refused(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """`approve` on a run directory that holds no canary says so (exit 2) and records
    nothing."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch)) == 0
    ledger = (batch["out"] / "ledger.jsonl").read_bytes()
    assert main(["approve", str(batch["out"]), "--config", str(batch["config"])]) == 2
    assert (batch["out"] / "ledger.jsonl").read_bytes() == ledger  # refused: nothing recorded


def test_notification_reaches_a_local_receiver_with_the_counts(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """A canary's wait and the approved run's end each POST a Slack-compatible body with the
    right counts; neither carries a secret, and the ledger does not record the URL."""
    sim = make_sim()
    api_env(sim, client_secret="very-secret-value")
    batch = write_batch(tmp_path, 5)
    with Receiver() as receiver:
        assert main(run_args(batch, "--canary", "2", "--notify", receiver.url)) == 3
        assert main(run_args(batch, "--approve", "--notify", receiver.url)) == 0
    waiting, finished = receiver.bodies
    assert waiting["event"] == "awaiting_approval"
    assert waiting["counts"] == {"done": 2, "failed": 0, "ambiguous": 0, "pending": 3}
    assert "orchestrator approve" in waiting["text"]
    assert finished["event"] == "finished"
    assert finished["counts"] == {"done": 5, "failed": 0, "ambiguous": 0, "pending": 0}
    assert finished["total"] == 5 and finished["started_this_run"] == 3
    assert finished["text"].startswith(f"orchestrator: {batch['out']} finished: 5 done")
    for body in receiver.bodies:
        assert "very-secret-value" not in json.dumps(body)
    for name in ("ledger.jsonl", "log.jsonl"):
        assert "secret-key" not in (batch["out"] / name).read_text()


def test_a_failed_notification_is_logged_and_the_run_succeeds(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """A receiver answering 500 costs a `notify_failed` log line, never the run's exit code."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    with Receiver(status=500) as receiver:
        assert main(run_args(batch, "--notify", receiver.url)) == 0
    assert len(receiver.bodies) == 1
    log = (batch["out"] / "log.jsonl").read_text()
    assert '"event": "notify_failed"' in log and "HTTP 500" in log


def test_a_halted_run_notifies_with_its_reason(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """A run stopped by its spend cap sends event `halted` with the reason and the counts."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 4, config={"limits": {"max_rows_in_flight": 1}})
    with Receiver() as receiver:
        assert main(run_args(batch, "--max-renders", "1", "--notify", receiver.url)) == 1
    (body,) = receiver.bodies
    assert body["event"] == "halted"
    assert body["reason"].startswith("spend cap: 1 renders sent")
    assert body["counts"]["done"] == 1 and body["counts"]["pending"] == 3


def test_a_canary_that_covers_every_row_does_not_wait(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """--canary 5 on 3 rows renders them all and exits 0: nothing is left to approve."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch, "--canary", "5")) == 0
    assert sim.stats()["renders_started"] == 3
