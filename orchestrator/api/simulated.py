"""``--simulate``: a run (or ``doctor``) pointed at the embedded simulator instead of the real API,
with polling and limits fitted to the simulated account as a user would fit them to theirs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from orchestrator.config import Config

if TYPE_CHECKING:  # the simulator is imported only by a run that asks for it (~0.2 s)
    from orchestrator.simulator.settings import SimSettings

UNLIMITED_RPS = 1000.0
SIM_ROW_MARGIN = 3.0
"""A simulated row is assumed to take this many times its jobs' nominal time until one finishes."""


@contextlib.asynccontextmanager
async def target(config: Config, simulate: str | None) -> AsyncIterator[Config]:
    """The real API, or with ``--simulate`` the embedded simulator on a free loopback port."""
    if simulate is None:
        yield config
        return
    from orchestrator.simulator import SimSettings, running_simulator

    settings = SimSettings.for_profile(simulate)
    async with running_simulator(settings, host="127.0.0.1", port=0) as sim:
        yield simulated_config(config, sim.base_url, settings)


def simulated_config(config: Config, base_url: str, settings: SimSettings) -> Config:
    """Point at the simulator, and fit polling and limits to its profile, as a user would fit
    them to their account: poll about four times per nominal job duration, run at the simulated
    account's request limit, and keep as many renders in flight as it allows (one more
    waiting at the simulator when it queues renders past its cap)."""
    preview_s = settings.scaled_s(settings.preview_s)
    render_s = settings.scaled_s(settings.render_s)
    poll = config.poll.model_copy(
        update={
            "preview_interval_s": max(0.005, preview_s / 4),
            "render_interval_s": max(0.005, render_s / 4),
            "preview_deadline_s": max(30.0, preview_s * 50),
            "render_deadline_s": max(60.0, render_s * 50),
            "webhook_fallback_interval_s": max(0.05, (preview_s + render_s) * 3),
        }
    )
    api = config.api.model_copy(update={"base_url": base_url})
    run = config.run
    if "assumed_row_s" not in run.model_fields_set:
        # Before a row has finished, --window/--until judge rows by this: the profile's own job
        # times (with room for jitter, a render queue and the download), not the real API's.
        jobs_s = preview_s + render_s + settings.scaled_s(settings.transcription_s)
        run = run.model_copy(update={"assumed_row_s": max(1.0, SIM_ROW_MARGIN * jobs_s)})
    limits_update: dict[str, Any] = {}
    # The simulated account's limit, or (unlimited) a rate well above what a run needs.
    limits_update["max_requests_per_s"] = settings.rate_limit_rps or UNLIMITED_RPS
    if settings.max_concurrent_renders:
        # The account's cap; one render more queued at Pictory only where the simulator queues
        # renders past it (as a calibration profile would say of a real account).
        limits_update["max_renders_in_flight"] = settings.max_concurrent_renders
        limits_update["renders_queued_ahead"] = int(settings.renders_over_cap == "queue")
    limits = config.limits.model_copy(update=limits_update)
    return config.model_copy(update={"api": api, "poll": poll, "limits": limits, "run": run})
