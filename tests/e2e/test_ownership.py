"""One owner per run directory, which nobody can delete from under it (docs/failures.md,
"Who owns a run directory"): a deleted ``run.lock`` lets no second run in, a deleted ledger is
put back by its owner, a missing ledger beside delivered videos is never a fresh start
(``orchestrator adopt`` rebuilds it), and a dead owner's directory is taken over with a line."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME, LOCK_NAME, lock_holder
from tests.e2e.helpers import check_invariants, read_results, run_args, write_batch
from tests.e2e.killing import cli

pytestmark = pytest.mark.slow


def _wait_for(
    predicate: Any, proc: subprocess.Popen[str], what: str, timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.01)


def _renders(sim: Any) -> int:
    stats = sim.stats()
    return int(sum(stats["renders_per_preview"].values()))


def _ledger_has(run_dir: Path, marker: bytes) -> bool:
    try:
        return marker in (run_dir / LEDGER_NAME).read_bytes()
    except FileNotFoundError:
        return False


def _use_sim_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        if name.startswith("PICTORY_"):
            monkeypatch.setenv(name, value)


def test_deleting_run_lock_lets_no_second_run_in(
    tmp_path: Path,
    standalone_sim: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reported fault: ``run.lock`` deleted while a run works, a second run on the same
    ``--out`` started and rendered the rows again. Now it is refused, naming the owner, and the
    simulator counts no duplicate render."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "1.0")
    batch = write_batch(tmp_path, 12)
    first = cli(run_args(batch), sim.env())
    out = batch["out"]
    _wait_for(lambda: _ledger_has(out, b'"render_job"'), first, "a render job")
    (out / LOCK_NAME).unlink()
    holder = lock_holder(out)  # status still sees the owner, by the ledger's own lock
    assert holder is not None and holder["pid"] == first.pid
    _use_sim_env(monkeypatch, sim.env())
    try:
        assert main(run_args(batch)) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert f"is in use by another run (pid {first.pid} on " in err
        assert not (out / LOCK_NAME).exists(), "the refused run leaves no run.lock of its own"
        assert first.poll() is None, "the first run should still be working"
    finally:
        _, first_err = first.communicate(timeout=60)
    assert first.returncode == 0, first_err
    stats = sim.stats()
    assert stats["duplicate_renders"] == 0
    check_invariants(out, stats, 12)


def test_a_removed_ledger_is_put_back_by_its_owner(tmp_path: Path, standalone_sim: Any) -> None:
    """``ledger.jsonl`` deleted while the run works: before its next write the owner puts its
    own copy back under the name and goes on; the batch ends whole, nothing rendered twice."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "0.5")
    batch = write_batch(tmp_path, 10)
    run = cli(run_args(batch), sim.env())
    out = batch["out"]
    _wait_for(lambda: _ledger_has(out, b'"render_job"'), run, "a render job")
    before = (out / LEDGER_NAME).read_bytes()
    (out / LEDGER_NAME).unlink()
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "was removed while this run worked; put this run's copy back" in err
    assert (out / LEDGER_NAME).read_bytes().startswith(before)
    stats = sim.stats()
    assert stats["duplicate_renders"] == 0
    check_invariants(out, stats, 10)


def test_missing_ledger_beside_videos_is_refused_then_adopted(
    tmp_path: Path,
    standalone_sim: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A finished run directory loses its ledger. The next run refuses (exit 2, naming
    ``orchestrator adopt``) and renders nothing; ``adopt`` rebuilds the ledger without a request:
    videos there are done, a row whose video went missing re-attaches to its render job; the
    same run command then downloads that one video again and renders nothing."""
    sim = standalone_sim("--profile", "test")
    _use_sim_env(monkeypatch, sim.env())
    batch = write_batch(tmp_path, 6)
    out = batch["out"]
    assert main(run_args(batch)) == 0
    renders = _renders(sim)
    results = {r["id"]: r for r in read_results(out)}
    videos = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "videos").iterdir()
    }
    (out / LEDGER_NAME).unlink()
    missing = out / results["row-002"]["file"]
    missing.unlink()
    capsys.readouterr()
    requests = sim.stats()["requests_total"]

    assert main(run_args(batch)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "no ledger (ledger.jsonl)" in err
    assert f"`orchestrator adopt {out} {batch['manifest']} --template {batch['template']}" in err
    assert not (out / LEDGER_NAME).exists()
    assert sim.stats()["requests_total"] == requests + 1, "refused before any request"

    adopt = ["adopt", str(out), str(batch["manifest"]), "--template", str(batch["template"])]
    assert main(adopt) == 0
    said = capsys.readouterr().out
    assert "5 video(s) done, 1 row(s) re-attach to their render job" in said
    assert f"next: orchestrator run {batch['manifest']} --template {batch['template']}" in said
    assert sim.stats()["requests_total"] == requests + 2, "adopt sends nothing"
    assert main(adopt) == 2  # a ledger is there now: nothing to adopt

    assert main(run_args(batch)) == 0
    assert _renders(sim) == renders
    assert sim.stats()["duplicate_renders"] == 0
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "videos").iterdir()}
    assert after == videos  # the delivered videos untouched, the missing one back
    assert {r["status"] for r in read_results(out)} == {"done"}


def test_a_dead_owner_is_taken_over_with_a_line(tmp_path: Path, standalone_sim: Any) -> None:
    """A run killed mid-batch never recorded its end: the next run says whose rows it takes
    over (the pid the ledger's run record names), then finishes with no render twice (a render
    the kill caught in its round trip is ambiguous, as always)."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "0.5")
    batch = write_batch(tmp_path, 6)
    out = batch["out"]
    first = cli(run_args(batch), sim.env())
    _wait_for(lambda: _ledger_has(out, b'"render_job"'), first, "a render job")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    owners = [
        json.loads(line).get("owner")
        for line in (out / LEDGER_NAME).read_text().splitlines()
        if '"e":"run"' in line
    ]
    assert owners[-1]["pid"] == first.pid and owners[-1]["nonce"]
    second = cli(run_args(batch), sim.env())
    _, err = second.communicate(timeout=60)
    assert second.returncode in (0, 1), err  # 1: a render the kill caught in flight is ambiguous
    assert f"taking over {out}: its last run (pid {first.pid} on " in err
    check_invariants(out, sim.stats(), 6)
