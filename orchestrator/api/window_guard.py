"""The window guard (the slack added to each 1 s and 60 s window of ``RateLimiter``'s spacing,
against transit jitter): the steps it widens through, and the account's shared one
(``SharedRate``) that several workers' turns are spaced under.

The guard is learned, not paid up front (``guard_from_start=False``, the default): a run starts at
the full rate (guard ``MIN_GUARD_S``, 1 ms: floor(rate) per second, the most a fixed-window server
at that rate accepts). A 429, however it is judged (``api.rate_evidence``), widens the guard a step
(10 ms, 30 ms, then ``window_guard_s``, default 50 ms, i.e. 95 % of the ceiling) for the rest of the
run; if it is judged a limit after the rate held for two windows' worth of answers, it pauses
everyone as ``RateLimiter`` does but does not cut the rate, since the thin guard alone may explain
it (a 429 at once is cut for). Once the guard is full, limit 429s cut as usual. The trade: a pause
(about a second) and a few refused requests per step on an account where the jitter shows (our own
event loop's delays between admitting a request and sending it count too), against 5 % of every run
everywhere.
"""

from __future__ import annotations

from typing import Protocol

MIN_GUARD_S = 0.001
"""The guard before the first 429: float rounding and clock granularity only (0.1 %)."""
GUARD_STEPS_S = (0.01, 0.03)
"""The guards a 429 widens to in turn, before ``window_guard_s`` (99 %, 97 % of the ceiling)."""
SHARED_FIRST_GUARD_S = GUARD_STEPS_S[0]
"""The guard an account shared by several workers starts at (``SharedRate``; 99 % of the
ceiling). Their turns pass through a database round trip and several processes' event loops,
more jitter than one process has: measured (docs/performance.md), every such run that started
at ``MIN_GUARD_S`` met one 429 there and none after this step."""


def next_guard_s(guard_s: float, full_guard_s: float) -> float:
    """The window guard one step wider than ``guard_s`` (``GUARD_STEPS_S``, then the full
    ``full_guard_s``), never past the full one."""
    wider = [g for g in GUARD_STEPS_S if g > guard_s] + [full_guard_s]
    return max(guard_s, min(full_guard_s, wider[0]))


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
