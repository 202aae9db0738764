"""How fast we call the API: an adaptive request-rate limiter safe against fixed-window servers.

``RateLimiter`` admits API requests one at a time. Every API call (not video downloads, which
come from a CDN) awaits ``acquire()`` right before it is sent.

Beside it: who takes the next turn (``api.turns``), the window guard and the account's shared
turns (``api.window_guard``), whether a 429 is the limit or background (``api.rate_evidence``),
and how many renders are sent at once (``api.render_slots``).

Spacing, not bursts
-------------------
Pictory does not document its rate limit; the worst plausible server counts requests per fixed
1-second window whose boundaries we cannot see. So the limiter guarantees, on its clock, that *no*
interval of 1 s, wherever it starts, holds more than ``floor(current_rps)`` admissions (and no
interval of 60 s more than ``floor(max_per_minute)``). It does so by even spacing ("virtual
scheduling", GCRA with a burst of one, give or take half a millisecond: below): consecutive
admissions are scheduled at least ::

    interval_s = (1 s + window_guard_s) / floor(rate)      (rate >= 1)
    interval_s = (1 s + window_guard_s) / rate             (rate <  1: one per 1/rate seconds)

apart, and likewise with 60 s for the per-minute limit; the larger interval wins. With N = floor
(rate), any N + 1 admissions then span N * interval = 1 s + guard, so no window can hold them all.
The guard absorbs transit jitter: the server counts arrivals, and two requests whose network
delays differ by less than the guard still land in different windows. Idle time is not banked, so
a quiet period never turns into a burst.

The guard is learned, not paid up front: ``api.window_guard``.

Turns are kept on the schedule, not on the wake-up: an admission that slept for its turn and woke
up late (the event loop is busy) by less than one interval is booked at its scheduled time, so the
next turn is not pushed back by the lateness and the rate does not drift a few per cent below the
target; a wake-up later than that starts the schedule afresh from now. On our clock, N + 1
admissions then span at least 1 s + guard minus one wake-up lateness.

Early by less than a timer tick
-------------------------------
A turn due within ``EARLY_S`` (half a millisecond, and at most half the guard) is taken at once
and booked at its scheduled time, not slept for: GCRA's burst tolerance. The event loop's timers
tick in milliseconds (uvloop rounds a delay to whole ones), so a shorter sleep wakes at the next
loop turn, before its time, and sleeps again: at a thousand requests a second and more, where
turns are a tenth of a millisecond apart, most requests paid for such sleeps (7 to 11 % of a
no-latency run's CPU, docs/performance.md). Booked at its time, an early turn moves no later
turn forward: the schedule never runs more than ``EARLY_S`` ahead of the clock, so N + 1
admissions span at least 1 s + guard - ``EARLY_S`` (minus one wake-up lateness, as above), more
than the window. Below 2,000 requests a second a turn is rarely due that soon after the one
before; never into a 429's pause.

Adapting (AIMD with a memory)
-----------------------------
``on_rate_limited(retry_after_s)`` is called for every 429. A 429 that arrives while a cut's pause
is on (or within ``cut_cooldown_s`` of the cut) belongs to that burst: it only extends the pause.
Any other 429 is first judged (``api.rate_evidence``): a *background* refusal changes nothing for
anyone else (the refused request waits its own ``Retry-After``: ``retry.call_with_retry`` sleeps
it), a *limit* refusal:
  * pauses all admissions until ``retry_after_s`` (or ``default_pause_s``) plus a small positive
    jitter, and at least 1 s, so no window mixes old and new spacing;
  * cuts the rate once: ``rate = max(min_rps, effective_rate * decrease_factor)``;
  * remembers a recovery ceiling ``safe_rps``: one request per window below the count that was
    refused (``floor(rate) - 0.5``; under 2 req/s, ``min(rate, 1) * decrease_factor``).

``on_success()`` (called for every answer that was not a 429): every ``successes_to_increase``
successes raise the rate by ``increase_step_rps``, up to ``safe_rps`` (not while the current stay
looks suspicious, below). Once there it probes: after ``probe_after_s`` without a limit 429 it
raises ``safe_rps`` (and the rate) by one step, up to ``max_rps``, so a one-off 429 (or a server
that raised its limit) does not cost throughput forever. Probing by time rather than by count keeps
its cost (one pause, a few 429s, a short recovery) the same fraction of the run at any rate.
Against a server limiting at exactly R req/s, with ``max_rps`` above R, this settles at floor(R)
per (1 s + guard), i.e. about 95 % of R between probes and over 90 % overall, with under 1 % of
requests answered 429. With ``max_rps`` at or below R the only 429s are those that widen the
guard, a burst at most per step (none when the jitter never shows).

Saturation
----------
``saturation`` is a moving average (over about ``1 / SATURATION_WEIGHT`` admissions) of how often a
request had to wait for its turn: near 1 when the rate is what binds the run, near 0 when requests
are plentiful. Polling reads it to decide whether saving a request is worth a later answer.
``utilization`` is the share of the rate in use (admissions per second, averaged over about
``UTILIZATION_WINDOW_S``): polling reads a render at its earliest possible end only while it is
low, since at a high rate a few requests asking in the same millisecond already "wait".

"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import anyio

from orchestrator.api.rate_evidence import Evidence, one_step_below
from orchestrator.api.turns import Place, TurnQueue
from orchestrator.api.window_guard import (
    GUARD_STEPS_S,
    MIN_GUARD_S,
    SHARED_FIRST_GUARD_S,
    SharedRate,
    next_guard_s,
)
from orchestrator.clock import Clock

SECOND_S = 1.0
MINUTE_S = 60.0
TIME_EPSILON_S = 1e-9
"""Slack when comparing clock readings, so float rounding never causes a zero-length re-sleep."""
EARLY_S = MIN_GUARD_S / 2
"""A turn due within this long (and within half the guard) is taken now and booked at its
scheduled time: GCRA's burst tolerance (module docstring, "Early by less than a timer tick")."""
SATURATION_WEIGHT = 0.05
"""Weight of each admission in ``RateLimiter.saturation`` (a moving average over ~20)."""
UTILIZATION_WINDOW_S = 5.0
"""The time constant of ``RateLimiter.utilization``'s moving average of admissions."""
HOLD_CLIMB_P = 0.1
"""Below this p-value a stay's 429s are suspicious: the rate stops climbing (but is not cut)."""
ANSWERS_TO_RAISE_CEILING = 100
"""Answers the levels below must hold before a background verdict may raise ``safe_rps``."""


class RateLimiter:
    """Admits requests evenly spaced under an adaptive rate; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_rps: float,
        max_per_minute: float | None = None,
        min_rps: float = 0.5,
        increase_step_rps: float = 0.5,
        successes_to_increase: int = 10,
        probe_after_s: float = 60.0,
        decrease_factor: float = 0.7,
        window_guard_s: float = 0.05,
        guard_from_start: bool = False,
        cut_cooldown_s: float = 1.0,
        default_pause_s: float = 1.0,
        pause_jitter_s: float = 0.1,
        min_answers_to_judge: int = 10,
        background_prior_share: float = 0.04,
        background_prior_answers: float = 10.0,
        limit_evidence_p: float = 0.005,
        rng: random.Random | None = None,
        shared: SharedRate | None = None,
    ) -> None:
        _require(max_rps > 0, "max_rps", max_rps, "must be > 0")
        _require(0 < min_rps <= max_rps, "min_rps", min_rps, "must be > 0 and <= max_rps")
        if max_per_minute is not None:
            _require(max_per_minute > 0, "max_per_minute", max_per_minute, "must be > 0")
        _require(increase_step_rps > 0, "increase_step_rps", increase_step_rps, "must be > 0")
        _require(successes_to_increase >= 1, "successes_to_increase", successes_to_increase, ">= 1")
        _require(probe_after_s >= 0, "probe_after_s", probe_after_s, "must be >= 0")
        _require(0 < decrease_factor < 1, "decrease_factor", decrease_factor, "must be in (0, 1)")
        _require(window_guard_s >= 0, "window_guard_s", window_guard_s, "must be >= 0")
        _require(cut_cooldown_s >= 0, "cut_cooldown_s", cut_cooldown_s, "must be >= 0")
        _require(default_pause_s >= 0, "default_pause_s", default_pause_s, "must be >= 0")
        _require(pause_jitter_s >= 0, "pause_jitter_s", pause_jitter_s, "must be >= 0")
        _require(min_answers_to_judge >= 0, "min_answers_to_judge", min_answers_to_judge, ">= 0")
        _require(
            0 <= background_prior_share < 1,
            "background_prior_share", background_prior_share, "must be in [0, 1)",
        )  # fmt: skip
        _require(
            background_prior_answers > 0,
            "background_prior_answers", background_prior_answers, "must be > 0",
        )  # fmt: skip
        _require(0 < limit_evidence_p < 1, "limit_evidence_p", limit_evidence_p, "in (0, 1)")
        self._clock = clock
        self._max_rps = float(max_rps)
        self._max_per_minute = None if max_per_minute is None else float(max_per_minute)
        self._min_rps = float(min_rps)
        self._step_rps = float(increase_step_rps)
        self._successes_to_increase = successes_to_increase
        self._probe_after_s = probe_after_s
        self._decrease_factor = decrease_factor
        self._guard_after_limit_s = window_guard_s
        # Until a 429 shows that jitter matters (module docstring).
        self._guard_s = window_guard_s if guard_from_start else min(MIN_GUARD_S, window_guard_s)
        self._cut_cooldown_s = cut_cooldown_s
        self._default_pause_s = default_pause_s
        self._pause_jitter_s = pause_jitter_s
        self._min_answers_to_judge = min_answers_to_judge
        self._evidence = Evidence(
            background_prior_share, background_prior_answers, limit_evidence_p
        )
        self._rng = rng if rng is not None else random.Random()
        self._shared = shared
        if shared is not None:  # the account's guard: no thinner than ours, or its first step
            shared.widen(max(self._guard_s, min(SHARED_FIRST_GUARD_S, window_guard_s)))

        self._rate_rps = self._max_rps
        self._safe_rps = self._max_rps
        self._successes = 0
        self._probe_at_s: float | None = None
        self._last_admitted_s: float | None = None  # the scheduled time of the last turn
        self._paused_until_s = -math.inf
        self._no_cut_until_s = -math.inf
        self._turns = TurnQueue()  # who takes the next turn (earliest useful first)
        self._orders = itertools.count()  # ties in usefulness go first come, first served
        self._first_lock = anyio.Lock(fast_acquire=True)  # the ``acquire(first=True)`` queue
        self._first_waiting = 0

        self.admitted_total = 0
        """Requests admitted by ``acquire``."""
        self.rate_limited_total = 0
        """429s reported through ``on_rate_limited``."""
        self.cuts_total = 0
        """How many of those 429s cut the rate (the rest belonged to a burst already cut for)."""
        self.background_total = 0
        """How many of those 429s were judged background refusals (no pause, no cut)."""
        self.guards_total = 0
        """How many of those 429s widened the window guard (at most 3 in a run)."""
        self.saturation = 0.0
        """Moving average of "this request had to wait its turn" (0–1); see the module docstring."""
        self._use_rps = 0.0  # admissions per second, a moving average (``utilization``)
        self._use_at_s: float | None = None

    # ---- reading ------------------------------------------------------------------------------

    @property
    def utilization(self) -> float:
        """Admissions per second over the last ``UTILIZATION_WINDOW_S`` or so (an exponential
        average), as a share of the rate in force: near 0 when requests are plentiful, near 1
        when the rate binds. Unlike ``saturation`` it stays low when requests merely come in
        bursts of a few (at 1,000 req/s, two in the same millisecond wait their turn)."""
        if self._use_at_s is None:
            return 0.0
        idle_s = max(0.0, self._clock.now() - self._use_at_s)
        return self._use_rps * math.exp(-idle_s / UTILIZATION_WINDOW_S) / self._effective_rps()

    @property
    def current_rps(self) -> float:
        """The rate AIMD has settled on (admissions are floor(rate) per 1 s + guard)."""
        return self._rate_rps

    @property
    def safe_rps(self) -> float:
        """Where recovery after a 429 stops before probing further (``max_rps`` until a 429)."""
        return self._safe_rps

    @property
    def interval_s(self) -> float:
        """The spacing between two scheduled admissions at the current rate."""
        interval = spacing_s(self._rate_rps, SECOND_S, self._guard_s)
        if self._max_per_minute is not None:
            interval = max(interval, spacing_s(self._max_per_minute, MINUTE_S, self._guard_s))
        return interval

    @property
    def _early_s(self) -> float:
        """How early a turn may be taken: ``EARLY_S``, at most half the guard, so N + 1
        admissions still span more than the window (none with no guard)."""
        return max(TIME_EPSILON_S, min(EARLY_S, self._guard_s / 2))

    @property
    def paused_until_s(self) -> float:
        """Clock reading before which nothing is admitted (a past time when not paused)."""
        return self._paused_until_s

    # ---- admitting -----------------------------------------------------------------------------

    async def acquire(
        self, *, first: bool = False, useful_from: Callable[[], float] | None = None
    ) -> None:
        """Wait for this request's turn, then return: the caller sends at once.

        Turns go first come, first served, except that a request may say it is probably of no
        use before the clock reading ``useful_from()`` returns (a read of a job that is likely
        still running): it then waits as if it had asked at that time, so a turn goes to a
        request that is useful now, if any waits, rather than to one that would likely be
        wasted. A turn is never left unused for that: when only such requests wait, the earliest
        goes. ``useful_from`` is asked again when the request's turn comes, so a later estimate
        counts for requests already waiting.

        ``first=True`` is for a request every other one is waiting for (a token refresh): it
        takes the next turn ahead of the queue (spacing still holds; such requests queue among
        themselves). Cancelling a waiter (in the queue or asleep at its head) admits nothing and
        consumes no slot: the next waiter takes the turn at the same time.
        """
        asked_s = self._clock.now()
        if first:
            self._first_waiting += 1
            try:
                async with self._first_lock:
                    await self._take_turn(asked_s, None)
            finally:
                self._first_waiting -= 1
            return
        place = Place(asked_s, useful_from, next(self._orders))
        await self._turns.wait(place)
        try:
            await self._take_turn(asked_s, place)
        finally:
            if place.heads:  # not if cancelled after stepping back, while waiting again
                self._turns.pass_on(place)

    async def _take_turn(self, asked_s: float, place: Place | None) -> None:
        """Sleep until the next turn is due, then book it. ``place``: this request's place in
        the turn queue, which it holds the head of (``None``: the ``first`` queue)."""
        slept = False
        while True:
            now_s = self._clock.now()
            ready_at_s = self._paused_until_s
            if self._last_admitted_s is not None:
                ready_at_s = max(ready_at_s, self._last_admitted_s + self.interval_s)
            # Early only for spacing, never into a 429's pause.
            early_s = self._early_s if now_s >= self._paused_until_s else TIME_EPSILON_S
            if now_s + early_s >= ready_at_s:
                if place is None:
                    break  # a "first" request: its turn
                if not self._first_waiting:
                    if not self._turns.more_useful_waiting(place):
                        break
                    # A request that is useful sooner asked while we slept: the turn is its.
                    await self._turns.step_back(place)
                    continue
                ready_at_s = now_s + self.interval_s  # this turn goes to the "first" request
            # Re-checked after waking: a 429 may have paused us, or a cut widened the spacing.
            await self._clock.sleep(ready_at_s - now_s)
            slept = True
        # Taken early, or woke up late: book the turn at its time (module docstring).
        on_schedule = now_s < ready_at_s or (slept and 0.0 < now_s - ready_at_s < self.interval_s)
        if self._shared is not None:  # other workers use the account too: its turn, after ours
            await self._shared.take()
            now_s = self._clock.now()
            on_schedule = False
        self._last_admitted_s = ready_at_s if on_schedule else now_s
        self.admitted_total += 1
        waited = 1.0 if now_s - asked_s > TIME_EPSILON_S else 0.0
        self.saturation += SATURATION_WEIGHT * (waited - self.saturation)
        if self._use_at_s is not None:
            decay = math.exp(-max(0.0, now_s - self._use_at_s) / UTILIZATION_WINDOW_S)
            self._use_rps *= decay
        self._use_rps += 1.0 / UTILIZATION_WINDOW_S
        self._use_at_s = now_s

    # ---- feedback --------------------------------------------------------------------------------

    def on_rate_limited(self, retry_after_s: float | None) -> None:
        """A request was answered 429: unless it looks like background, pause everyone and cut."""
        self.rate_limited_total += 1
        now_s = self._clock.now()
        pause_s = self._default_pause_s
        if retry_after_s is not None and math.isfinite(retry_after_s) and retry_after_s >= 0:
            pause_s = retry_after_s
        jitter_s = self._rng.uniform(0.0, self._pause_jitter_s) if self._pause_jitter_s else 0.0
        if now_s < self._no_cut_until_s:
            # The same burst: requests already in flight when we cut. Not counted per level.
            self._paused_until_s = max(self._paused_until_s, now_s + pause_s + jitter_s)
            return
        if self._shared is not None:  # the account's guard: a step past the one our turn had
            self._shared.widen(next_guard_s(self._shared.guard_s, self._guard_after_limit_s))
        guard_was_off = self._guard_s < self._guard_after_limit_s
        if guard_was_off:  # a 429 before the full guard, whatever it is judged: widen it a step
            wider = [g for g in GUARD_STEPS_S if g > self._guard_s] + [self._guard_after_limit_s]
            self._guard_s = min(self._guard_after_limit_s, wider[0])
            self.guards_total += 1
        level = self._level()
        evidence = self._evidence
        evidence.count(level, refused=True)
        judged = evidence.answers_heard >= self._min_answers_to_judge  # else: the limit, as ever
        if judged and evidence.stay_p_value(level) >= evidence.evidence_p:
            self.background_total += 1
            # Background is real: a ceiling lowered before we knew it may have been too cautious.
            if evidence.heard_below(level)[0] >= ANSWERS_TO_RAISE_CEILING:
                ceiling_rps = evidence.ceiling_rps(
                    self._min_rps, self._decrease_factor, self._max_rps
                )
                self._safe_rps = max(self._safe_rps, ceiling_rps)
            return  # no pause, no cut: only the refused request waits (its own Retry-After)
        # A full window of silence, so no 1 s window mixes the old spacing with the new rate.
        self._paused_until_s = max(self._paused_until_s, now_s + max(pause_s + jitter_s, SECOND_S))
        clean_before = (
            evidence.stay_answers - evidence.stay_refused >= 2 * level
        )  # 2 windows' worth
        if guard_was_off and clean_before:  # the guard alone may be what was missing: no cut
            self._no_cut_until_s = max(self._paused_until_s, now_s + self._cut_cooldown_s)
            return
        base_rps = self._effective_rps()
        self._rate_rps = max(self._min_rps, base_rps * self._decrease_factor)
        self._safe_rps = max(self._min_rps, one_step_below(base_rps, self._decrease_factor))
        self._successes = 0
        self._probe_at_s = None
        self._no_cut_until_s = max(self._paused_until_s, now_s + self._cut_cooldown_s)
        self.cuts_total += 1

    def on_success(self) -> None:
        """A request was answered (not 429): after enough of them, raise the rate a step."""
        if self._clock.now() >= self._paused_until_s:  # answers inside a cut's pause: its burst
            self._evidence.count(self._level(), refused=False)
        self._successes += 1
        if self._rate_rps < self._safe_rps:
            suspicious = self._evidence.stay_p_value(self._level()) < HOLD_CLIMB_P
            if self._successes >= self._successes_to_increase and not suspicious:
                self._successes = 0
                self._rate_rps = min(self._safe_rps, self._rate_rps + self._step_rps)
            return
        self._successes = 0
        if self._safe_rps >= self._max_rps:
            return  # at max_rps: nothing to probe for
        now_s = self._clock.now()
        if self._probe_at_s is None:
            self._probe_at_s = now_s + self._probe_after_s
        elif now_s >= self._probe_at_s:
            self._probe_at_s = None
            self._safe_rps = min(self._max_rps, self._safe_rps + self._step_rps)
            self._rate_rps = self._safe_rps

    def _level(self) -> int:
        """The integer level the evidence is filed under: admissions per (1 s + guard)."""
        return math.floor(self._effective_rps())

    def _effective_rps(self) -> float:
        """The rate actually in force: the per-minute limit may be the tighter one."""
        if self._max_per_minute is None:
            return self._rate_rps
        return min(self._rate_rps, self._max_per_minute / MINUTE_S)


def spacing_s(limit: float, window_s: float, guard_s: float) -> float:
    """Spacing that keeps any ``window_s`` interval at <= floor(limit) requests (one if < 1)."""
    count = math.floor(limit)
    return (window_s + guard_s) / (count if count >= 1 else limit)


def _require(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ValueError(f"RateLimiter: {name}={value!r} {rule}")
