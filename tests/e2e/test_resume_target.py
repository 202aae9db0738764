"""What ``resume`` takes over from the sessions before it: the target (an API's base URL, the
``--config`` file; never a switch to or from the simulator), the batch-wide choices it does not
state, and (``retry.lost_with_simulator``) which rows an earlier embedded simulator's death
starts over. Also: a job is declared lost only when the API says so twice
(``retry.CONFIRM_LOST``)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from memory_transport import MemoryTransport, memory_client, reply

from orchestrator.api.client import PictoryClient
from orchestrator.api.retry import lost_with_simulator
from orchestrator.cli.main import main
from orchestrator.cli.run_dir import last_run_record
from orchestrator.clock import VirtualClock
from orchestrator.errors import JobLostError
from orchestrator.ledger.file import LEDGER_NAME
from orchestrator.ledger.records import BatchChoices
from orchestrator.ledger.row_state import RowState
from orchestrator.run.session import carried_choices
from orchestrator.run.stages.poll import wait_for_job

from .helpers import read_results, run_args, write_batch

JOB = "/v1/jobs/j1"
NOT_FOUND = {"success": False, "error": {"error_code": "5000", "error_message": "JOB_NOT_FOUND"}}
DONE = {"success": True, "data": {"status": "completed", "videoURL": "https://cdn/v.mp4"}}


def test_a_batch_resumes_against_the_base_url_and_config_it_ran_with(
    tmp_path: Path, make_sim: Any, api_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base URL came from ``PICTORY_API_BASE_URL`` in the shell of the first run; a plain
    ``resume`` from a shell without it (and without ``--config``) still goes to that API, with
    that config file: both are in the run record."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch, "--max-renders", "1")) == 1
    first = last_run_record(batch["out"] / LEDGER_NAME)
    assert first is not None
    assert first.target == {"base_url": sim.base_url, "config": str(batch["config"])}

    monkeypatch.delenv("PICTORY_API_BASE_URL")
    assert main(["resume", str(batch["out"]), "--max-renders", "5"]) == 0
    assert {r["status"] for r in read_results(batch["out"])} == {"done"}
    assert sim.stats()["renders_started"] == 3


def test_a_batch_run_against_an_api_refuses_the_simulator(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``resume --simulate`` on a batch run against an API would mix simulated videos and lost
    jobs with real ones: refused in one line, naming the resume that goes on (exit 2)."""
    api_env(make_sim())
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--max-renders", "1")) == 1
    capsys.readouterr()
    assert main(["resume", str(batch["out"]), "--simulate", "test"]) == 2
    err = capsys.readouterr().err
    assert "--simulate would mix simulated videos" in err
    assert f"`orchestrator resume {batch['out']}`" in err


def test_a_resume_keeps_the_choices_it_does_not_state() -> None:
    """Each choice stated again replaces the recorded one; the others are kept; ``--until``
    replaces the whole window (its zone and what happens at its end)."""
    recorded = BatchChoices(
        halt_after="3",
        max_renders=5,
        window="22:00-06:00",
        time_zone="Europe/Paris",
        at_window_end="stop",
        notify="env:HOOK",
        check_quota=True,
    )
    assert carried_choices(recorded, BatchChoices()) == recorded
    given = BatchChoices(max_renders=10, until="23:00", time_zone="UTC")
    assert carried_choices(recorded, given) == BatchChoices(
        halt_after="3",
        max_renders=10,
        until="23:00",
        time_zone="UTC",
        notify="env:HOOK",
        check_quota=True,
    )


@pytest.mark.parametrize(
    ("state", "starts_over"),
    [
        (RowState("r", status="done", render_job="j"), False),
        (RowState("r", status="ambiguous", render_intent=True, preview_job="p"), False),
        (RowState("r", status="failed", fail_kind="job_failed", fail_permanent=True,
                  render_job="j"), False),
        (RowState("r", status="failed", fail_kind="job_lost", fail_permanent=True,
                  render_job="j"), True),
        (RowState("r", status="failed", fail_kind="stuck", render_job="j"), True),
        (RowState("r", render_intent=True, render_job="j"), True),
        (RowState("r", render_intent=True, preview_job="p"), False),
        (RowState("r", preview_job="p"), True),
        (RowState("r", aux_jobs={"transcription": "t"}), True),
        (RowState("r"), False),
    ],
)  # fmt: skip
def test_which_rows_start_over_after_their_simulator_stopped(
    state: RowState, starts_over: bool
) -> None:
    """``lost_with_simulator`` follows its table: recorded jobs start over; done, ambiguous
    (a render intent without its job) and other permanent failures are left as they are."""
    assert lost_with_simulator(state) is starts_over


@pytest.fixture
async def client() -> AsyncIterator[tuple[MemoryTransport, PictoryClient, VirtualClock]]:
    api, clock = MemoryTransport(), VirtualClock()
    api.on("POST", "/v1/oauth2/token", reply({"access_token": "t", "expires_in": 3600}))
    async with memory_client(api, clock=clock) as made:
        yield api, made, clock


async def _wait(made: PictoryClient, clock: VirtualClock) -> Any:
    return await wait_for_job(
        made, "j1", clock=clock, rng=random.Random(1), interval_s=20.0,
        jitter_fraction=0.0, deadline_s=600.0, stage="render", fresh=False,
    )  # fmt: skip


async def test_a_job_is_lost_only_when_the_api_says_so_twice(
    client: tuple[MemoryTransport, PictoryClient, VirtualClock],
) -> None:
    """One 404 to a job read is read again one interval later: a job found then carries on;
    a second 404 declares it lost (``job_lost``, which only ``--retry-failed`` renders again)."""
    api, made, clock = client
    api.on("GET", JOB, reply(NOT_FOUND, 404), reply(DONE))
    assert (await _wait(made, clock)).status == "completed"
    assert len(api.requests("GET", JOB)) == 2 and clock.now() >= 20.0

    api.on("GET", JOB, reply(NOT_FOUND, 404), reply(NOT_FOUND, 404))
    started = clock.now()
    with pytest.raises(JobLostError, match="no longer known"):
        await _wait(made, clock)
    assert len(api.requests("GET", JOB)) == 4
    assert clock.now() - started == pytest.approx(20.0, abs=0.5)
