"""One account's request rate shared by every worker using it, held in the database.

Each worker's ``limits.RateLimiter`` spaces its own requests; when several workers use one
account, it also asks ``PgSharedRate.take`` for a turn before each request. The ``rates`` table
holds, per account, when the account's next request may be sent (``next_at``, by the database's
clock). Taking a turn is one atomic statement: the turn is ``max(next_at, now)``, and ``next_at``
moves one spacing past it. The spacing is the local limiter's, ``(1 s + guard) / floor(R)``, so
whatever the number of workers, no 1-second window of the account holds more than ``floor(R)``
requests (the same guarantee as one worker alone, see ``limits``). A worker that dies between
taking a turn and sending wastes that turn: the account runs under R, never over it.

Each worker holds at most one turn at a time (it takes turns one request after another, inside
its limiter's queue), so turns are never reserved far ahead.

The account is named by a digest of the API's base URL and the credentials' public part (the
user or client id, or a digest of the API key): no secret is stored.

While the database is away, turns and slots wait for it (``pool.Db``): the account's rate and
renders in flight cannot be shared without it, so no request that takes a turn is sent meanwhile.
"""

from __future__ import annotations

import itertools

import anyio
import asyncpg

from orchestrator.clock import Clock
from orchestrator.ledger.pg.pool import Db
from orchestrator.ledger.pg.schema import Conn


def _db(pool: asyncpg.Pool | Db, clock: Clock) -> Db:
    return pool if isinstance(pool, Db) else Db(pool, clock)


class PgSharedRate:
    """``limits.SharedRate`` on the ``rates`` table."""

    def __init__(
        self,
        pool: asyncpg.Pool | Db,
        account: str,
        clock: Clock,
        *,
        interval_s: float,
    ) -> None:
        """``interval_s``: the account's spacing between turns (``api.limits.shared_interval_s``,
        the local limiter's spacing with a guard for the database round trip)."""
        self._db = _db(pool, clock)
        self.account = account
        self._clock = clock
        self.interval_s = interval_s
        self.turns = 0

    async def take(self) -> float:
        """Wait for this account's next turn; returns it (database time, seconds since the
        epoch). A try whose answer was lost wasted a turn: the account runs under its rate."""
        record = await self._db.fetchrow(
            """
            INSERT INTO rates AS r (account, next_at)
            VALUES ($1, clock_timestamp() + make_interval(secs => $2))
            ON CONFLICT (account) DO UPDATE
                SET next_at = GREATEST(r.next_at, clock_timestamp()) + make_interval(secs => $2)
            RETURNING extract(epoch FROM r.next_at)::float8 - $2 AS turn,
                      extract(epoch FROM clock_timestamp())::float8 AS now
            """,
            self.account,
            self.interval_s,
        )
        assert record is not None  # INSERT ... RETURNING always returns the row
        turn, now = float(record["turn"]), float(record["now"])
        self.turns += 1
        if turn > now:
            await self._clock.sleep(turn - now)
        return turn


_TAKE_SLOT = """
    WITH free AS MATERIALIZED (
        SELECT slot FROM render_slots
        WHERE account = $1 AND slot < $3
          AND (owner IS NULL OR lease_until < clock_timestamp())
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE render_slots s SET owner = $2,
        lease_until = clock_timestamp() + make_interval(secs => $4)
    FROM free WHERE s.account = $1 AND s.slot = free.slot
    RETURNING s.slot
"""
"""Hold a free slot of the account ($1) for the token $2: slots 0..$3-1, lease $4 s."""


class PgSharedRenders:
    """``stages.base.RenderSlots`` for workers sharing an account: at most ``max_renders``
    renders of the account in flight across all of them, plus this worker's own limit.

    A slot is a row of ``render_slots`` (``account``, ``slot`` 0..max-1) held with a lease,
    renewed with the worker's row leases (``renew``); a dead worker's slots come free when their
    lease expires. Its ``owner`` is the token of one take, ``WORKER#N``: a take whose answer was
    lost is found again by its token, and a slot whose lease ran out and went to another is
    never freed by mistake. Entering waits for the local limiter, then for a free slot (looking
    again every ``poll_s``); leaving frees one slot this worker holds (they are alike).
    """

    def __init__(
        self,
        pool: asyncpg.Pool | Db,
        account: str,
        worker_id: str,
        clock: Clock,
        *,
        max_renders: int,
        lease_s: float,
        poll_s: float = 0.25,
    ) -> None:
        self._db = _db(pool, clock)
        self.account = account
        self._worker_id = worker_id
        self._clock = clock
        self._max = max_renders
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._local = anyio.CapacityLimiter(max_renders)
        self._made = False
        self._takes = itertools.count(1)
        self._held: list[str] = []
        """The tokens of the slots this worker holds."""

    async def __aenter__(self) -> None:
        await self._local.acquire()
        try:
            while await self.take() is None:
                await self._clock.sleep(self._poll_s)
        except BaseException:
            self._local.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        try:
            # Given back even when cancelled; not waited for longer than the slot's lease, which
            # ends it anyway once no heartbeat renews it.
            with anyio.move_on_after(self._lease_s, shield=True):
                await self.give_back()
        finally:
            self._local.release()

    async def take(self) -> int | None:
        """Hold a free slot of the account, if there is one; its number, else None."""
        if not self._made:
            await self._db.execute(
                """
                INSERT INTO render_slots (account, slot)
                SELECT $1, generate_series(0, $2 - 1) ON CONFLICT DO NOTHING
                """,
                self.account,
                self._max,
            )
            self._made = True
        token = f"{self._worker_id}#{next(self._takes)}"

        async def attempt(conn: Conn, retrying: bool) -> int | None:
            if retrying:  # the lost try may have taken a slot: it holds our token
                found = await conn.fetchval(
                    "SELECT slot FROM render_slots WHERE account = $1 AND owner = $2",
                    self.account,
                    token,
                )
                if found is not None:
                    return int(found)
            slot = await conn.fetchval(_TAKE_SLOT, self.account, token, self._max, self._lease_s)
            return None if slot is None else int(slot)

        slot = await self._db.run(attempt)
        if slot is not None:
            self._held.append(token)
        return slot

    async def give_back(self) -> None:
        """Free one slot this worker holds (if it still does: a slot whose lease ran out may be
        another's by now)."""
        if not self._held:
            return
        token = self._held.pop()
        await self._db.execute(
            "UPDATE render_slots SET owner = NULL, lease_until = NULL "
            "WHERE account = $1 AND owner = $2",
            self.account,
            token,
        )

    async def renew(self) -> None:
        """Extend the lease of every slot this worker holds (its heartbeat)."""
        await self._db.execute(
            """
            UPDATE render_slots SET lease_until = clock_timestamp() + make_interval(secs => $3)
            WHERE account = $1 AND owner = ANY($2::text[])
            """,
            self.account,
            list(self._held),
            self._lease_s,
        )
