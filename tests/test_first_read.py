"""The learned first read of a fresh job, and the rate limiter's saturation signal it keys on."""

from __future__ import annotations

import math
import random

import anyio
import pytest

from orchestrator.api.limits import RateLimiter
from orchestrator.clock import VirtualClock
from orchestrator.run.stages.poll import AGE_BAND, FirstReadDelay, until_done_s


def test_first_read_delay_settles_near_the_target_quantile() -> None:
    """Fed jobs lasting U(4, 8) s, it settles where about 90 % of first reads find them done."""
    rng = random.Random(5)
    learned = FirstReadDelay(1.5, 60.0, target_done=0.9)
    delays: list[float] = []
    for _ in range(3000):
        learned.observe(learned.delay_s, rng.uniform(4.0, 8.0) <= learned.delay_s)
        delays.append(learned.delay_s)
    settled = delays[1000:]
    assert 7.0 <= sum(settled) / len(settled) <= 8.2  # the 0.9 quantile of U(4, 8) is 7.6


def test_first_read_delay_stays_within_interval_and_deadline() -> None:
    """It never drops below the configured interval nor grows past the deadline."""
    learned = FirstReadDelay(2.0, 10.0)
    for _ in range(500):
        learned.observe(learned.delay_s, True)
    assert learned.delay_s == 2.0
    for _ in range(500):
        learned.observe(learned.delay_s, False)
    assert learned.delay_s == 10.0


def test_a_cohort_of_misses_at_one_delay_raises_it_only_once() -> None:
    """Sixty rows that started together and all missed at 0.5 s move the delay one step, not 60."""
    learned = FirstReadDelay(0.5, 60.0)
    for _ in range(60):
        learned.observe(0.5, False)
    assert 0.5 < learned.delay_s < 0.7


async def test_saturation_is_high_when_the_rate_binds_and_low_when_it_does_not() -> None:
    """Many concurrent acquirers drive saturation near 1; spaced-out requests keep it near 0."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=10)

    async def hammer() -> None:
        for _ in range(10):
            await limiter.acquire()

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(hammer)
    assert limiter.saturation > 0.9

    for _ in range(100):
        await clock.sleep(1.0)
        await limiter.acquire()
    assert limiter.saturation < 0.1


def test_render_progress_brings_the_next_read_to_the_projected_end() -> None:
    """Two progress readings project the end: the next read comes then, not a full interval
    later; never sooner than a tenth of the interval, never later than the planned pause."""
    # 20 % → 60 % in 2 s: done in another 2 s (× 1.05 margin).
    assert until_done_s((0.0, 20.0), (2.0, 60.0), 5.0, 5.0) == pytest.approx(2.1)
    # Projected end beyond the pause: keep the pause.
    assert until_done_s((0.0, 10.0), (2.0, 12.0), 5.0, 5.0) == 5.0
    # Almost done: not sooner than a tenth of the interval.
    assert until_done_s((0.0, 10.0), (2.0, 99.9), 5.0, 5.0) == pytest.approx(0.5)
    # No earlier reading, or no progress since: the planned pause.
    assert until_done_s(None, (2.0, 50.0), 5.0, 5.0) == 5.0
    assert until_done_s((0.0, 50.0), (2.0, 50.0), 5.0, 5.0) == 5.0


def test_a_miss_at_the_learned_age_jumps_past_it_in_one_step() -> None:
    """A first read answered at 7 s that found the render running puts ``done_by_s`` a step past
    7 s at once (×e^0.24), however low it was: one miss is enough to learn."""
    learned = FirstReadDelay(1.5, 60.0)
    learned.observe_age(7.0, False)
    assert learned.done_by_s == pytest.approx(7.0 * math.exp(0.25 * 0.96))


def test_hits_far_from_the_learned_age_say_nothing_about_it() -> None:
    """Reads keyed before a miss raised the estimate (answered at 7 s, done) do not drag it back
    down; a miss long before it (a read sent early) does not raise it; hits near it lower it a
    small step each."""
    learned = FirstReadDelay(1.5, 60.0)
    learned.observe_age(7.0, False)
    raised = learned.done_by_s
    assert raised / AGE_BAND > 7.0  # 7 s is outside the band
    for _ in range(100):
        learned.observe_age(7.0, True)
        learned.observe_age(2.0, False)
    assert learned.done_by_s == raised
    learned.observe_age(raised * 1.02, True)
    assert learned.done_by_s == pytest.approx(raised * math.exp(-0.25 * 0.04))


def test_the_learned_age_settles_near_the_target_quantile() -> None:
    """Renders of U(4, 8) s read when the estimate says (a little after, as a queue does): it
    settles between the 0.96 quantile (7.84 s) and a margin over the longest render."""
    rng = random.Random(5)
    learned = FirstReadDelay(1.5, 60.0)
    settled: list[float] = []
    for i in range(3000):
        age_s = learned.done_by_s * rng.uniform(1.0, 1.05)
        learned.observe_age(age_s, rng.uniform(4.0, 8.0) <= age_s)
        if i >= 1000:
            settled.append(learned.done_by_s)
    assert 7.6 <= sum(settled) / len(settled) <= 8.8
