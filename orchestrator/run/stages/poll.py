"""Waiting for a job: poll ``GET /v1/jobs/{id}`` at an interval with jitter, up to a deadline.

In webhook mode the callback is the answer and polling is only the slow fallback.

Learned first read
------------------
Every read of an unfinished job spends a request. When the rate limit is what binds the run
(the limiter's ``saturation`` is high, and so is its ``utilization``), a fresh job is first
read not after one interval but after a delay learned from the stage's earlier first reads
(``FirstReadDelay``): about when ``TARGET_DONE`` of such jobs are finished, so most rows spend
one read per stage. When requests are plentiful the configured interval is kept, since reading
early then costs nothing and a late read would hold a render slot longer than needed.

The learned delay is slept before the read joins the limiter's queue, and while the rate binds
that queue is long: the read is answered well after the delay, always finds the job done, and
the delay stays at the interval. So each stage also learns the job *age* by which ``TARGET_DONE``
of its jobs are done (``FirstReadDelay.done_by_s``, from the age at which first reads were
answered), and a fresh job's first read tells the limiter it is probably wasted before then
(``RateLimiter.acquire(useful_from=...)``): it then waits behind requests that are useful now,
and takes a turn early only when no such request wants it. This is what spares the reads at the
end of a batch, when the queue drains and reads would reach renders younger than they can be.

Reading at the end of a render
------------------------------
When a render reports ``renderProgress``, the next read is brought forward to when the progress
seen so far says it will be done (``until_done_s``; a fresh render was at 0 % when it was
created, so one reading is enough), so a finished render frees its slot (and the account's
render cap) about when it finishes rather than up to one interval later, and the last render of
a batch is not read again a whole interval after a read that just missed it.

When requests are plentiful (under ``PLENTIFUL`` of the rate in use, ``RateLimiter.utilization``:
a render-capped batch), a read costs nothing and a late one keeps the account's render slot
idle, so the read is brought forward further, to the *earliest* end the readings allow
(``prompt``), projected from the first reading (the longest baseline): percentages are whole
numbers, so the fastest progress they allow is one point more than they say; a read that finds
the render at 99 % reads again a moment later (``PROMPT_PAUSE_FRACTION`` of its projected
length). A render queued behind the account's cap reports no progress: its start is unknown, so
its projection waits for two readings that show progress. A webhook, when there is one, ends the
wait at once instead.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from orchestrator.api.client import PictoryClient
from orchestrator.api.responses import JobState
from orchestrator.api.retry import CONFIRM_LOST
from orchestrator.api.webhooks import WebhookReceiver
from orchestrator.clock import Clock
from orchestrator.errors import JobFailedError, JobLostError, JobStuckError, PermanentError

EARLY_READ_MARGIN = 1.05
"""Read this much after the projected end, so the read usually finds the job done."""
MIN_EARLY_PAUSE_FRACTION = 0.1
"""Never read sooner than this fraction of the interval."""
PROMPT_PAUSE_FRACTION = 0.0025
"""With ``prompt`` reads, the shortest pause: this fraction of the render's projected length
(15 ms of a 6 s render), so the last per cent is read a few times, not a hundred."""
PLENTIFUL = 0.5
"""Below this share of the rate in use (``RateLimiter.utilization``) requests are plentiful:
renders are read at their earliest possible end (``prompt``)."""
SATURATED = 0.5
"""Limiter saturation from which a fresh job's first read waits for the learned delay."""
LEARNING_UTILIZATION = 0.25
"""...and the share of the rate in use (``RateLimiter.utilization``) it also needs: requests
asking in bursts at a plentiful rate look saturated (two in one millisecond at 1,000 req/s), and
a first read at the learned delay (about when 96 % of renders are done) would leave most render
slots idle for seconds."""
TARGET_DONE = 0.96
"""Share of first reads that should find the job finished. A miss costs a request (a quarter of
a row's worth when polling at R/4 rows/s); a later hit costs only a slightly longer wait while
the rate binds, so the target is high (0.90 before; 300 rows spent 4.08–4.13 requests a row
after, 4.13 before: the learning is noisy at that size)."""


AGE_BAND = 1.1
"""A first read answered within this factor of ``FirstReadDelay.done_by_s`` tells whether it is
right (see ``observe_age``)."""


class FirstReadDelay:
    """When to read a fresh job of one stage the first time; learned, no history kept.

    Tracks the ``target_done`` quantile of "time until a first read finds the job finished" by
    stochastic approximation in log space: a first read at ``used_s`` that found the job running
    raises the delay to ``used_s × exp(step × target_done)`` (if that is higher), one that found
    it finished lowers it to ``used_s × exp(-step × (1 - target_done))`` (if that is lower); so
    the delay settles where ``target_done`` of first reads find the job done. Updating from the
    delay each read actually used, not the current one, keeps a cohort of rows that started
    together (and all miss, or all hit) from compounding into one huge step. It starts at, and
    never goes below, the configured interval (nor above ``max_s``).
    """

    def __init__(
        self,
        floor_s: float,
        max_s: float,
        *,
        target_done: float = TARGET_DONE,
        step: float = 0.25,
    ) -> None:
        self.floor_s = floor_s
        self.max_s = max(floor_s, max_s)
        self.target_done = target_done
        self.step = step
        self.delay_s = floor_s
        self.done_by_s = floor_s
        """The job age by which ``target_done`` of the stage's jobs are finished, learned the
        same way from the age at which first reads were answered (the queue for a turn
        included, so it is learned whether or not the rate binds). Before it a first read is
        probably wasted: it waits for a turn no useful request wants (``RateLimiter.acquire``'s
        ``useful_from``)."""

    def observe(self, used_s: float, done: bool) -> None:
        """A first read ``used_s`` after creation found the job finished (or failed) — or not."""
        self.delay_s = self._stepped(self.delay_s, used_s, done)

    def observe_age(self, age_s: float, done: bool) -> None:
        """A first read answered ``age_s`` after creation found the job finished — or not.

        Only a read answered near ``done_by_s`` (within ``AGE_BAND``) says whether it is right:
        a hit there lowers it a step, a miss there or later raises it to a step past ``age_s``.
        A hit long after it, or a miss long before it (a read keyed when the estimate was
        different, or sent early because nothing else wanted the turn), says nothing about it.
        """
        by_s = self.done_by_s
        if done and by_s / AGE_BAND <= age_s <= by_s * AGE_BAND:
            by_s *= math.exp(-self.step * (1 - self.target_done))
        elif not done and age_s >= by_s / AGE_BAND:
            by_s = max(by_s, age_s) * math.exp(self.step * self.target_done)
        self.done_by_s = min(self.max_s, max(self.floor_s, by_s))

    def _stepped(self, estimate_s: float, at_s: float, done: bool) -> float:
        if done:
            estimate_s = min(estimate_s, at_s * math.exp(-self.step * (1 - self.target_done)))
        else:
            estimate_s = max(estimate_s, at_s * math.exp(self.step * self.target_done))
        return min(self.max_s, max(self.floor_s, estimate_s))


def until_done_s(
    before: tuple[float, float] | None,
    now: tuple[float, float],
    pause_s: float,
    interval_s: float,
    *,
    prompt: bool = False,
) -> float:
    """The pause before the next read: ``pause_s``, or sooner when two progress readings
    ``(clock_s, percent)`` project the job's end inside it. ``prompt``: at the earliest end the
    whole-number percentages allow (requests are plentiful; module docstring)."""
    if before is None:
        return pause_s
    (t0, p0), (t1, p1) = before, now
    if not 0 < p1 < 100 or p1 <= p0 or t1 <= t0:
        return pause_s
    if prompt:
        fastest = (p1 + 1 - p0) / (t1 - t0)  # per cent per second, at most
        remaining_s = (100 - p1 - 1) / fastest
        shortest_s = PROMPT_PAUSE_FRACTION * 100 * (t1 - t0) / (p1 - p0)
        return min(pause_s, max(remaining_s, shortest_s))
    remaining_s = (100 - p1) * (t1 - t0) / (p1 - p0) * EARLY_READ_MARGIN
    return min(pause_s, max(remaining_s, interval_s * MIN_EARLY_PAUSE_FRACTION))


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
    first_read: FirstReadDelay | None = None,
    on_unknown_status: Callable[[str], None] | None = None,
) -> JobState:
    """Return the finished job; raise JobFailedError if it failed, JobStuckError past the deadline,
    JobLostError once the API answered 404 to two reads one interval apart
    (``retry.CONFIRM_LOST``) or said the job was ``cleaned``.

    A ``fresh`` job (created a moment ago) is not read before the first interval has passed; a
    re-attached one is read at once, since it may have finished long ago. With ``first_read`` and
    a saturated rate limiter, a fresh job's first read waits for the learned delay instead; with
    ``first_read`` and no webhooks it also yields its turn to requests useful sooner until the
    job reaches the stage's learned ``done_by_s`` age (module docstring).
    """
    started = clock.now()
    read_now = not fresh
    learning = (
        first_read is not None
        and fresh
        and webhooks is None
        and client.limiter.saturation >= SATURATED
        and client.limiter.utilization >= LEARNING_UTILIZATION
    )
    used_s = 0.0
    not_found = 0  # reads answered 404 (``retry.CONFIRM_LOST``)
    # (clock, progress) of the previous read; a fresh job was at 0 % when it was created.
    seen: tuple[float, float] | None = (started, 0.0) if fresh else None
    anchor: tuple[float, float] | None = None  # the first of them, for prompt reads
    if learning:
        assert first_read is not None
        used_s = first_read.delay_s
        await clock.sleep(used_s)
        read_now = True
    # A first read of a fresh job defers its turn to requests useful sooner (``done_by_s``).
    useful_from: Callable[[], float] | None = None
    if first_read is not None and fresh and webhooks is None:
        learned = first_read
        useful_from = lambda: started + learned.done_by_s  # noqa: E731
    while True:
        state = webhooks.take(job_id) if webhooks is not None else None
        if state is None and read_now:
            try:
                state = await client.get_job(job_id, useful_from=useful_from)
            except PermanentError as exc:
                if CONFIRM_LOST.allows(exc, not_found):  # asked again before it is declared lost
                    not_found += 1
                    await clock.sleep(interval_s)
                    continue
                if exc.status == 404:
                    raise JobLostError(
                        f"{stage} job {job_id} is no longer known to the API (expired, or "
                        "made by another simulator)",
                        endpoint=exc.endpoint,
                        status=404,
                        error_code=exc.error_code,
                    ) from exc
                raise
            if useful_from is not None:
                assert first_read is not None
                first_read.observe_age(clock.now() - started, state.finished)
                useful_from = None
            if learning:
                assert first_read is not None
                first_read.observe(used_s, state.finished)
                learning = False
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
            if state.status == "cleaned":  # §5.4: its results are gone, like an unknown job
                raise JobLostError(
                    f"{stage} job {job_id} was cleaned by the API (its results are deleted "
                    "after a retention period)",
                    endpoint=f"GET /v1/jobs/{job_id}",
                )
            if state.unknown_status is not None and on_unknown_status is not None:
                on_unknown_status(state.unknown_status)
                on_unknown_status = None  # once per wait is enough to say it
            if on_progress is not None:
                on_progress(state)
        if clock.now() - started >= deadline_s:
            raise JobStuckError(
                f"{stage} job {job_id} unfinished after {deadline_s:.0f} s; "
                "resume later to pick it up again",
                endpoint=f"GET /v1/jobs/{job_id}",
            )
        pause_s = interval_s * (1.0 + rng.uniform(-jitter_fraction, jitter_fraction))
        pct = state.progress_pct if state is not None else None
        if webhooks is None and pct is not None:
            now_s = clock.now()
            if client.limiter.utilization < PLENTIFUL:  # the longest baseline projects best
                anchor = anchor or seen
                pause_s = until_done_s(anchor, (now_s, pct), pause_s, interval_s, prompt=True)
            else:
                pause_s = until_done_s(seen, (now_s, pct), pause_s, interval_s)
            seen = (now_s, pct)
        elif state is not None:
            seen = anchor = None  # queued behind the render cap: when it starts is unknown
        if webhooks is not None:
            await webhooks.wait(job_id, pause_s)
        else:
            await clock.sleep(pause_s)
