"""RateLimiter on virtual time: window-safe spacing, turn order, cancellation, AIMD, windows."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import anyio
import pytest

from orchestrator.api.limits import EARLY_S, RateLimiter
from orchestrator.api.retry import RetryPolicy, call_with_retry
from orchestrator.clock import VirtualClock
from orchestrator.errors import RateLimitedError


async def _admit_concurrently(
    limiter: RateLimiter, clock: VirtualClock, *, tasks: int, until_s: float
) -> list[float]:
    """``tasks`` tasks acquire in a loop until ``until_s``; returns the admission times."""
    times: list[float] = []

    async def worker() -> None:
        while clock.now() < until_s:
            await limiter.acquire()
            times.append(clock.now())

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)
    return sorted(times)


def _max_in_any_window(times: list[float], window_s: float) -> int:
    """The most admissions any half-open interval [t, t + window_s) holds, t anywhere."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("max_rps", [0.7, 1.0, 2.5, 7.9, 10.0, 33.0])
async def test_no_one_second_window_holds_more_than_floor_rate(max_rps: float) -> None:
    """Many concurrent acquirers never put more than floor(rate) (min. 1) in any 1 s window."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=max_rps, min_rps=0.1)
    times = await _admit_concurrently(limiter, clock, tasks=25, until_s=30.0)
    assert _max_in_any_window(times, 1.0) <= max(1, math.floor(max_rps))


async def test_throughput_over_60_virtual_seconds_is_at_least_90_percent() -> None:
    """At a steady 10 req/s the limiter admits at least 540 requests in 60 virtual seconds."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=10)
    times = await _admit_concurrently(limiter, clock, tasks=40, until_s=60.0)
    admitted_in_60_s = sum(1 for t in times if t < 60.0)
    assert admitted_in_60_s >= 0.9 * 10 * 60
    assert limiter.admitted_total == len(times)


class LateClock(VirtualClock):
    """A busy event loop: every sleep wakes ``late_s`` after its deadline."""

    def __init__(self, late_s: float) -> None:
        super().__init__()
        self.late_s = late_s

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds + self.late_s if seconds > 0 else seconds)


async def test_a_run_starts_at_the_full_rate_even_when_wake_ups_are_late() -> None:
    """Before any 429, 20 req/s admits >= 99 % of 20 × 60 in 60 s, though every sleep wakes
    2 ms late (turns are booked on the schedule, not on the late wake-up)."""
    clock = LateClock(late_s=0.002)
    limiter = RateLimiter(clock, max_rps=20)
    times = await _admit_concurrently(limiter, clock, tasks=40, until_s=60.0)
    assert sum(1 for t in times if t < 60.0) >= 0.99 * 20 * 60
    assert _max_in_any_window(times, 1.0) <= 20


class CountingClock(VirtualClock):
    """Counts the sleeps that wait for time to pass."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps += seconds > 0
        await super().sleep(seconds)


async def test_turns_due_within_half_a_millisecond_are_taken_without_a_sleep() -> None:
    """At 10,000 req/s (turns 0.1 ms apart) the turns due within ``EARLY_S`` go at once, booked
    at their times: five requests at t = 0 (due 0 to 0.4 ms) sleep for nothing, the sixth (due
    at 0.5005 ms) does, and the schedule is not pulled forward: it goes at its time."""
    clock = CountingClock()
    limiter = RateLimiter(clock, max_rps=10_000)
    assert pytest.approx(0.0005) == EARLY_S
    times = []
    for _ in range(6):
        await limiter.acquire()
        times.append(clock.now())
    assert times[:5] == [0.0] * 5
    assert clock.sleeps == 1
    assert times[5] == pytest.approx(5 * limiter.interval_s)


@pytest.mark.parametrize("late_s", [0.0, 0.00005])
async def test_taking_turns_early_keeps_every_window_at_floor_rate(late_s: float) -> None:
    """At 10,000 and 2,500 req/s, many acquirers taking turns early (and waking up late) never
    put more than floor(rate) in any 1 s window, and still use >= 99 % of the rate."""
    for max_rps in (10_000, 2_500):
        clock = LateClock(late_s=late_s)
        limiter = RateLimiter(clock, max_rps=max_rps)
        times = await _admit_concurrently(limiter, clock, tasks=25, until_s=2.5)
        assert _max_in_any_window(times, 1.0) <= max_rps
        assert sum(1 for t in times if t < 2.0) >= 0.99 * max_rps * 2


async def test_no_turn_is_taken_early_without_a_guard_or_into_a_pause() -> None:
    """``window_guard_s=0`` leaves no room for an early turn (each waits its 0.1 ms); a 429's
    pause is waited out to its end, however near it is."""
    clock = CountingClock()
    unguarded = RateLimiter(clock, max_rps=10_000, window_guard_s=0.0)
    for _ in range(3):
        await unguarded.acquire()
    assert clock.now() == pytest.approx(2 * unguarded.interval_s)
    assert clock.sleeps == 2
    limiter = RateLimiter(clock, max_rps=10_000, pause_jitter_s=0.0)
    await limiter.acquire()
    limiter.on_rate_limited(0.0002)  # the pause is at least 1 s
    await limiter.acquire()
    assert clock.now() >= limiter.paused_until_s


async def test_the_first_429_switches_the_guard_on_instead_of_cutting() -> None:
    """After clean windows at the full rate, a 429 widens the guard a step (10, 30, then 50 ms)
    and keeps the rate; a 429 with nothing heard before it is cut for as ever."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=10, pause_jitter_s=0.0)
    assert limiter.interval_s == pytest.approx(1.001 / 10)
    for _ in range(30):
        await limiter.acquire()
        limiter.on_success()
    limiter.on_rate_limited(1.0)
    assert (limiter.guards_total, limiter.cuts_total) == (1, 0)
    assert limiter.current_rps == 10
    assert limiter.interval_s == pytest.approx(1.01 / 10)
    for guard_s in (0.03, 0.05, 0.05):
        await clock.sleep(2.0)
        for _ in range(30):
            await limiter.acquire()
            limiter.on_success()
        limiter.on_rate_limited(1.0)
        assert limiter.interval_s == pytest.approx((1 + guard_s) / 10)
    assert limiter.guards_total == 3
    at_once = RateLimiter(clock, max_rps=10, pause_jitter_s=0.0)
    at_once.on_rate_limited(1.0)
    assert (at_once.guards_total, at_once.cuts_total) == (1, 1)
    assert at_once.current_rps == pytest.approx(7.0)


async def test_per_minute_limit_is_respected_in_any_60_second_window() -> None:
    """With max_per_minute=90 no 60 s window holds more than 90, and throughput stays near it."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=10, max_per_minute=90)
    times = await _admit_concurrently(limiter, clock, tasks=10, until_s=180.0)
    assert _max_in_any_window(times, 60.0) <= 90
    assert _max_in_any_window(times, 1.0) <= 10
    assert len(times) >= 0.9 * 90 * 3


async def test_waiters_are_admitted_first_come_first_served() -> None:
    """Tasks that start waiting in order are admitted in that order."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=2)
    order: list[int] = []

    async def waiter(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(waiter, i)
            await anyio.lowlevel.checkpoint()  # let it join the queue before the next one
    assert order == list(range(12))


async def test_a_first_request_takes_the_next_turn_ahead_of_the_queue() -> None:
    """acquire(first=True) (a token refresh everyone waits for) goes next, not last, and the
    spacing still holds for every admission."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=2)
    order: list[str] = []
    times: list[float] = []

    async def waiter(name: str, first: bool = False) -> None:
        await limiter.acquire(first=first)
        order.append(name)
        times.append(clock.now())

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(waiter, f"w{i}")
            await anyio.lowlevel.checkpoint()
        tg.start_soon(waiter, "token", True)
    assert order.index("token") <= 2  # behind at most the turn already being taken
    assert _max_in_any_window(times, 1.0) <= 2
    assert limiter.admitted_total == 7


async def test_a_request_useful_later_gives_its_turns_to_requests_useful_now() -> None:
    """A read that says it is of no use before t = 2.5 s waits as if it had asked then: the
    requests that asked after it but before 2.5 s go first, those that asked later go after."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=1, window_guard_s=0.0)
    admitted: dict[str, float] = {}

    async def waiter(name: str, asks_at_s: float = 0.0, useful_at_s: float | None = None) -> None:
        await clock.sleep(asks_at_s)
        await limiter.acquire(useful_from=None if useful_at_s is None else lambda: useful_at_s)
        admitted[name] = clock.now()

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "w0")
        await anyio.lowlevel.checkpoint()
        tg.start_soon(waiter, "read", 0.0, 2.5)
        await anyio.lowlevel.checkpoint()
        for name in ("w1", "w2", "w3"):
            tg.start_soon(waiter, name)
            await anyio.lowlevel.checkpoint()
        for name in ("w4", "w5"):
            tg.start_soon(waiter, name, 3.5)
    assert sorted(admitted, key=admitted.__getitem__) == [
        "w0", "w1", "w2", "w3", "read", "w4", "w5"
    ]  # fmt: skip
    assert sorted(admitted.values()) == [float(t) for t in range(7)]  # no turn left unused


async def test_a_request_useful_later_still_takes_a_turn_nobody_else_wants() -> None:
    """Nothing else waiting: the early request goes at once; a turn is never left unused."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=1, window_guard_s=0.0)
    await limiter.acquire(useful_from=lambda: 50.0)
    assert clock.now() == 0.0
    await limiter.acquire(useful_from=lambda: 50.0)
    assert clock.now() == 1.0


async def test_a_waiting_request_is_placed_by_its_latest_estimate_when_its_turn_comes() -> None:
    """``useful_from`` is asked again at the head: a read queued while the estimate said 0 s,
    which now says 10 s, steps back behind requests that are useful now."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=1, window_guard_s=0.0)
    estimate_s = [0.0]
    admitted: list[str] = []

    async def waiter(name: str, estimated: bool = False) -> None:
        await limiter.acquire(useful_from=(lambda: estimate_s[0]) if estimated else None)
        admitted.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "w0")
        await anyio.lowlevel.checkpoint()
        tg.start_soon(waiter, "read", True)
        await anyio.lowlevel.checkpoint()
        tg.start_soon(waiter, "w1")
        tg.start_soon(waiter, "w2")
        await anyio.lowlevel.checkpoint()
        estimate_s[0] = 10.0
    assert admitted == ["w0", "w1", "w2", "read"]


async def _one_cancelled(
    names: list[str], victim: str, cancel_at_s: float, estimate_s: list[float]
) -> tuple[dict[str, float], RateLimiter]:
    """``names`` queue in order at 1 req/s (``read`` with ``useful_from`` = ``estimate_s[0]``,
    which becomes 5 s once all queued); ``victim`` is cancelled at ``cancel_at_s``, and one more
    request (``late``) asks 0.1 s later. Returns the admission times and the limiter."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=1, window_guard_s=0.0)
    admitted: dict[str, float] = {}
    scopes = {name: anyio.CancelScope() for name in names}

    async def waiter(name: str) -> None:
        with scopes[name]:
            await limiter.acquire(useful_from=(lambda: estimate_s[0]) if name == "read" else None)
            admitted[name] = clock.now()

    async def canceller() -> None:
        await clock.sleep(cancel_at_s)
        scopes[victim].cancel()

    async def one_head_after_it() -> None:
        await clock.sleep(cancel_at_s + 0.1)
        assert limiter._turns._held  # the head is asleep until its turn; it must not be lost
        await limiter.acquire()  # ...else this one would become a second head
        admitted["late"] = clock.now()

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(waiter, name)
            await anyio.lowlevel.checkpoint()
        estimate_s[0] = 5.0
        tg.start_soon(canceller)
        tg.start_soon(one_head_after_it)
    return admitted, limiter


@pytest.mark.parametrize(
    ("victim", "cancel_at_s"),
    [("w1", 0.5), ("read", 0.5), ("read", 1.5)],
    ids=["behind-a-head-that-steps-back", "head-asleep", "stepped-back"],
)
async def test_a_cancelled_request_useful_later_consumes_no_turn(
    victim: str, cancel_at_s: float
) -> None:
    """A read queued when its estimate said 0 s heads the queue, then (estimate now 5 s) steps
    back at its turn: cancelled at any of those points, no turn is used."""
    admitted, limiter = await _one_cancelled(["w0", "read", "w1", "w2"], victim, cancel_at_s, [0.0])
    assert victim not in admitted
    assert sorted(admitted.values()) == [0.0, 1.0, 2.0, 3.0]
    assert limiter.admitted_total == 4


@pytest.mark.parametrize("victim", ["w1", "w2"], ids=["head-of-queue-asleep", "queued-behind"])
async def test_cancelled_waiter_does_not_consume_a_slot(victim: str) -> None:
    """A waiter cancelled while queued admits nothing; the next one takes its turn on time."""
    admitted, limiter = await _one_cancelled(["w0", "w1", "w2", "w3"], victim, 0.5, [0.0])
    assert victim not in admitted
    assert sorted(admitted.values()) == [0.0, 1.0, 2.0, 3.0]
    assert limiter.admitted_total == 4


async def test_429_cuts_the_rate_and_pauses_admissions_past_retry_after() -> None:
    """on_rate_limited(2) cuts 10 → 7 req/s and admits nothing until 2 s plus a little jitter."""
    clock = VirtualClock()
    limiter = RateLimiter(
        clock, guard_from_start=True, max_rps=10, pause_jitter_s=0.1, rng=random.Random(3)
    )
    await limiter.acquire()
    limiter.on_rate_limited(2.0)
    assert limiter.current_rps == pytest.approx(7.0)
    assert 2.0 <= limiter.paused_until_s <= 2.1
    await limiter.acquire()
    assert 2.0 <= clock.now() <= 2.1
    assert (limiter.rate_limited_total, limiter.cuts_total) == (1, 1)


async def test_429_without_retry_after_pauses_for_the_default() -> None:
    """A 429 with no Retry-After pauses for default_pause_s (plus jitter)."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=5, default_pause_s=1.5, pause_jitter_s=0.0)
    limiter.on_rate_limited(None)
    await limiter.acquire()
    assert clock.now() == 1.5


async def test_burst_of_simultaneous_429s_cuts_once() -> None:
    """Five 429s from requests already in flight cut the rate once but are all counted."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, guard_from_start=True, max_rps=10)
    for _ in range(5):
        limiter.on_rate_limited(1.0)
    await clock.sleep(0.5)
    limiter.on_rate_limited(1.0)  # still inside the pause: same burst
    assert limiter.current_rps == pytest.approx(7.0)
    assert (limiter.rate_limited_total, limiter.cuts_total) == (6, 1)


async def test_429_after_the_cooldown_cuts_again() -> None:
    """A 429 after the pause and cooldown are over is new news and cuts again."""
    clock = VirtualClock()
    limiter = RateLimiter(
        clock, guard_from_start=True, max_rps=10, pause_jitter_s=0.0, cut_cooldown_s=1.0
    )
    limiter.on_rate_limited(1.0)
    await clock.sleep(1.5)
    limiter.on_rate_limited(1.0)
    assert limiter.current_rps == pytest.approx(10 * 0.7 * 0.7)
    assert limiter.cuts_total == 2


async def test_cut_never_goes_below_min_rps() -> None:
    """Repeated cuts stop at min_rps."""
    clock = VirtualClock()
    limiter = RateLimiter(
        clock, guard_from_start=True, max_rps=2, min_rps=0.5, cut_cooldown_s=0.0, pause_jitter_s=0
    )
    for _ in range(10):
        limiter.on_rate_limited(0.0)
        await clock.sleep(1.01)  # past the pause, so each 429 is new news
    assert limiter.current_rps == 0.5
    assert limiter.interval_s == pytest.approx(1.05 / 0.5)


async def test_recovery_is_additive_slow_and_stops_below_the_refused_rate() -> None:
    """After a cut at 10 req/s the rate climbs 0.5 per 10 successes and stops at 9.5."""
    clock = VirtualClock()
    limiter = RateLimiter(
        clock, guard_from_start=True, max_rps=10, increase_step_rps=0.5, successes_to_increase=10
    )
    limiter.on_rate_limited(1.0)
    assert limiter.current_rps == pytest.approx(7.0)
    assert limiter.safe_rps == 9.5
    for _ in range(9):
        limiter.on_success()
    assert limiter.current_rps == pytest.approx(7.0)
    limiter.on_success()
    assert limiter.current_rps == pytest.approx(7.5)
    for _ in range(200):
        limiter.on_success()
    assert limiter.current_rps == 9.5


async def test_probes_above_the_safe_rate_after_a_quiet_period() -> None:
    """At the safe rate with no 429 for probe_after_s, the rate rises one step (up to max_rps)."""
    clock = VirtualClock()
    limiter = RateLimiter(
        clock, guard_from_start=True, max_rps=10, probe_after_s=60.0, successes_to_increase=1
    )
    limiter.on_rate_limited(1.0)
    for _ in range(20):
        limiter.on_success()
    assert limiter.current_rps == 9.5
    await clock.sleep(59.0)
    limiter.on_success()
    assert limiter.current_rps == 9.5
    await clock.sleep(1.0)
    limiter.on_success()
    assert limiter.current_rps == 10.0
    assert limiter.safe_rps == 10.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_rps": 0}, "max_rps"),
        ({"max_rps": 1, "min_rps": 2}, "min_rps"),
        ({"max_rps": 1, "max_per_minute": 0}, "max_per_minute"),
        ({"max_rps": 1, "decrease_factor": 1.0}, "decrease_factor"),
        ({"max_rps": 1, "successes_to_increase": 0}, "successes_to_increase"),
    ],
)
def test_invalid_settings_are_rejected_by_name(kwargs: dict[str, float], name: str) -> None:
    """A nonsensical setting is a ValueError naming it."""
    with pytest.raises(ValueError, match=name):
        RateLimiter(VirtualClock(), **kwargs)  # type: ignore[arg-type]


# ---- a fixed-window server, end to end through limiter + call_with_retry ------------------------


@dataclass
class FixedWindowServer:
    """Allows ``limit`` requests per integer-second window of the virtual clock, else 429."""

    clock: VirtualClock
    limit: int
    per_window: dict[int, int] = field(default_factory=dict)
    served: int = 0
    refused: int = 0

    def hit(self) -> None:
        now_s = self.clock.now()
        window = math.floor(now_s)
        if self.per_window.get(window, 0) >= self.limit:
            self.refused += 1
            raise RateLimitedError(
                "rate limited", status=429, retry_after_s=max(1, math.ceil(window + 1 - now_s))
            )
        self.per_window[window] = self.per_window.get(window, 0) + 1
        self.served += 1


@dataclass
class RandomRefusals:
    """Refuses a share ``p`` of requests whatever the rate (``Retry-After: 1``), else asks
    ``server``; refused requests never reach it (like the simulator's injected 429s)."""

    server: FixedWindowServer
    p: float
    rng: random.Random
    injected: int = 0

    def hit(self) -> None:
        if self.rng.random() < self.p:
            self.injected += 1
            raise RateLimitedError("background refusal", status=429, retry_after_s=1)
        self.server.hit()


async def _drive_fixed_window_server(
    *,
    limit: int,
    max_rps: float,
    tasks: int,
    duration_s: float,
    seed: int,
    background_p: float = 0.0,
) -> tuple[FixedWindowServer, RateLimiter]:
    clock = VirtualClock()
    rng = random.Random(seed)
    server = FixedWindowServer(clock, limit)
    front = RandomRefusals(server, background_p, random.Random(seed + 1))
    limiter = RateLimiter(clock, max_rps=max_rps, rng=rng)
    policy = RetryPolicy()

    async def request() -> None:
        await limiter.acquire()
        await clock.sleep(rng.uniform(0.02, 0.06))  # transit jitter, under the 50 ms guard
        front.hit()
        await clock.sleep(rng.uniform(0.02, 0.06))
        limiter.on_success()

    async def worker() -> None:
        while clock.now() < duration_s:
            await call_with_retry(
                request, policy=policy, clock=clock, rng=rng,
                on_rate_limited=limiter.on_rate_limited,
            )  # fmt: skip

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)
    return server, limiter


@pytest.mark.parametrize(
    ("limit", "max_rps"),
    [(10, 10.0), (10, 20.0), (4, 7.0)],
    ids=["limit-known", "limit-unknown-2x", "low-limit-unknown"],
)
async def test_fixed_window_server_is_used_at_90_percent_with_under_1_percent_429s(
    limit: int, max_rps: float
) -> None:
    """Through limiter + retries, 30 tasks get >= 90 % of a fixed-window limit, < 1 % 429s; at
    max_rps = the limit, only the 429 that switches the window guard on (transit jitter)."""
    duration_s = 300.0
    server, limiter = await _drive_fixed_window_server(
        limit=limit, max_rps=max_rps, tasks=30, duration_s=duration_s, seed=7
    )
    served_in_run = sum(n for window, n in server.per_window.items() if window < duration_s)
    achieved = served_in_run / duration_s / limit
    refused_fraction = server.refused / (server.served + server.refused)
    assert achieved >= 0.90, f"{achieved:.3f} of the limit"
    assert refused_fraction < 0.01, f"{refused_fraction:.4f} answered 429"
    if max_rps <= limit:  # only the jitter shows: each 429 widens the guard, none cuts
        assert server.refused <= 3
        assert (limiter.guards_total, limiter.cuts_total) == (server.refused, 0)


@pytest.mark.parametrize("background_p", [0.02, 0.05])
@pytest.mark.parametrize(("limit", "max_rps"), [(20, 20.0), (10, 20.0)], ids=["R20", "R10-2x"])
async def test_background_refusals_do_not_collapse_the_rate(
    limit: int, max_rps: float, background_p: float
) -> None:
    """A server that also refuses a random share p of requests: >= 75 % of R * (1 - p) accepted,
    and the 429s the limit itself causes stay few (none when max_rps is the limit)."""
    duration_s = 300.0
    server, limiter = await _drive_fixed_window_server(
        limit=limit, max_rps=max_rps, tasks=30, duration_s=duration_s, seed=7,
        background_p=background_p,
    )  # fmt: skip
    served_in_run = sum(n for window, n in server.per_window.items() if window < duration_s)
    achieved = served_in_run / duration_s / (limit * (1 - background_p))
    limit_refused_fraction = server.refused / (server.served + server.refused)
    assert achieved >= 0.75, f"{achieved:.3f} of R * (1 - p)"
    assert limit_refused_fraction < 0.05, f"{limit_refused_fraction:.4f} refused by the limit"
    assert limiter.background_total > limiter.cuts_total
    if max_rps <= limit:
        assert server.refused == 0


async def test_429_judged_background_neither_pauses_nor_cuts() -> None:
    """After many answers with a steady few per cent of 429s, one more 429 leaves rate and
    admissions alone (only the refused request waits, in its retry)."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=10)
    for i in range(400):
        await limiter.acquire()
        if i % 25 == 24:
            limiter.on_rate_limited(1.0)
        else:
            limiter.on_success()
    cuts = limiter.cuts_total
    limiter.on_rate_limited(1.0)
    assert limiter.cuts_total == cuts
    assert limiter.paused_until_s < clock.now()
    assert limiter.background_total >= 1


async def test_first_429_of_a_probe_over_a_clean_history_cuts() -> None:
    """Levels below heard no 429 in hundreds of answers: the first 429 after a probe cuts."""
    clock = VirtualClock()
    limiter = RateLimiter(
        clock, guard_from_start=True, max_rps=10, pause_jitter_s=0.0, probe_after_s=60.0
    )
    limiter.on_rate_limited(1.0)  # nothing heard yet: taken for the limit
    while limiter.current_rps < 10:  # recover to 9.5, then probe to 10 after 60 quiet seconds
        await limiter.acquire()
        limiter.on_success()
    assert limiter.cuts_total == 1
    for _ in range(3):
        await limiter.acquire()
        limiter.on_success()
    limiter.on_rate_limited(1.0)
    assert limiter.cuts_total == 2
    assert limiter.current_rps == pytest.approx(7.0)
    assert limiter.safe_rps == 9.5
    assert limiter.paused_until_s == pytest.approx(clock.now() + 1.0)
