"""Waiting for a job: poll ``GET /v1/jobs/{id}`` at an interval with jitter, up to a deadline.

In webhook mode the callback is the answer and polling is only the slow fallback.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from orchestrator.client import PictoryClient
from orchestrator.clock import Clock
from orchestrator.errors import JobFailedError, JobStuckError
from orchestrator.responses import JobState
from orchestrator.webhooks import WebhookReceiver


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
    fresh: bool,
    on_progress: Callable[[JobState], None] | None = None,
    webhooks: WebhookReceiver | None = None,
) -> JobState:
    """Return the finished job; raise JobFailedError if it failed, JobStuckError past the deadline.

    A ``fresh`` job (created a moment ago) is not read before the first interval has passed; a
    re-attached one is read at once, since it may have finished long ago.
    """
    started = clock.now()
    read_now = not fresh
    while True:
        state = webhooks.job(job_id) if webhooks is not None else None
        if state is None and read_now:
            state = await client.get_job(job_id)
        read_now = True
        if state is not None:
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
                f"{stage} job {job_id} unfinished after {deadline_s:.0f} s; "
                "resume later to pick it up again",
                endpoint=f"GET /v1/jobs/{job_id}",
            )
        pause_s = interval_s * (1.0 + rng.uniform(-jitter_fraction, jitter_fraction))
        if webhooks is not None:
            await webhooks.wait(job_id, pause_s)
        else:
            await clock.sleep(pause_s)
