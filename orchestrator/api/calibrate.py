"""``orchestrator doctor --calibrate``: measure what Pictory does not publish, with the fewest
billable renders, and return it as a ``calibration.CalibrationProfile``.

Three questions, in this order:

1. **Renders at once, and does one beyond the cap queue?** Renders of the shortest video we can
   ask for (one scene, a one-word story, ``POST /v2/video/storyboard/render``, §5.9: one request,
   no preview, documented for keys and tokens) are started one at a time, each once the one
   before it shows ``renderProgress`` (it runs). A render that says ``pending`` (§5.4), or stays
   ``in-progress`` without ``renderProgress`` for ``settle_s`` while those before it still run,
   waits in Pictory's queue: the cap C is the number running then, and no further render is
   started. So the renders billed are C + 1, at most ``max_renders`` (stated before the start:
   ``CalibrationPlan.statement``). A create refused (429 or 409) once renders run is a cap that
   refuses rather than queues (not billed). [choice] Nothing public says how long a started
   render may go without progress; ``settle_s`` (30 s) is ours.
2. **Render time**: start to ``completed`` of each render that did not wait, read every
   ``poll_s``; p50 and p90 (nearest rank). These are the shortest renders there are: a user's
   longer videos take longer (docs/calibrate.md).
3. **Requests per second and 429s**, with unbilled reads only (``GET /v1/jobs/{id}`` of a
   calibration render, else ``GET /v1/quota``): bursts of up to ``burst_requests`` reads,
   ``in_flight`` at a time, each stopped at its first 429; after a pause of its ``Retry-After``
   (1 s without one) the next. The first burst may start mid-window; the rate is the median count
   accepted by the ``bursts`` after it. Whether the 429s carried ``Retry-After`` is recorded.
   Then, if ``sustain_s`` > 0, reads spaced evenly just under that rate for ``sustain_s``: a 429
   there is a per-minute (or slower-refilling) limit, recorded as the reads accepted in the 60 s
   before it. [choice] How Pictory counts requests is unpublished; bursts after a pause measure
   the window (or bucket) size, and the sustained reads check it holds.

No request here is retried into a second render: a create is never retried after it may have
reached Pictory (``client`` raises ``AmbiguousError``), and an ambiguous one ends the calibration.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from orchestrator.api.calibration import CalibrationProfile, utc_stamp
from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.responses import JobState
from orchestrator.api.retry import RetryPolicy
from orchestrator.clock import Clock
from orchestrator.config import Config, Credentials, account_key
from orchestrator.errors import ApiError, RateLimitedError, UserError

RENDER_RETRY = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=10.0)
PROBE_RETRY = RetryPolicy(max_attempts=1)
"""A probe read is never tried again: each 429 is an answer to count."""
PAUSE_WITHOUT_RETRY_AFTER_S = 1.0
MINUTE_S = 60.0
SPACING_MARGIN = 1.05
"""Sustained reads are spaced ``1.05 / floor(rate)`` s apart: just under the measured rate."""
REFUSED_STATUSES = (409, 429)
QUEUED = "pending"

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class CalibrationPlan:
    """How much calibration does; every default is visible here."""

    max_renders: int = 4
    """The most billable renders started (C + 1 finds a cap C up to ``max_renders - 1``)."""
    settle_s: float = 30.0
    poll_s: float = 5.0
    render_deadline_s: float = 1800.0
    bursts: int = 3
    burst_requests: int = 200
    in_flight: int = 8
    sustain_s: float = 65.0
    video_name: str = "orchestrator-calibration"

    def __post_init__(self) -> None:
        if self.max_renders < 1:
            raise UserError(f"--renders {self.max_renders}: give at least 1")
        if self.bursts < 1 or self.burst_requests < 1 or self.in_flight < 1:
            raise UserError("calibration needs at least one burst of at least one read")
        if self.sustain_s < 0:
            raise UserError(f"--sustain-seconds {self.sustain_s:g}: give 0 (skip) or more")

    def statement(self) -> str:
        """What it will bill, said before anything is sent."""
        return (
            f"calibration makes at most {self.max_renders} billable render(s) of a one-scene, "
            f"one-word video (POST /v2/video/storyboard/render): one at a time until one waits "
            f"in Pictory's queue, so C + 1 for a cap of C up to {self.max_renders - 1}; then "
            f"only unbilled reads (GET /v1/jobs/{{id}}, GET /v1/quota) to find the rate limit"
            + (f", for about {self.sustain_s:.0f} s" if self.sustain_s else "")
        )


@dataclass
class _Render:
    job_id: str
    started_s: float
    running: bool = False
    queued: bool = False
    done_s: float | None = None
    failed: bool = False
    said_pending: bool = False


@dataclass
class _Burst:
    accepted: int = 0
    refused: int = 0
    retry_after_s: list[float | None] = field(default_factory=list)


class _OpenLimiter(RateLimiter):
    """Admits every request at once and learns nothing: probes count the 429s themselves."""

    async def acquire(
        self, *, first: bool = False, useful_from: Callable[[], float] | None = None
    ) -> None:
        await anyio.lowlevel.checkpoint()

    def on_rate_limited(self, retry_after_s: float | None) -> None:
        return None

    def on_success(self) -> None:
        return None


async def calibrate(
    config: Config,
    credentials: Credentials,
    *,
    plan: CalibrationPlan,
    clock: Clock,
    say: Say = lambda line: None,
) -> CalibrationProfile:
    """Measure the account behind ``config.api`` and ``credentials`` (module docstring)."""
    limiter = RateLimiter(clock, max_rps=config.limits.max_requests_per_s)
    async with PictoryClient(
        config.api, credentials, clock=clock, limiter=limiter, retry_policy=RENDER_RETRY
    ) as client:
        renders, cap, refused = await _find_cap(client, plan, clock, say)
        await _finish(client, renders, plan, clock, say)
    times = sorted(r.done_s - r.started_s for r in renders if r.done_s is not None and not r.queued)
    queued = [r for r in renders if r.queued]
    queued_status = _queued_status(queued)
    probe = PictoryClient(
        config.api, credentials, clock=clock, limiter=_OpenLimiter(clock, max_rps=1.0),
        retry_policy=PROBE_RETRY,
    )  # fmt: skip
    async with probe:
        read = _reader(probe, renders[0].job_id if renders else None)
        rps, retry_after = await _probe_bursts(read, plan, clock, say)
        rpm = None
        if rps and plan.sustain_s:
            rpm, sustained_retry_after = await _probe_sustained(read, rps, plan, clock, say)
            retry_after = retry_after if retry_after is not None else sustained_retry_after
    return CalibrationProfile(
        account=account_key(config.api.base_url, credentials),
        base_url=config.api.base_url,
        measured_at=utc_stamp(clock.wall_s()),
        rate_limit_rps=rps,
        rate_limit_rpm=rpm,
        retry_after=retry_after,
        max_concurrent_renders=max(1, cap),
        cap_found=bool(queued) or refused,
        queues_renders=bool(queued) and all(r.done_s is not None and not r.failed for r in queued),
        queued_status=queued_status,
        render_s_p50=_rank(times, 0.5),
        render_s_p90=_rank(times, 0.9),
        billable_renders=len(renders),
    )


async def _find_cap(
    client: PictoryClient, plan: CalibrationPlan, clock: Clock, say: Say
) -> tuple[list[_Render], int, bool]:
    """Start renders one at a time until one waits; (renders, most running at once, refused)."""
    renders: list[_Render] = []
    most = 0
    for n in range(1, plan.max_renders + 1):
        payload = {"videoName": f"{plan.video_name}-{n}", "scenes": [{"story": "Calibration."}]}
        try:
            job_id = await client.render_direct(payload)
        except ApiError as exc:
            if renders and exc.status in REFUSED_STATUSES:
                say(f"render {n} refused ({exc.describe()}): the account refuses beyond its cap")
                return renders, sum(1 for r in renders if r.running and r.done_s is None), True
            raise
        render = _Render(job_id, clock.now())
        renders.append(render)
        say(f"render {n} started: job {job_id}")
        await _judge(client, renders, plan, clock)
        running = sum(1 for r in renders if r.running and r.done_s is None)
        most = max(most, running)
        if render.queued:
            say(f"render {n} waits in Pictory's queue: {running} render(s) run at once")
            return renders, running, False
        say(f"render {n} runs ({running} at once)")
    return renders, most, False


async def _judge(
    client: PictoryClient, renders: list[_Render], plan: CalibrationPlan, clock: Clock
) -> None:
    """Read the renders until the newest one runs or waits (module docstring, step 1)."""
    newest = renders[-1]
    while True:
        await _read_all(client, renders, clock)
        if newest.running or newest.queued or newest.done_s is not None:
            newest.running = newest.running or newest.done_s is not None
            return
        if clock.now() - newest.started_s >= plan.settle_s:
            ahead = [r for r in renders[:-1] if r.done_s is None]
            newest.queued = bool(ahead)  # nothing ahead of it: it is slow, not queued
            newest.running = not ahead
            return
        await clock.sleep(plan.poll_s)


async def _read_all(client: PictoryClient, renders: list[_Render], clock: Clock) -> None:
    for render in renders:
        if render.done_s is not None:
            continue
        state: JobState = await client.get_job(render.job_id)
        if state.finished:
            render.done_s = clock.now()
            render.failed = state.status != "completed"
        elif state.status == QUEUED:
            render.queued = render.said_pending = True
        elif state.progress_pct is not None and not render.queued:
            render.running = True


async def _finish(
    client: PictoryClient, renders: list[_Render], plan: CalibrationPlan, clock: Clock, say: Say
) -> None:
    """Read every render until it ends (time each), or until ``render_deadline_s``."""
    while any(r.done_s is None for r in renders):
        if renders and clock.now() - renders[0].started_s > plan.render_deadline_s:
            say(f"renders still running after {plan.render_deadline_s:.0f} s; not timed")
            return
        await clock.sleep(plan.poll_s)
        await _read_all(client, renders, clock)
    failed = sum(1 for r in renders if r.failed)
    if failed:
        say(f"{failed} calibration render(s) failed; their times are left out")


def _queued_status(queued: list[_Render]) -> str | None:
    """What a waiting render said: ``pending``, or ``in-progress`` without progress."""
    if not queued:
        return None
    return QUEUED if any(r.said_pending for r in queued) else "in-progress"


def _reader(client: PictoryClient, job_id: str | None) -> Callable[[], Awaitable[object]]:
    if job_id is not None:
        return lambda: client.get_job(job_id)
    return client.quota


async def _probe_bursts(
    read: Callable[[], Awaitable[object]], plan: CalibrationPlan, clock: Clock, say: Say
) -> tuple[float | None, bool | None]:
    """(requests accepted per burst after a pause, whether 429s carried Retry-After)."""
    bursts: list[_Burst] = []
    for n in range(plan.bursts + 1):
        burst = await _burst(read, plan)
        bursts.append(burst)
        if not burst.refused:
            if n == 0:
                say(f"no 429 in {burst.accepted} reads at once: no rate limit found")
                return None, None
            continue
        given = [s for s in burst.retry_after_s if s is not None]
        await clock.sleep(max(given) if given else PAUSE_WITHOUT_RETRY_AFTER_S)
    counts = [b.accepted for b in bursts[1:]]
    rps = float(statistics.median(counts)) if counts else None
    answers = [s for b in bursts for s in b.retry_after_s]
    retry_after = any(s is not None for s in answers) if answers else None
    say(f"bursts accepted {', '.join(str(c) for c in counts)} reads each: {rps:g} req/s")
    return rps, retry_after


async def _burst(read: Callable[[], Awaitable[object]], plan: CalibrationPlan) -> _Burst:
    burst = _Burst()
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while not burst.refused and sent < plan.burst_requests:
            sent += 1
            try:
                await read()
            except RateLimitedError as exc:
                burst.refused += 1
                burst.retry_after_s.append(exc.retry_after_s)
            else:
                burst.accepted += 1

    async with anyio.create_task_group() as tg:
        for _ in range(plan.in_flight):
            tg.start_soon(worker)
    return burst


async def _probe_sustained(
    read: Callable[[], Awaitable[object]], rps: float, plan: CalibrationPlan, clock: Clock, say: Say
) -> tuple[float | None, bool | None]:
    """(reads accepted in the 60 s before the first 429 at a steady rate, Retry-After seen)."""
    interval_s = SPACING_MARGIN / max(1.0, float(int(rps)))
    start_s = clock.now()
    accepted: list[float] = []
    next_s = start_s
    while clock.now() - start_s < plan.sustain_s:
        try:
            await read()
        except RateLimitedError as exc:
            now = clock.now()
            rpm = float(sum(1 for t in accepted if now - t <= MINUTE_S))
            say(
                f"a 429 after {now - start_s:.0f} s at {1 / interval_s:.2f} req/s: {rpm:g} a minute"
            )
            return rpm, exc.retry_after_s is not None
        accepted.append(clock.now())
        next_s += interval_s
        await clock.sleep(next_s - clock.now())
    say(f"{len(accepted)} reads over {plan.sustain_s:.0f} s at {1 / interval_s:.2f} req/s, no 429")
    return None, None


def _rank(sorted_s: list[float], q: float) -> float | None:
    """Nearest-rank percentile of ``sorted_s`` (None when empty)."""
    if not sorted_s:
        return None
    index = max(0, min(len(sorted_s) - 1, -(-len(sorted_s) * q // 1) - 1))
    return round(sorted_s[int(index)], 3)
