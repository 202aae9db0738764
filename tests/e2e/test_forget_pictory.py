"""``orchestrator forget`` erases a row's copies at Pictory too: its render and preview jobs are
cleaned (``DELETE /v1/jobs/{id}/clean``) before anything else of the row, through the real CLI
against the simulator; the other rows' jobs are untouched. Without credentials the local erase
is done and the jobs left are named with the command that cleans them later; a clean refused
for every retry erases nothing of the row (exit 1) and running the command again finishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME, replay

from .helpers import run_args, write_batch

ROUTE = "DELETE /v1/jobs/{id}/clean"
CREDENTIAL_VARIABLES = ("PICTORY_API_KEY", "PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET")


def _jobs(run_dir: Path) -> dict[str, list[str]]:
    """Each row's render and preview job, from the ledger."""
    state = replay(run_dir / LEDGER_NAME)
    return {s.row: [j for j in (s.render_job, s.preview_job) if j] for s in state.rows.values()}


def _status(sim: Any, job: str) -> str:
    token = sim.api("POST", "/v1/oauth2/token", {"client_id": "test-client", "client_secret": "s"})
    answer = sim.api("GET", f"/v1/jobs/{job}", token=token["access_token"])
    return str(answer["data"].get("status"))


def _cleaned_records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / LEDGER_NAME).read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["e"] == "cleaned"]


def _done_batch(tmp_path: Path, make_sim: Any, api_env: Any) -> tuple[Any, dict[str, Path]]:
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch)) == 0
    return sim, batch


def test_forget_cleans_the_rows_jobs_at_pictory_and_only_theirs(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--dry-run`` lists the jobs it would clean and sends nothing; ``forget row-001`` cleans
    its render and preview job (each answers ``cleaned``), records them cleaned, and leaves the
    other rows' jobs as they were; run again, it asks Pictory nothing more."""
    sim, batch = _done_batch(tmp_path, make_sim, api_env)
    out = batch["out"]
    jobs = _jobs(out)
    capsys.readouterr()

    assert main(["forget", "--dry-run", "row-001", str(out)]) == 0
    said = capsys.readouterr().out
    assert all(f"would clean job {job} of row row-001" in said for job in jobs["row-001"])
    assert ROUTE not in sim.stats()["requests"]

    assert main(["forget", "row-001", str(out)]) == 0
    said = capsys.readouterr().out
    assert all(f"cleaned job {job} of row row-001 at Pictory" in said for job in jobs["row-001"])
    assert "left at Pictory" not in said
    stats = sim.stats()
    assert stats["cleans"] == {job: 1 for job in jobs["row-001"]}
    assert all(_status(sim, job) == "cleaned" for job in jobs["row-001"])
    assert all(_status(sim, job) != "cleaned" for job in jobs["row-000"] + jobs["row-002"])
    cleaned = _cleaned_records(out)
    assert [(r["row"], sorted(r["jobs"])) for r in cleaned] == [
        ("row-001", sorted(jobs["row-001"]))
    ]

    assert main(["forget", "row-001", str(out)]) == 0
    assert sim.stats()["requests"][ROUTE] == stats["requests"][ROUTE], "not asked again"


def test_without_credentials_the_local_erase_is_done_and_the_jobs_left_are_named(
    tmp_path: Path,
    make_sim: Any,
    api_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No credentials in the environment: the row is forgotten here (exit 0) and the output
    names each job left at Pictory and the command that cleans them; with credentials set,
    that command cleans them. ``--keep-at-pictory`` leaves them deliberately."""
    sim, batch = _done_batch(tmp_path, make_sim, api_env)
    out = batch["out"]
    jobs = _jobs(out)
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()

    assert main(["forget", "row-001", str(out)]) == 0
    said = capsys.readouterr().out
    assert "forgot row row-001" in said and not (out / "videos" / "row-001.mp4").exists()
    assert "left at Pictory (no Pictory credentials in the environment)" in said
    assert all(f"{job} (row row-001)" in said for job in jobs["row-001"])
    command = f"orchestrator forget row-001 {out}"
    assert command in said
    assert ROUTE not in sim.stats()["requests"]

    assert main(["forget", "--keep-at-pictory", "row-002", str(out)]) == 0
    assert "left at Pictory (--keep-at-pictory)" in capsys.readouterr().out

    api_env(sim)
    assert main(command.split()[1:]) == 0  # the printed command, credentials set
    assert sim.stats()["cleans"] == {job: 1 for job in jobs["row-001"]}


def test_a_clean_refused_for_every_retry_erases_nothing_of_the_row_and_a_rerun_finishes(
    tmp_path: Path,
    make_sim: Any,
    api_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Pictory answering 500 to every try: exit 1, one line naming the row and saying nothing of
    it was erased; its ledger lines, video and values are as they were. Once Pictory answers
    again, the same command cleans the jobs and forgets the row."""
    sim, batch = _done_batch(tmp_path, make_sim, api_env)
    out = batch["out"]
    jobs = _jobs(out)
    before = (out / LEDGER_NAME).read_bytes()
    broken = make_sim(fault_server_error_p=1.0)
    monkeypatch.setenv("PICTORY_API_BASE_URL", broken.base_url)
    capsys.readouterr()

    assert main(["forget", "row-001", str(out)]) == 1
    captured = capsys.readouterr()
    assert "row row-001: could not clean it at Pictory" in captured.err
    assert "nothing of this row was erased" in captured.err
    assert "forgot row row-001" not in captured.out
    assert (out / LEDGER_NAME).read_bytes() == before
    assert (out / "videos" / "row-001.mp4").exists()

    api_env(sim)
    assert main(["forget", "row-001", str(out)]) == 0
    assert "forgot row row-001" in capsys.readouterr().out
    assert sim.stats()["cleans"] == {job: 1 for job in jobs["row-001"]}
    assert not (out / "videos" / "row-001.mp4").exists()
