"""The fault matrix: every fault the simulator can inject, one batch each, through the real CLI.

Each test runs ``orchestrator run`` in-process against a simulator injecting one fault kind (or
all of them, at the ``flaky`` profile's rates) and checks the invariants of ``check_invariants``:
every row once in results.csv with a terminal status and a named cause, no render twice, every
done file byte-for-byte what the simulator served, and a ledger that replays cleanly.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME, replay
from orchestrator.simulator.settings import PROFILES

from .helpers import check_invariants, run_args, write_batch

ROWS = 12
STUCK_DEADLINES = {"poll": {"preview_deadline_s": 0.3, "render_deadline_s": 0.3}}


def _ledger_events(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / LEDGER_NAME).read_text().splitlines()
    return [json.loads(line) for line in lines]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize(
    ("fault", "overrides"),
    [
        ("server_error", {"fault_server_error_p": 0.3}),
        ("slow", {"fault_slow_p": 0.3, "fault_slow_delay_s": 0.05}),
        ("download_cut", {"fault_download_cut_p": 0.3}),
        ("token_revoked", {"fault_token_revoked_p": 0.1}),
    ],
    ids=["server_error", "slow", "download_cut", "token_revoked"],
)
def test_transient_fault_is_retried_until_every_row_is_done(
    tmp_path: Path,
    make_sim: Any,
    api_env: Any,
    capsys: pytest.CaptureFixture[str],
    fault: str,
    overrides: dict[str, Any],
) -> None:
    """A transient fault on a large share of requests costs retries, never a row: all done."""
    sim = make_sim(seed=11, **overrides)
    api_env(sim)
    batch = write_batch(tmp_path, ROWS)
    code, err = _run(run_args(batch), capsys)
    stats = sim.stats()
    assert stats["faults"].get(fault, 0) > 0, "the fault never fired; the test proves nothing"
    assert code == 0, err
    results = check_invariants(batch["out"], stats, ROWS)
    assert {r["status"] for r in results} == {"done"}


def test_rate_limited_requests_wait_and_every_row_is_done(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Injected 429s are retried: every row done, nothing rendered twice. (Small: until the
    limiter has evidence of a background share, a 429 is taken for the limit and costs a second
    of silence.)"""
    sim = make_sim(seed=1, fault_rate_limit_p=0.2, fault_retry_after_s=0)
    api_env(sim)
    batch = write_batch(tmp_path, 4)
    code, err = _run(run_args(batch), capsys)
    stats = sim.stats()
    assert stats["faults"].get("rate_limit", 0) > 0
    assert code == 0, err
    results = check_invariants(batch["out"], stats, 4)
    assert {r["status"] for r in results} == {"done"}


@pytest.mark.parametrize("route", [[], ["--direct"]], ids=["preview", "direct"])
def test_dropped_connections_never_render_twice(
    tmp_path: Path,
    make_sim: Any,
    api_env: Any,
    capsys: pytest.CaptureFixture[str],
    route: list[str],
) -> None:
    """Dropped connections: safe requests are retried and a lost preview answer is sent again (a
    preview is not billed; after 3 resends the row fails, retried by the next run); a render whose
    answer was lost is ambiguous (intent, no job id) and is never sent again by a later run. The
    direct route (no preview) keeps the same contract."""
    sim = make_sim(seed=5, fault_drop_p=0.25)
    api_env(sim)
    batch = write_batch(tmp_path, ROWS)
    _run(run_args(batch, *route), capsys)
    stats = sim.stats()
    assert stats["faults"].get("drop_before", 0) + stats["faults"].get("drop_after", 0) > 0
    results = check_invariants(batch["out"], stats, ROWS)
    state = replay(batch["out"] / LEDGER_NAME)
    for r in results:
        row = state.rows[r["id"]]
        if r["status"] == "failed":
            assert row.fail_stage == "preview" and not row.fail_permanent, r
        if r["status"] == "ambiguous":
            assert row.render_intent and row.render_job is None
    ambiguous = sorted(r["id"] for r in results if r["status"] == "ambiguous")
    assert ambiguous, "no render answer was lost; the test proves nothing"
    _run(run_args(batch, *route), capsys)
    results = check_invariants(batch["out"], sim.stats(), ROWS)
    assert sorted(r["id"] for r in results if r["status"] == "ambiguous") == ambiguous
    intents = Counter(e["row"] for e in _ledger_events(batch["out"]) if e["e"] == "render_intent")
    assert all(intents[row] == 1 for row in ambiguous)  # never sent again


def test_failed_jobs_fail_their_rows_until_retry_failed(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job that ends ``failed`` fails its row permanently (kind job_failed); a plain rerun
    leaves it alone; --retry-failed starts it over until the batch is done."""
    sim = make_sim(seed=2, fault_job_failed_p=0.3)
    api_env(sim)
    batch = write_batch(tmp_path, ROWS)
    code, _ = _run(run_args(batch), capsys)
    assert code == 1
    results = check_invariants(batch["out"], sim.stats(), ROWS)
    failed = {r["id"] for r in results if r["status"] == "failed"}
    assert failed and all(
        r["error"].startswith("job_failed: ") for r in results if r["id"] in failed
    )
    previews = sim.stats()["requests"]["POST /v1/video/from-template"]
    assert _run(run_args(batch), capsys)[0] == 1
    assert sim.stats()["requests"]["POST /v1/video/from-template"] == previews
    for _ in range(15):
        code, _ = _run(run_args(batch, "--retry-failed"), capsys)
        check_invariants(batch["out"], sim.stats(), ROWS)
        if code == 0:
            break
    else:
        pytest.fail("--retry-failed never finished the batch")
    retried = {e["row"] for e in _ledger_events(batch["out"]) if e["e"] == "retry"}
    assert failed <= retried  # every row that failed was started over


def test_stuck_jobs_fail_as_stuck_and_a_resume_reattaches(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job that never finishes fails its row with kind ``stuck`` at the poll deadline. A stuck
    render is billed, so the next run polls the same render again instead of creating a new one;
    a stuck preview bills nothing and is simply made again (a bounded number of times)."""
    sim = make_sim(seed=4, fault_job_stuck_p=0.3)
    api_env(sim)
    batch = write_batch(tmp_path, ROWS, config=STUCK_DEADLINES)
    code, _ = _run(run_args(batch), capsys)
    assert code == 1
    results = check_invariants(batch["out"], sim.stats(), ROWS)
    stuck = {r["id"] for r in results if r["status"] == "failed"}
    assert stuck and all(r["error"].startswith("stuck: ") for r in results if r["id"] in stuck)
    before = replay(batch["out"] / LEDGER_NAME).rows
    stuck_renders = {row: before[row].render_job for row in stuck if before[row].render_job}
    assert stuck_renders, "no render got stuck; the test proves nothing about re-attaching"
    reads = sim.stats()["requests"]["GET /v1/jobs/{id}"]
    _run(run_args(batch), capsys)
    after_stats = sim.stats()
    check_invariants(batch["out"], after_stats, ROWS)
    after = replay(batch["out"] / LEDGER_NAME).rows
    assert {row: after[row].render_job for row in stuck_renders} == stuck_renders
    intents = Counter(e["row"] for e in _ledger_events(batch["out"]) if e["e"] == "render_intent")
    assert all(intents[row] == 1 for row in stuck_renders)  # no stuck render sent again
    assert after_stats["requests"]["GET /v1/jobs/{id}"] > reads  # it polled them again
    assert all(after[row].status == "failed" for row in stuck_renders)


def test_every_fault_at_once_keeps_the_invariants(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """All faults at the ``flaky`` profile's rates, on test timings: every row ends done,
    ambiguous or failed for a reason retrying within the run cannot fix (job failed or stuck, or
    a video link that answered a web page twice, the second time after a fresh read of the job:
    ``not_a_video``, left for a rerun), and a rerun with --retry-failed keeps every invariant.
    (Small: early injected 429s cost a second each.)"""
    faults = {k: v for k, v in PROFILES["flaky"].items() if k.startswith("fault_")}
    faults.update(fault_slow_delay_s=0.05, fault_retry_after_s=0)
    sim = make_sim(seed=9, **faults)
    api_env(sim)
    batch = write_batch(tmp_path, 8, config=STUCK_DEADLINES)
    for _ in range(2):
        _run(run_args(batch, "--retry-failed"), capsys)
        results = check_invariants(batch["out"], sim.stats(), 8)
        causes = Counter(r["error"].split(":")[0] for r in results if r["status"] == "failed")
        assert set(causes) <= {"job_failed", "stuck", "not_a_video"}, causes
    assert len(sim.stats()["faults"]) >= 4, "too few fault kinds fired to call this a mix"
