"""Time as a seam: limiters, retries and polling take a ``Clock`` so tests run on virtual time."""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """The wall clock (monotonic) and anyio's sleep."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock whose sleeps return at once and advance ``now`` instead.

    Concurrent sleepers are woken in deadline order: each ``sleep`` yields to the event loop until it
    is the earliest pending deadline, then advances time to it. Good enough for limiter, retry and
    polling tests where tasks only ever block on this clock.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now = start_s
        self._pending: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + max(0.0, seconds)
        self._pending.append(deadline)
        try:
            # Let every other ready task run and register its own deadline first.
            while True:
                await anyio.lowlevel.checkpoint()
                await anyio.lowlevel.checkpoint()
                if deadline <= min(self._pending):
                    break
            self._now = max(self._now, deadline)
        finally:
            self._pending.remove(deadline)
        await anyio.lowlevel.checkpoint()
