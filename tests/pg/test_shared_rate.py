"""One account's request rate shared by several workers through the database: whatever the
number of workers, the account's turns are spaced so no second holds more than R."""

from __future__ import annotations

import itertools

import anyio
import asyncpg

from orchestrator.api.limits import SECOND_S, RateLimiter, spacing_s
from orchestrator.api.window_guard import MIN_GUARD_S
from orchestrator.clock import VirtualClock
from orchestrator.config import Credentials, account_key
from orchestrator.ledger.pg.limits import PgSharedRate, PgSharedRenders

R = 20.0


async def test_three_workers_never_exceed_the_accounts_rate(pool: asyncpg.Pool) -> None:
    """Turns taken at once by three workers on one account: in no 1-second window more than
    floor(R), and consecutive turns at least the limiter's spacing apart."""
    clock = VirtualClock()  # the turns are the database's schedule; nobody needs to wait here
    workers = [PgSharedRate(pool, "acct", clock, max_rps=R) for _ in range(3)]
    for shared in workers:
        shared.widen(MIN_GUARD_S)
    turns: list[float] = []

    async def work(shared: PgSharedRate) -> None:
        for _ in range(40):
            turns.append(await shared.take())

    async with anyio.create_task_group() as tg:
        for shared in workers:
            tg.start_soon(work, shared)
    turns.sort()
    gaps = [b - a for a, b in itertools.pairwise(turns)]
    assert min(gaps) >= spacing_s(R, SECOND_S, MIN_GUARD_S) - 1e-6
    busiest = max(sum(1 for t in turns if start <= t < start + 1.0) for start in turns)
    assert busiest <= int(R)


async def test_other_accounts_take_their_own_turns(pool: asyncpg.Pool) -> None:
    """Workers with their own credentials work at their own limits: another account's turns
    do not queue behind this one's."""
    clock = VirtualClock()
    a, b = (
        PgSharedRate(pool, "a", clock, max_rps=R),
        PgSharedRate(pool, "b", clock, max_rps=R),
    )
    first_a, first_b = await a.take(), await b.take()
    second_a = await a.take()
    assert second_a - first_a >= a.spacing_s(0.0) - 1e-6
    assert abs(first_b - first_a) < a.spacing_s(0.0)  # b did not wait for a's schedule


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
            self.guard_s = 0.0

        def widen(self, guard_s: float) -> None:
            self.guard_s = max(self.guard_s, guard_s)

        async def take(self) -> float:
            self.taken += 1
            return 0.0

    shared = Counting()
    limiter = RateLimiter(VirtualClock(), max_rps=R, shared=shared)
    for _ in range(5):
        await limiter.acquire()
    await limiter.acquire(first=True)
    assert shared.taken == limiter.admitted_total == 6


async def test_an_accounts_render_slots_are_shared_by_its_workers(pool: asyncpg.Pool) -> None:
    """Two workers on one account with a cap of 2: once one holds both slots the other finds
    none, and gets one as soon as a slot is given back."""
    clock = VirtualClock()
    a = PgSharedRenders(pool, "acct", "a", clock, max_renders=2, lease_s=30.0)
    b = PgSharedRenders(pool, "acct", "b", clock, max_renders=2, lease_s=30.0)
    assert {await a.take(), await a.take()} == {0, 1}
    assert await b.take() is None
    await a.give_back()
    assert await b.take() in (0, 1)
    assert await a.take() is None
    other = PgSharedRenders(pool, "other", "c", clock, max_renders=2, lease_s=30.0)
    assert await other.take() == 0  # another account: its own slots


async def test_a_dead_workers_render_slot_comes_free_when_its_lease_expires(
    pool: asyncpg.Pool,
) -> None:
    """A slot whose holder stopped renewing it is free again after the lease."""
    clock = VirtualClock()
    dead = PgSharedRenders(pool, "acct", "dead", clock, max_renders=1, lease_s=0.2)
    alive = PgSharedRenders(pool, "acct", "alive", clock, max_renders=1, lease_s=30.0)
    assert await dead.take() == 0
    assert await alive.take() is None
    await anyio.sleep(0.3)  # the database's clock decides leases: a real (short) wait
    assert await alive.take() == 0
