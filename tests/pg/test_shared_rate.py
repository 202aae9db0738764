"""One account's request rate shared by several workers through the database: whatever the
number of workers, the account's turns are spaced so no second holds more than R."""

from __future__ import annotations

import itertools

import anyio
import asyncpg

from orchestrator.clock import VirtualClock
from orchestrator.config import Credentials
from orchestrator.limits import RateLimiter
from orchestrator.pg_limits import PgSharedRate, account_key

R = 20.0


async def test_three_workers_never_exceed_the_accounts_rate(pool: asyncpg.Pool) -> None:
    """Turns taken at once by three workers on one account: in no 1-second window more than
    floor(R), and consecutive turns at least the limiter's spacing apart."""
    clock = VirtualClock()  # the turns are the database's schedule; nobody needs to wait here
    workers = [PgSharedRate(pool, "acct", clock, max_rps=R) for _ in range(3)]
    turns: list[float] = []

    async def work(shared: PgSharedRate) -> None:
        for _ in range(40):
            turns.append(await shared.take())

    async with anyio.create_task_group() as tg:
        for shared in workers:
            tg.start_soon(work, shared)
    turns.sort()
    gaps = [b - a for a, b in itertools.pairwise(turns)]
    assert min(gaps) >= workers[0].interval_s - 1e-6
    busiest = max(sum(1 for t in turns if start <= t < start + 1.0) for start in turns)
    assert busiest <= int(R)


async def test_other_accounts_take_their_own_turns(pool: asyncpg.Pool) -> None:
    """Workers with their own credentials work at their own limits: another account's turns
    do not queue behind this one's."""
    clock = VirtualClock()
    a, b = PgSharedRate(pool, "a", clock, max_rps=R), PgSharedRate(pool, "b", clock, max_rps=R)
    first_a, first_b = await a.take(), await b.take()
    second_a = await a.take()
    assert second_a - first_a >= a.interval_s - 1e-6
    assert abs(first_b - first_a) < a.interval_s  # b did not wait for a's schedule


def test_the_account_key_holds_no_secret() -> None:
    """The stored account name is a digest: neither the key nor the client secret is in it."""
    key = account_key("https://api", Credentials.model_validate({"api_key": "pictai_secret"}))
    assert "secret" not in key and len(key) == 24
    other = account_key("https://api", Credentials.model_validate({"api_key": "pictai_other"}))
    assert key != other


async def test_the_limiter_takes_a_shared_turn_for_every_request() -> None:
    """``RateLimiter(shared=...)``: each admission also waits for the account's turn."""

    class Counting:
        def __init__(self) -> None:
            self.taken = 0

        async def take(self) -> float:
            self.taken += 1
            return 0.0

    shared = Counting()
    limiter = RateLimiter(VirtualClock(), max_rps=R, shared=shared)
    for _ in range(5):
        await limiter.acquire()
    await limiter.acquire(first=True)
    assert shared.taken == limiter.admitted_total == 6
