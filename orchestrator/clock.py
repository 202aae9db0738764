"""Time as a seam: every reading of time and every wait goes through a ``Clock``, so tests run on
virtual time. ``now()`` is monotonic (limiters, retries, polling, durations); ``wall_s()`` is the
calendar (timestamps in logs, the overnight window; ``local_time`` reads it as a local datetime).

``RealClock`` is the system's clocks. ``VirtualClock`` is trio's ``MockClock`` with
``autojump_threshold=0``, for asyncio: a ``sleep`` never waits for real time; instead, whenever
every task in the event loop is blocked (on this clock, on a lock, an event, a stream...), time
jumps to the earliest pending deadline and the sleepers due then are woken, in deadline order
(ties in the order they went to sleep). No test calls ``advance()``: there is none.

How "every task is blocked" is known: a driver callback, scheduled on the loop while anyone
sleeps, looks at the loop's ready queue. When that queue holds nothing but drivers on two
consecutive loop iterations (the second one after the loop has polled for I/O that already
arrived), nothing can run until a sleeper wakes, so time may jump. This reads a private attribute
of asyncio's own event loops (``_ready``), so the virtual clock needs the default asyncio loop; it
raises at the first sleep otherwise.

Caveat (trio's ``autojump`` has the same one): a task waiting on real I/O or on a real-time sleep
counts as blocked, so virtual time can jump while bytes are in flight. Use ``RealClock`` (with a
time-compressed simulator) when sockets are involved.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.lowlevel

if TYPE_CHECKING:  # asyncio loads with the event loop, not with every command's start-up
    import asyncio

IDLE_ROUNDS_BEFORE_JUMP = 2
"""Consecutive idle loop iterations the driver waits for before it moves time forward."""


class Clock(Protocol):
    """What the timing code needs from time: a reading and a way to wait."""

    def now(self) -> float:
        """Monotonic seconds (arbitrary origin)."""
        ...

    def wall_s(self) -> float:
        """Calendar time: seconds since the Unix epoch. Not monotonic (the system may set it)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (zero or negative: just let other tasks run)."""
        ...


class RealClock:
    """The system's monotonic and calendar clocks, and anyio's sleep."""

    def now(self) -> float:
        return time.monotonic()

    def wall_s(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


def local_time(clock: Clock) -> dt.datetime:
    """``clock``'s calendar time as a naive local datetime (what ``datetime.now()`` answers)."""
    return dt.datetime.fromtimestamp(clock.wall_s())


@dataclass(order=True, slots=True)
class _Sleeper:
    deadline_s: float
    seq: int
    event: anyio.Event = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class VirtualClock:
    """A clock whose time moves only when every task is blocked, straight to the next deadline.

    ``now()`` starts at ``start_s`` and equals, at any moment, the deadline of the last sleeper
    woken: ``await clock.sleep(1.5)`` from 0 leaves ``now() == 1.5`` exactly. ``sleep(0)`` is a
    plain checkpoint and does not move time; ``sleep(inf)`` sleeps until cancelled. A cancelled
    sleeper leaves no trace.

    ``wall_s()`` starts at ``wall_start`` (a local datetime or epoch seconds; the real calendar
    time when the clock is made, by default) and moves with ``now()``.
    """

    def __init__(
        self, start_s: float = 0.0, *, wall_start: dt.datetime | float | None = None
    ) -> None:
        self._start_s = float(start_s)
        if wall_start is None:
            wall_start = time.time()
        elif isinstance(wall_start, dt.datetime):
            wall_start = wall_start.timestamp()
        self._wall_start_s = float(wall_start)
        self._now_s = float(start_s)
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._driver: asyncio.Handle | None = None
        self._idle_rounds = 0

    def now(self) -> float:
        return self._now_s

    def wall_s(self) -> float:
        return self._wall_start_s + (self._now_s - self._start_s)

    @property
    def pending_sleepers(self) -> int:
        """How many tasks are asleep on this clock right now."""
        return sum(1 for s in self._sleepers if not s.cancelled)

    async def sleep(self, seconds: float) -> None:
        if not seconds > 0:  # zero, negative and NaN alike
            await anyio.lowlevel.checkpoint()
            return
        if math.isinf(seconds):
            await anyio.sleep_forever()  # no deadline: time must not jump to infinity for it
            return
        sleeper = _Sleeper(self._now_s + seconds, next(self._seq), anyio.Event())
        heapq.heappush(self._sleepers, sleeper)
        self._ensure_driver()
        try:
            await sleeper.event.wait()
        finally:
            if not sleeper.event.is_set():
                sleeper.cancelled = True  # dropped lazily by the driver

    # ---- the driver: a plain loop callback, not a task -------------------------------------

    def _ensure_driver(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        if getattr(loop, "_ready", None) is None:
            raise RuntimeError(
                "VirtualClock needs asyncio's default event loop (it reads the loop's ready queue "
                "to tell when every task is blocked); use RealClock with this loop"
            )
        if self._driver is not None and self._loop is not loop:
            self._driver.cancel()  # a clock reused on a new loop: forget the old one's driver
            self._driver = None
        if self._driver is None:
            self._loop = loop
            self._idle_rounds = 0
            self._driver = loop.call_soon(self._drive)

    def _drive(self) -> None:
        self._driver = None
        self._drop_cancelled()
        if not self._sleepers or self._loop is None:
            return
        if self._loop_is_idle(self._loop):
            self._idle_rounds += 1
        else:
            self._idle_rounds = 0
        if self._idle_rounds >= IDLE_ROUNDS_BEFORE_JUMP:
            self._idle_rounds = 0
            self._wake_earliest()
        self._driver = self._loop.call_soon(self._drive)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0].cancelled:
            heapq.heappop(self._sleepers)

    def _wake_earliest(self) -> None:
        deadline_s = self._sleepers[0].deadline_s
        self._now_s = max(self._now_s, deadline_s)
        while self._sleepers and self._sleepers[0].deadline_s == deadline_s:
            sleeper = heapq.heappop(self._sleepers)
            if not sleeper.cancelled:
                sleeper.event.set()  # woken in (deadline, seq) order

    @staticmethod
    def _loop_is_idle(loop: asyncio.AbstractEventLoop) -> bool:
        # Another VirtualClock's driver on the same loop is not work: two clocks would otherwise
        # keep each other awake forever.
        ready: Iterable[object] = getattr(loop, "_ready", ())
        return all(_is_driver(handle) for handle in ready)


def _is_driver(handle: object) -> bool:
    callback = getattr(handle, "_callback", None)
    return getattr(callback, "__func__", None) is VirtualClock._drive
