"""How fast we call the API: an adaptive request-rate limiter safe against fixed-window servers.

``RateLimiter`` admits API requests one at a time, FIFO. Every API call (not video downloads,
which come from a CDN) awaits ``acquire()`` right before it is sent.

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
(rate), any N + 1 admissions then span N * interval = 1 s + guard > 1 s, so no window can hold them
all. The guard (default 50 ms, i.e. running at 95 % of the ceiling) absorbs transit jitter: the
server counts arrivals, and two requests whose network delays differ by less than the guard still
land in different windows. Idle time is not banked, so a quiet period never turns into a burst.

Adapting (AIMD with a memory)
-----------------------------
``on_rate_limited(retry_after_s)`` (called for every 429):
  * pauses all admissions until ``retry_after_s`` (or ``default_pause_s``) plus a small positive
    jitter has passed (at least 1 s when it cuts, so no window mixes old and new spacing); a later
    429 can only extend the pause;
  * cuts the rate once: ``rate = max(min_rps, effective_rate * decrease_factor)``. 429s that arrive
    while the pause is on, or within ``cut_cooldown_s`` of the last cut, are the same burst (the
    requests were already in flight) and do not cut again;
  * remembers a recovery ceiling ``safe_rps``: one request per window below the count that was
    refused (``floor(rate) - 0.5``; under 2 req/s, ``min(rate, 1) * decrease_factor``).

``on_success()`` (called for every answer that was not a 429): every ``successes_to_increase``
successes raise the rate by ``increase_step_rps``, up to ``safe_rps``. Once there it probes: after
``probe_after_s`` without a 429 it raises ``safe_rps`` (and the rate) by one step, up to
``max_rps``, so a one-off 429 (or a server that raised its limit) does not cost throughput forever.
Probing by time rather than by count keeps its cost (one pause, a few 429s, a short recovery) the
same fraction of the run at any rate. Against a server limiting at exactly R req/s, with ``max_rps``
above R, this settles at floor(R) per (1 s + guard), i.e. about 95 % of R between probes and over
90 % overall, with well under 1 % of requests answered 429. With ``max_rps`` at or below R (and
transit jitter within the guard) there are no 429s at all.

Saturation
----------
``saturation`` is a moving average (over about ``1 / SATURATION_WEIGHT`` admissions) of how often a
request had to wait for its turn: near 1 when the rate is what binds the run, near 0 when requests
are plentiful. Polling reads it to decide whether saving a request is worth a later answer.

Concurrency caps
----------------
Renders in flight and downloads in flight are capped with ``anyio.CapacityLimiter`` directly
(``async with slots:``); it is FIFO-fair and cancellation-safe, so no wrapper lives here.
"""

from __future__ import annotations

import math
import random

import anyio

from orchestrator.clock import Clock

SECOND_S = 1.0
MINUTE_S = 60.0
TIME_EPSILON_S = 1e-9
SATURATION_WEIGHT = 0.05
"""Weight of each admission in ``RateLimiter.saturation`` (a moving average over ~20)."""
"""Slack when comparing clock readings, so float rounding never causes a zero-length re-sleep."""


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
        cut_cooldown_s: float = 1.0,
        default_pause_s: float = 1.0,
        pause_jitter_s: float = 0.1,
        rng: random.Random | None = None,
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
        self._clock = clock
        self._max_rps = float(max_rps)
        self._max_per_minute = None if max_per_minute is None else float(max_per_minute)
        self._min_rps = float(min_rps)
        self._step_rps = float(increase_step_rps)
        self._successes_to_increase = successes_to_increase
        self._probe_after_s = probe_after_s
        self._decrease_factor = decrease_factor
        self._guard_s = window_guard_s
        self._cut_cooldown_s = cut_cooldown_s
        self._default_pause_s = default_pause_s
        self._pause_jitter_s = pause_jitter_s
        self._rng = rng if rng is not None else random.Random()

        self._rate_rps = self._max_rps
        self._safe_rps = self._max_rps
        self._successes = 0
        self._probe_at_s: float | None = None
        self._last_admitted_s: float | None = None
        self._paused_until_s = -math.inf
        self._no_cut_until_s = -math.inf
        self._lock = anyio.Lock()  # FIFO: anyio's Lock hands over to the longest waiter

        self.admitted_total = 0
        """Requests admitted by ``acquire``."""
        self.rate_limited_total = 0
        """429s reported through ``on_rate_limited``."""
        self.cuts_total = 0
        """How many of those 429s cut the rate (the rest belonged to a burst already cut for)."""
        self.saturation = 0.0
        """Moving average of "this request had to wait its turn" (0–1); see the module docstring."""

    # ---- reading ------------------------------------------------------------------------------

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
        """The minimum spacing between two admissions at the current rate."""
        interval = _spacing_s(self._rate_rps, SECOND_S, self._guard_s)
        if self._max_per_minute is not None:
            interval = max(interval, _spacing_s(self._max_per_minute, MINUTE_S, self._guard_s))
        return interval

    @property
    def paused_until_s(self) -> float:
        """Clock reading before which nothing is admitted (a past time when not paused)."""
        return self._paused_until_s

    # ---- admitting -----------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait for this request's turn (FIFO), then return: the caller sends at once.

        Cancelling a waiter (in the queue or asleep at its head) admits nothing and consumes no
        slot: the next waiter takes the turn at the same time.
        """
        asked_s = self._clock.now()
        async with self._lock:
            while True:
                now_s = self._clock.now()
                ready_at_s = self._paused_until_s
                if self._last_admitted_s is not None:
                    ready_at_s = max(ready_at_s, self._last_admitted_s + self.interval_s)
                if now_s + TIME_EPSILON_S >= ready_at_s:
                    break
                # Re-checked after waking: a 429 may have paused us, or a cut widened the spacing.
                await self._clock.sleep(ready_at_s - now_s)
            self._last_admitted_s = now_s
            self.admitted_total += 1
            waited = 1.0 if now_s - asked_s > TIME_EPSILON_S else 0.0
            self.saturation += SATURATION_WEIGHT * (waited - self.saturation)

    # ---- feedback --------------------------------------------------------------------------------

    def on_rate_limited(self, retry_after_s: float | None) -> None:
        """A request was answered 429: pause everyone, and cut the rate once per burst."""
        self.rate_limited_total += 1
        now_s = self._clock.now()
        pause_s = self._default_pause_s
        if retry_after_s is not None and math.isfinite(retry_after_s) and retry_after_s >= 0:
            pause_s = retry_after_s
        jitter_s = self._rng.uniform(0.0, self._pause_jitter_s) if self._pause_jitter_s else 0.0
        self._paused_until_s = max(self._paused_until_s, now_s + pause_s + jitter_s)
        if now_s < self._no_cut_until_s:
            return  # the same burst: requests already in flight when we cut
        base_rps = self._effective_rps()
        # A full window of silence, so no 1 s window mixes the old spacing with the new rate.
        self._paused_until_s = max(self._paused_until_s, now_s + SECOND_S)
        self._rate_rps = max(self._min_rps, base_rps * self._decrease_factor)
        self._safe_rps = max(self._min_rps, _one_step_below(base_rps, self._decrease_factor))
        self._successes = 0
        self._probe_at_s = None
        self._no_cut_until_s = max(self._paused_until_s, now_s + self._cut_cooldown_s)
        self.cuts_total += 1

    def on_success(self) -> None:
        """A request was answered (not 429): after enough of them, raise the rate a step."""
        self._successes += 1
        if self._rate_rps < self._safe_rps:
            if self._successes >= self._successes_to_increase:
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

    def _effective_rps(self) -> float:
        """The rate actually in force: the per-minute limit may be the tighter one."""
        if self._max_per_minute is None:
            return self._rate_rps
        return min(self._rate_rps, self._max_per_minute / MINUTE_S)


def _spacing_s(limit: float, window_s: float, guard_s: float) -> float:
    """Spacing that keeps any ``window_s`` interval at <= floor(limit) requests (one if < 1)."""
    count = math.floor(limit)
    return (window_s + guard_s) / (count if count >= 1 else limit)


def _one_step_below(refused_rps: float, decrease_factor: float) -> float:
    """A rate whose per-second count is one below the count that was just refused."""
    if refused_rps >= 2:
        return math.floor(refused_rps) - 0.5
    return min(refused_rps, 1.0) * decrease_factor  # even one per second was too many


def _require(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ValueError(f"RateLimiter: {name}={value!r} {rule}")
