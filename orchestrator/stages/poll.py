"""Waiting for a job: poll ``GET /v1/jobs/{id}`` at an interval with jitter, up to a deadline."""

from __future__ import annotations

import random
from collections.abc import Callable

from orchestrator.client import PictoryClient
from orchestrator.clock import Clock
from orchestrator.errors import JobFailedError, JobStuckError
from orchestrator.responses import JobState


async def wait_for_job(
    client: PictoryClient,
    job_id: str,
    *,
    clock: Clock,
    rng: random.Random,
    interval_s: float,
    jitter_fraction: float,
    deadline_s: float,
    stage: str,
    on_progress: Callable[[JobState], None] | None = None,
) -> JobState:
    """Return the finished job; raise JobFailedError if it failed, JobStuckError past the deadline.

    The first read happens at once (a resumed row may find its job long finished).
    """
    started = clock.now()
    while True:
        state = await client.get_job(job_id)
        if state.status == "failed":
            raise JobFailedError(
                state.error_message or "job failed",
                endpoint=f"GET /v1/jobs/{job_id}",
                error_code=state.error_code,
            )
        if state.status == "completed":
            return state
        if on_progress is not None:
            on_progress(state)
        if clock.now() - started >= deadline_s:
            raise JobStuckError(
                f"{stage} job {job_id} still {state.status} after {deadline_s:.0f} s; "
                "resume later to pick it up again",
                endpoint=f"GET /v1/jobs/{job_id}",
            )
        jitter = 1.0 + rng.uniform(-jitter_fraction, jitter_fraction)
        await clock.sleep(interval_s * jitter)
