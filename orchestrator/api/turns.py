"""Who takes the rate limiter's next turn (``RateLimiter.acquire``): the turn queue.

Turn order
----------
First come, first served, with one exception: a request may say when it is likely to be of use
(``acquire(useful_from=...)``; a first read of a job that is probably still running). It then
waits as if it had asked at that time, so turns go to requests that are useful now before it.
One head at a time sleeps until the next turn is due; when the turn comes it asks its
``useful_from`` again (estimates are learned while it waits) and steps back if a waiter is
useful sooner. A turn is never left unused: when only early requests wait, the earliest goes.
Unmarked requests keep their FIFO order among themselves. (Why: ``stages.poll``.)
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import anyio


class Place:
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

    def rekeyed(self) -> Place:
        """This place, its key brought up to date with ``useful_from`` (when not in a heap)."""
        if self.useful_from is not None:
            self.key = max(self.asked_s, self.useful_from())
        return self

    def __lt__(self, other: Place) -> bool:
        return (self.key, self.order) < (other.key, other.order)


class TurnQueue:
    """Who takes the next turn: one head at a time sleeps until the turn is due and takes it;
    the others wait in a heap ordered by when each is useful (``Place``). A free queue is
    taken without a trip through the event loop (the request sends at once anyway)."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: list[Place] = []

    async def wait(self, place: Place) -> None:
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

    def more_useful_waiting(self, place: Place) -> bool:
        """Whether a waiter is useful before ``place`` (the head's, its key brought up to date)."""
        if not self._waiting:
            return False
        self._drop_gone()
        return bool(self._waiting) and self._waiting[0] < place.rekeyed()

    async def step_back(self, place: Place) -> None:
        """The head gives its turn to the most useful waiter and waits in its own place."""
        self.pass_on(place)
        await self.wait(place)

    def pass_on(self, place: Place) -> None:
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
