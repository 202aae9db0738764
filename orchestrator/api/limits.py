"""How fast we call the API: an adaptive request-rate limiter safe against fixed-window servers.

``RateLimiter`` admits API requests one at a time. Every API call (not video downloads, which
come from a CDN) awaits ``acquire()`` right before it is sent.

Turn order
----------
First come, first served, with one exception: a request may say when it is likely to be of use
(``acquire(useful_from=...)``; a first read of a job that is probably still running). It then
waits as if it had asked at that time, so turns go to requests that are useful now before it.
One head at a time sleeps until the next turn is due; when the turn comes it asks its
``useful_from`` again (estimates are learned while it waits) and steps back if a waiter is
useful sooner. A turn is never left unused: when only early requests wait, the earliest goes.
Unmarked requests keep their FIFO order among themselves. (Why: ``stages.poll``.)

Spacing, not bursts
-------------------
Pictory does not document its rate limit; the worst plausible server counts requests per fixed
1-second window whose boundaries we cannot see. So the limiter guarantees, on its clock, that *no*
interval of 1 s, wherever it starts, holds more than ``floor(current_rps)`` admissions (and no
interval of 60 s more than ``floor(max_per_minute)``). It does so by even spacing ("virtual
scheduling", GCRA with a burst of one): consecutive admissions are at least ::

    interval_s = (1 s + window_guard_s) / floor(rate)      (rate >= 1)
    interval_s = (1 s + window_guard_s) / rate             (rate <  1: one per 1/rate seconds)

apart, and likewise with 60 s for the per-minute limit; the larger interval wins. With N = floor
(rate), any N + 1 admissions then span N * interval = 1 s + guard, so no window can hold them all.
The guard absorbs transit jitter: the server counts arrivals, and two requests whose network
delays differ by less than the guard still land in different windows. Idle time is not banked, so
a quiet period never turns into a burst.

The guard is learned, not paid up front (``guard_from_start=False``, the default): a run starts at
the full rate (guard ``MIN_GUARD_S``, 1 ms: floor(rate) per second, the most a fixed-window server
at that rate accepts). A 429, however it is judged below, widens the guard a step (10 ms, 30 ms,
then ``window_guard_s``, default 50 ms, i.e. 95 % of the ceiling) for the rest of the run; if it is
judged a limit after the rate held for two windows' worth of answers, it pauses everyone as below
but does not cut the rate, since the thin guard alone may explain it (a 429 at once is cut for).
Once the guard is full, limit 429s cut as usual. The trade: a pause (about a second) and a few
refused requests per step on an account where the jitter shows (our own event loop's delays between
admitting a request and sending it count too), against 5 % of every run everywhere.

Turns are kept on the schedule, not on the wake-up: an admission that slept for its turn and woke
up late (the event loop is busy) by less than one interval is booked at its scheduled time, so the
next turn is not pushed back by the lateness and the rate does not drift a few per cent below the
target; a wake-up later than that starts the schedule afresh from now. On our clock, N + 1
admissions then span at least 1 s + guard minus one wake-up lateness.

Adapting (AIMD with a memory)
-----------------------------
``on_rate_limited(retry_after_s)`` is called for every 429. A 429 that arrives while a cut's pause
is on (or within ``cut_cooldown_s`` of the cut) belongs to that burst: it only extends the pause.
Any other 429 is first judged (next section): a *background* refusal changes nothing for anyone
else (the refused request waits its own ``Retry-After``: ``retry.call_with_retry`` sleeps it), a
*limit* refusal:
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

Limit or background: judging a 429
----------------------------------
Some servers also refuse a share of requests whatever the rate (the simulator's ``flaky``
profile: 5 %). Cutting on each of those would collapse the rate, and pausing everyone on each
would halve it. A rate limit refuses more the faster we go; background refusals do not depend on
the rate. So the limiter files every answer heard outside a cut's pause under its *level*,
``floor(effective rate)`` (the admissions per 1 s + guard), and keeps two tallies:

  * per level, over the whole run: answers and 429s. The *background share below* level L is the
    pooled 429 share of all levels < L, pulled towards a prior (``background_prior_share``,
    weighted as ``background_prior_answers`` answers), so that a level with nothing below it is
    judged against "a few per cent might be background" rather than against nothing;
  * the current *stay*: answers and 429s since the rate last entered its level.

A 429 is judged a limit when the stay's 429 count is improbable under the background share below:
the binomial tail P(X >= 429s | answers, share) is under ``limit_evidence_p``. Until
``min_answers_to_judge`` answers have been heard in all, every 429 is taken for the limit (as
without this section). Against a clean fixed-window server the levels below the limit hear no
429s at all, so the share below soon tends to zero and the first or second 429 of a probe cuts.
Against background refusals the share below settles near the background, and a stay at any
level under the limit shows nothing improbable. A stay whose tail is under ``HOLD_CLIMB_P``
(suspicious but not yet convincing) does not climb further while it gathers evidence.

A stay (not the whole history of a level) is judged, because every cut ends a stay on a 429: judged
on all-time tallies, a level cut from once by bad luck would look worse each time it is visited.
The all-time tallies serve the *ceiling*: when a 429 is judged background and the levels below
hold at least ``ANSWERS_TO_RAISE_CEILING`` answers, ``safe_rps`` is raised (never lowered) to one
step below the lowest level whose all-time 429 share significantly exceeds that of the levels
below it (``max_rps`` if none does), undoing cuts made before the background was known.

Limits of the method: level R+1 of a fixed-window limit R refuses about 1/(R+1) of requests, the
same share as a background of that size, so only the comparison with lower levels tells them
apart; at a level with nothing below it, a background above the prior share is taken for a limit
(the rate is cut once, and the levels visited below then provide the comparison).

Saturation
----------
``saturation`` is a moving average (over about ``1 / SATURATION_WEIGHT`` admissions) of how often a
request had to wait for its turn: near 1 when the rate is what binds the run, near 0 when requests
are plentiful. Polling reads it to decide whether saving a request is worth a later answer.
``utilization`` is the share of the rate in use (admissions per second, averaged over about
``UTILIZATION_WINDOW_S``): polling reads a render at its earliest possible end only while it is
low, since at a high rate a few requests asking in the same millisecond already "wait".

Concurrency caps
----------------
Rows, renders and downloads in flight are capped with ``anyio.Semaphore`` directly (``async with
slots:``, made by ``run.slots``); it is FIFO-fair and cancellation-safe, so no wrapper lives here.

Render slots
------------
A render holds a slot from its request until a read finds it finished (``stages.render``), so
the account never runs more than ``[limits] max_renders_in_flight`` (its cap, C) of ours. A slot
the account frees is noticed by reading the render when its progress says it ends
(``stages.poll``), or by its webhook. One render more (``render_slots_total``: C + 1) is sent
only when ``[limits] renders_queued_ahead`` is 1, which only a calibration profile that measured
the account queuing renders past its cap sets (or ``--simulate`` against a simulator that
queues): it then waits at Pictory and starts the moment a slot frees, before our read. Never more
than one: a queued render reports no progress (its end cannot be projected), and on an account
that refuses renders past its cap (``renders_over_cap`` in the simulator: 429 or 409) a render
sent ahead would be refused, so without a profile none is.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from typing import Protocol

import anyio

from orchestrator.clock import Clock

SECOND_S = 1.0
MINUTE_S = 60.0
TIME_EPSILON_S = 1e-9
"""Slack when comparing clock readings, so float rounding never causes a zero-length re-sleep."""
SATURATION_WEIGHT = 0.05
"""Weight of each admission in ``RateLimiter.saturation`` (a moving average over ~20)."""
UTILIZATION_WINDOW_S = 5.0
"""The time constant of ``RateLimiter.utilization``'s moving average of admissions."""
HOLD_CLIMB_P = 0.1
"""Below this p-value a stay's 429s are suspicious: the rate stops climbing (but is not cut)."""
MIN_GUARD_S = 0.001
"""The guard before the first 429: float rounding and clock granularity only (0.1 %)."""
GUARD_STEPS_S = (0.01, 0.03)
SHARED_FIRST_GUARD_S = GUARD_STEPS_S[0]
"""The guard an account shared by several workers starts at (``SharedRate``; 99 % of the
ceiling). Their turns pass through a database round trip and several processes' event loops,
more jitter than one process has: measured (docs/performance.md), every such run that started
at ``MIN_GUARD_S`` met one 429 there and none after this step."""
"""The guards a 429 widens to in turn, before ``window_guard_s`` (99 %, 97 % of the ceiling)."""
ANSWERS_TO_RAISE_CEILING = 100
"""Answers the levels below must hold before a background verdict may raise ``safe_rps``."""


class SharedRate(Protocol):
    """An account's request turns, shared with the other processes using the account (several
    workers on one batch: ``pg_limits.PgSharedRate``). The limiter takes one after its own.

    The turns are spaced by the account's limits under the account's window guard, learned like
    the limiter's own: it starts at ``SHARED_FIRST_GUARD_S`` and each 429 widens it a step
    (``widen``, for every process from its next turn on)."""

    @property
    def guard_s(self) -> float:
        """The account's guard when this process last took a turn."""
        ...

    def widen(self, guard_s: float) -> None:
        """Have the account's guard at least ``guard_s`` (from this process's next turn on)."""
        ...

    async def take(self) -> float:
        """Wait for the account's next turn; returns when it is (seconds since the epoch)."""
        ...


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
        self._prior_refused = background_prior_share * background_prior_answers
        self._prior_answers = background_prior_answers
        self._evidence_p = limit_evidence_p
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
        self._turns = _TurnQueue()  # who takes the next turn (earliest useful first)
        self._orders = itertools.count()  # ties in usefulness go first come, first served
        self._first_lock = anyio.Lock(fast_acquire=True)  # the ``acquire(first=True)`` queue
        self._first_waiting = 0
        self._answers_at: dict[int, int] = {}  # level -> answers heard there (429s included)
        self._refused_at: dict[int, int] = {}  # level -> 429s among them
        self._answers_heard = 0
        self._stay_level = -1  # the level of the current stay, and what it has heard so far
        self._stay_answers = 0
        self._stay_refused = 0

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
        place = _Place(asked_s, useful_from, next(self._orders))
        await self._turns.wait(place)
        try:
            await self._take_turn(asked_s, place)
        finally:
            if place.heads:  # not if cancelled after stepping back, while waiting again
                self._turns.pass_on(place)

    async def _take_turn(self, asked_s: float, place: _Place | None) -> None:
        """Sleep until the next turn is due, then book it. ``place``: this request's place in
        the turn queue, which it holds the head of (``None``: the ``first`` queue)."""
        slept = False
        while True:
            now_s = self._clock.now()
            ready_at_s = self._paused_until_s
            if self._last_admitted_s is not None:
                ready_at_s = max(ready_at_s, self._last_admitted_s + self.interval_s)
            if now_s + TIME_EPSILON_S >= ready_at_s:
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
        # Woke up late for a scheduled turn: book the turn at its time (module docstring).
        on_schedule = slept and 0.0 < now_s - ready_at_s < self.interval_s
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
        self._count_answer(level, refused=True)
        judged = self._answers_heard >= self._min_answers_to_judge  # else: the limit, as ever
        if judged and self._stay_p_value(level) >= self._evidence_p:
            self.background_total += 1
            # Background is real: a ceiling lowered before we knew it may have been too cautious.
            if self._heard_below(level)[0] >= ANSWERS_TO_RAISE_CEILING:
                self._safe_rps = max(self._safe_rps, self._evidence_ceiling_rps())
            return  # no pause, no cut: only the refused request waits (its own Retry-After)
        # A full window of silence, so no 1 s window mixes the old spacing with the new rate.
        self._paused_until_s = max(self._paused_until_s, now_s + max(pause_s + jitter_s, SECOND_S))
        clean_before = self._stay_answers - self._stay_refused >= 2 * level  # 2 windows' worth
        if guard_was_off and clean_before:  # the guard alone may be what was missing: no cut
            self._no_cut_until_s = max(self._paused_until_s, now_s + self._cut_cooldown_s)
            return
        base_rps = self._effective_rps()
        self._rate_rps = max(self._min_rps, base_rps * self._decrease_factor)
        self._safe_rps = max(self._min_rps, _one_step_below(base_rps, self._decrease_factor))
        self._successes = 0
        self._probe_at_s = None
        self._no_cut_until_s = max(self._paused_until_s, now_s + self._cut_cooldown_s)
        self.cuts_total += 1

    def on_success(self) -> None:
        """A request was answered (not 429): after enough of them, raise the rate a step."""
        if self._clock.now() >= self._paused_until_s:  # answers inside a cut's pause: its burst
            self._count_answer(self._level(), refused=False)
        self._successes += 1
        if self._rate_rps < self._safe_rps:
            suspicious = self._stay_p_value(self._level()) < HOLD_CLIMB_P
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

    def _count_answer(self, level: int, *, refused: bool) -> None:
        self._answers_heard += 1
        self._answers_at[level] = self._answers_at.get(level, 0) + 1
        if refused:
            self._refused_at[level] = self._refused_at.get(level, 0) + 1
        if level != self._stay_level:  # a new stay starts with a clean slate
            self._stay_level, self._stay_answers, self._stay_refused = level, 0, 0
        self._stay_answers += 1
        self._stay_refused += refused

    def _heard_below(self, level: int) -> tuple[int, float]:
        """Answers heard at all levels below ``level``, and their 429 share pulled to the prior."""
        answers, refused = 0, 0
        for lower, heard in self._answers_at.items():
            if lower < level:
                answers += heard
                refused += self._refused_at.get(lower, 0)
        share = (refused + self._prior_refused) / (answers + self._prior_answers)
        return answers, share

    def _stay_p_value(self, level: int) -> float:
        """How likely this stay's 429 count at ``level`` is if only the background were refusing."""
        if level != self._stay_level or self._stay_refused == 0:
            return 1.0
        _, share = self._heard_below(level)
        return _binomial_tail(self._stay_refused, self._stay_answers, share)

    def _evidence_ceiling_rps(self) -> float:
        """One step below the lowest level whose 429s (all stays) exceed those below it."""
        below_answers, below_refused = self._prior_answers, self._prior_refused
        for level in sorted(self._answers_at):
            answers, refused = self._answers_at[level], self._refused_at.get(level, 0)
            if _binomial_tail(refused, answers, below_refused / below_answers) < self._evidence_p:
                return max(self._min_rps, _one_step_below(level, self._decrease_factor))
            below_answers += answers
            below_refused += refused
        return self._max_rps

    def _effective_rps(self) -> float:
        """The rate actually in force: the per-minute limit may be the tighter one."""
        if self._max_per_minute is None:
            return self._rate_rps
        return min(self._rate_rps, self._max_per_minute / MINUTE_S)


def next_guard_s(guard_s: float, full_guard_s: float) -> float:
    """The window guard one step wider than ``guard_s`` (``GUARD_STEPS_S``, then the full
    ``full_guard_s``), never past the full one."""
    wider = [g for g in GUARD_STEPS_S if g > guard_s] + [full_guard_s]
    return max(guard_s, min(full_guard_s, wider[0]))


def render_slots_total(max_renders: int, queued_ahead: int = 0) -> int:
    """Renders of ours at Pictory at once: the account's cap (``max_renders_in_flight``), plus
    ``queued_ahead`` (0 or 1, ``[limits] renders_queued_ahead``) waiting there for a slot."""
    return max_renders + min(1, max(0, queued_ahead))


def spacing_s(limit: float, window_s: float, guard_s: float) -> float:
    """Spacing that keeps any ``window_s`` interval at <= floor(limit) requests (one if < 1)."""
    count = math.floor(limit)
    return (window_s + guard_s) / (count if count >= 1 else limit)


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p); 1 when k is at most the mean (no evidence of excess)."""
    if k <= n * p:
        return 1.0  # the true tail is about 1/2 or more: far above any sensible threshold
    if p <= 0.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):  # k > n * p, so k is past the mode and the terms only shrink
        log_pmf = (
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * log_p + (n - i) * log_q
        )  # fmt: skip
        term = math.exp(log_pmf)
        total += term
        if term < 1e-12 * total:
            break
    return min(1.0, total)


def _one_step_below(refused_rps: float, decrease_factor: float) -> float:
    """A rate whose per-second count is one below the count that was just refused."""
    if refused_rps >= 2:
        return math.floor(refused_rps) - 0.5
    return min(refused_rps, 1.0) * decrease_factor  # even one per second was too many


def _require(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ValueError(f"RateLimiter: {name}={value!r} {rule}")


class _Place:
    """A request's place in the turn queue: ordered by ``key`` (when it is useful: when it
    asked, or later if ``useful_from`` says so), then ``order`` (when it asked)."""

    __slots__ = ("asked_s", "called", "gone", "heads", "key", "order", "useful_from")

    def __init__(self, asked_s: float, useful_from: Callable[[], float] | None, order: int) -> None:
        self.asked_s = asked_s
        self.useful_from = useful_from
        self.order = order
        self.key = asked_s if useful_from is None else max(asked_s, useful_from())
        self.called: anyio.Event | None = None  # made when it has to wait
        self.gone = False  # cancelled while waiting: skipped when it comes up
        self.heads = False  # holds the head of the queue

    def rekeyed(self) -> _Place:
        """This place, its key brought up to date with ``useful_from`` (when not in a heap)."""
        if self.useful_from is not None:
            self.key = max(self.asked_s, self.useful_from())
        return self

    def __lt__(self, other: _Place) -> bool:
        return (self.key, self.order) < (other.key, other.order)


class _TurnQueue:
    """Who takes the next turn: one head at a time sleeps until the turn is due and takes it;
    the others wait in a heap ordered by when each is useful (``_Place``). A free queue is
    taken without a trip through the event loop (the request sends at once anyway)."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: list[_Place] = []

    async def wait(self, place: _Place) -> None:
        """Return when ``place`` holds the head (``place.heads``); if cancelled, it does not."""
        if not self._held:
            self._held = place.heads = True
            return
        event = place.called = anyio.Event()
        heapq.heappush(self._waiting, place)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # handed the head just as it was cancelled: hand it on
                place.heads = True
                self.pass_on(place)
            else:
                place.gone = True
            raise
        place.heads = True

    def more_useful_waiting(self, place: _Place) -> bool:
        """Whether a waiter is useful before ``place`` (the head's, its key brought up to date)."""
        if not self._waiting:
            return False
        self._drop_gone()
        return bool(self._waiting) and self._waiting[0] < place.rekeyed()

    async def step_back(self, place: _Place) -> None:
        """The head gives its turn to the most useful waiter and waits in its own place."""
        self.pass_on(place)
        await self.wait(place)

    def pass_on(self, place: _Place) -> None:
        """``place``, the head, is done: the most useful waiter becomes the head (or the queue
        is free)."""
        place.heads = False
        self._drop_gone()
        if self._waiting:
            place = heapq.heappop(self._waiting)
            assert place.called is not None
            place.called.set()  # still held: it passes to that waiter
        else:
            self._held = False

    def _drop_gone(self) -> None:
        while self._waiting and self._waiting[0].gone:
            heapq.heappop(self._waiting)
