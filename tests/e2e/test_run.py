"""`orchestrator run` end to end through the CLI against the simulator over loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import check_invariants, read_results, run_args, write_batch


def test_run_renders_every_row_and_writes_results(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """A batch renders, downloads and records every row; files match what the server served."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 6)
    assert main(run_args(batch)) == 0
    results = check_invariants(batch["out"], sim.stats(), 6)
    assert {r["status"] for r in results} == {"done"}
    assert results[0]["city"] == "City, 0"  # the input's own columns follow
    stats = sim.stats()
    assert stats["renders_started"] == 6
    assert stats["requests"].get("POST /v1/templates") == 1  # uploaded once per batch


def test_second_run_renders_nothing_again(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """Running the same command again skips done rows and sends no render."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 4)
    assert main(run_args(batch)) == 0
    before = sim.stats()["renders_started"]
    assert main(run_args(batch)) == 0
    assert sim.stats()["renders_started"] == before
    assert sim.stats()["requests"].get("POST /v1/templates") == 1  # template id reused


def test_simulate_switch_needs_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--simulate=test starts the embedded simulator in-process; no credentials needed."""
    for name in (
        "PICTORY_API_KEY",
        "PICTORY_CLIENT_ID",
        "PICTORY_CLIENT_SECRET",
        "PICTORY_API_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch, "--simulate=test")) == 0
    assert {r["status"] for r in read_results(batch["out"])} == {"done"}


def test_spend_cap_then_resume_finishes_without_duplicates(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """--max-renders stops after N renders (rows left pending, exit 1); a plain resume keeps the
    recorded cap (N more), and a resume that states a larger one finishes the rest."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 6)
    assert main(run_args(batch, "--max-renders", "2")) == 1
    statuses = [r["status"] for r in read_results(batch["out"])]
    assert statuses.count("done") == 2 and statuses.count("pending") == 4
    resume = ["resume", str(batch["out"]), "--config", str(batch["config"])]
    assert main(resume) == 1
    assert [r["status"] for r in read_results(batch["out"])].count("done") == 4
    assert main([*resume, "--max-renders", "10"]) == 0
    check_invariants(batch["out"], sim.stats(), 6)
    assert sim.stats()["renders_started"] == 6


def test_intent_without_job_id_is_ambiguous_and_not_rerendered(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """A render intent with no job id (crash mid-request) is reported ambiguous, not resent."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch)) == 0
    ledger = batch["out"] / LEDGER_NAME
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    pending = "row-001"  # as if the process died while its render request was on the wire
    kept = [
        e
        for e in events
        if e.get("row") != pending or e["e"] not in ("render_job", "render_ready", "downloaded")
    ]
    ledger.write_text("".join(json.dumps(e) + "\n" for e in kept))
    renders = sim.stats()["renders_started"]
    assert main(run_args(batch)) == 1
    row = {r["id"]: r for r in read_results(batch["out"])}[pending]
    assert row["status"] == "ambiguous"
    assert sim.stats()["renders_started"] == renders
    assert main(run_args(batch, "--rerender-ambiguous")) == 0
    assert sim.stats()["renders_started"] == renders + 1
    assert sim.stats()["duplicate_renders"] == 1  # the one re-render the user asked for


def test_run_dir_of_another_manifest_is_refused(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pointing a different manifest at an existing run dir is refused with exit 2 and why."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path / "a", 1)
    assert main(run_args(batch)) == 0
    other = write_batch(tmp_path / "b", 1)
    other["out"] = batch["out"]
    assert main(run_args(other)) == 2
    assert "belongs to the manifest" in capsys.readouterr().err


def test_failed_jobs_halt_the_batch(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every render failing: --halt-after 2 stops admitting rows; failures are named in results."""
    sim = make_sim(fault_job_failed_p=1.0)
    api_env(sim)
    batch = write_batch(tmp_path, 30)
    assert main(run_args(batch, "--halt-after", "2", "--concurrency", "2")) == 1
    results = read_results(batch["out"])
    failed = [r for r in results if r["status"] == "failed"]
    assert 2 <= len(failed) < 30
    assert all(r["error"].startswith("job_failed") for r in failed)
    assert "halt policy" in capsys.readouterr().err


def test_webhook_mode_cuts_requests_per_row(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """With --webhook, job answers come by callback: far fewer API requests than polling."""
    sim_poll = make_sim()
    api_env(sim_poll)
    poll_batch = write_batch(tmp_path / "poll", 6)
    assert main(run_args(poll_batch)) == 0
    poll_requests = sum(sim_poll.stats()["requests"].values())

    sim_hook = make_sim()
    api_env(sim_hook)
    hook_batch = write_batch(tmp_path / "hook", 6)
    assert main(run_args(hook_batch, "--webhook")) == 0
    hook_requests = sum(sim_hook.stats()["requests"].values())
    check_invariants(hook_batch["out"], sim_hook.stats(), 6)
    assert hook_requests < poll_requests
    jobs_reads = sim_hook.stats()["requests"].get("GET /v1/jobs/{id}", 0)
    assert jobs_reads <= 2  # only the fallback poll, if any


def test_lost_preview_is_made_again_and_lost_render_needs_retry_failed(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """Against a simulator that forgot every job: a recorded preview is simply made again; a
    recorded render is reported lost (job_lost) and rendered again only with --retry-failed."""
    first = make_sim()
    api_env(first)
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch, "--max-renders", "2")) == 1  # one row stops after its preview
    ledger = batch["out"] / LEDGER_NAME
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    done_row = next(e["row"] for e in events if e["e"] == "downloaded")
    kept = [
        e
        for e in events
        if not (e["e"] in ("downloaded", "render_ready") and e.get("row") == done_row)
    ]
    ledger.write_text("".join(json.dumps(e) + "\n" for e in kept))

    second = make_sim()  # a new simulator: none of the recorded jobs exist there
    api_env(second)
    assert main(run_args(batch)) == 1
    rows = {r["id"]: r for r in read_results(batch["out"])}
    assert rows[done_row]["status"] == "failed"
    assert rows[done_row]["error"].startswith("job_lost")
    assert [r["status"] for i, r in rows.items() if i != done_row].count("done") == 2
    assert main(run_args(batch, "--retry-failed")) == 0
    assert second.stats()["duplicate_renders"] == 0


def test_failed_preview_is_made_again_in_the_same_run(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """A preview job that fails bills nothing, so it is made again at once (bounded): rows whose
    first preview failed still end done in the same run."""
    sim = make_sim(fault_job_failed_p=0.25, seed=5)
    api_env(sim)
    batch = write_batch(tmp_path, 12)
    main(run_args(batch))
    events = [json.loads(line) for line in (batch["out"] / LEDGER_NAME).read_text().splitlines()]
    remade = {e["row"] for e in events if e["e"] == "retry" and "preview job_failed" in e["reason"]}
    assert remade, "no preview failed; the test proves nothing"
    done = {r["id"] for r in read_results(batch["out"]) if r["status"] == "done"}
    assert remade & done
    assert sim.stats()["duplicate_renders"] == 0


def test_report_rewrites_results_from_the_ledger(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report RUN_DIR` rebuilds results.csv from the ledger alone (no API call), the same file a
    run writes, and says how many rows are in each state."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 4)
    assert main(run_args(batch)) == 0
    results = batch["out"] / "results.csv"
    written_by_run = results.read_bytes()
    results.unlink()
    requests = sim.stats()["requests_total"]
    capsys.readouterr()
    assert main(["report", str(batch["out"])]) == 0
    assert results.read_bytes() == written_by_run
    assert "4 done" in capsys.readouterr().out
    assert sim.stats()["requests_total"] == requests + 1  # only our own stats read


def test_batch_wide_choices_are_recorded_once_while_they_stay_the_same(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """A session records its batch-wide choices (``choices``) only when they differ from the
    ledger's: the same ``--halt-after`` twice is one event; a plain rerun states none."""
    api_env(make_sim())
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--halt-after", "3")) == 0
    assert main(run_args(batch, "--halt-after", "3")) == 0
    assert main(run_args(batch)) == 0
    events = [json.loads(line) for line in (batch["out"] / "ledger.jsonl").read_text().splitlines()]
    choices = [e for e in events if e["e"] == "choices"]
    assert [c.get("halt_after") for c in choices] == ["3", None]
    assert sum(e["e"] == "run" for e in events) == 3


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fd through /proc")
def test_each_video_is_fsynced_before_the_record_that_names_it(
    tmp_path: Path, make_sim: Any, api_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Videos are written without an fsync of their own and made durable by the ledger, in the
    write of their ``downloaded`` record: each video (and its folder) is fsynced, and at that
    moment no record on disk names it yet."""
    import os

    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 5)
    ledger = batch["out"] / LEDGER_NAME
    real_fsync = os.fsync
    synced: dict[str, bool] = {}  # a video's name → a record already named it at its fsync

    def watching(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.endswith(".mp4"):
            named = ledger.exists() and f'"videos/{Path(path).name}"' in ledger.read_text()
            synced[Path(path).name] = named
        elif path.endswith("/videos"):
            synced["videos/"] = False
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watching)
    assert main(run_args(batch)) == 0
    monkeypatch.setattr(os, "fsync", real_fsync)
    videos = sorted(p.name for p in (batch["out"] / "videos").glob("*.mp4"))
    assert len(videos) == 5
    assert "videos/" in synced
    assert {name: synced.get(name) for name in videos} == dict.fromkeys(videos, False)
