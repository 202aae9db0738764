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
"""

from __future__ import annotations

import anyio
import asyncpg

from orchestrator.clock import Clock


class PgSharedRate:
    """``limits.SharedRate`` on the ``rates`` table."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        account: str,
        clock: Clock,
        *,
        interval_s: float,
    ) -> None:
        """``interval_s``: the account's spacing between turns (``api.limits.shared_interval_s``,
        the local limiter's spacing with a guard for the database round trip)."""
        self._pool = pool
        self.account = account
        self._clock = clock
        self.interval_s = interval_s
        self.turns = 0

    async def take(self) -> float:
        """Wait for this account's next turn; returns it (database time, seconds since the
        epoch)."""
        record = await self._pool.fetchrow(
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


class PgSharedRenders:
    """``stages.base.RenderSlots`` for workers sharing an account: at most ``max_renders``
    renders of the account in flight across all of them, plus this worker's own limit.

    A slot is a row of ``render_slots`` (``account``, ``slot`` 0..max-1) held by a worker id
    with a lease, renewed with the worker's row leases (``renew``); a dead worker's slots come
    free when their lease expires. Entering waits for the local limiter, then for a free slot
    (looking again every ``poll_s``); leaving frees one slot this worker holds (they are alike).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        account: str,
        worker_id: str,
        clock: Clock,
        *,
        max_renders: int,
        lease_s: float,
        poll_s: float = 0.25,
    ) -> None:
        self._pool = pool
        self.account = account
        self._worker_id = worker_id
        self._clock = clock
        self._max = max_renders
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._local = anyio.CapacityLimiter(max_renders)
        self._made = False

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
            with anyio.CancelScope(shield=True):
                await self.give_back()
        finally:
            self._local.release()

    async def take(self) -> int | None:
        """Hold a free slot of the account, if there is one; its number, else None."""
        if not self._made:
            await self._pool.execute(
                """
                INSERT INTO render_slots (account, slot)
                SELECT $1, generate_series(0, $2 - 1) ON CONFLICT DO NOTHING
                """,
                self.account,
                self._max,
            )
            self._made = True
        slot = await self._pool.fetchval(
            """
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
            """,
            self.account,
            self._worker_id,
            self._max,
            self._lease_s,
        )
        return None if slot is None else int(slot)

    async def give_back(self) -> None:
        """Free one slot this worker holds."""
        await self._pool.execute(
            """
            UPDATE render_slots SET owner = NULL, lease_until = NULL
            WHERE (account, slot) = (
                SELECT account, slot FROM render_slots
                WHERE account = $1 AND owner = $2 LIMIT 1 FOR UPDATE
            )
            """,
            self.account,
            self._worker_id,
        )

    async def renew(self) -> None:
        """Extend the lease of every slot this worker holds (its heartbeat)."""
        await self._pool.execute(
            """
            UPDATE render_slots SET lease_until = clock_timestamp() + make_interval(secs => $3)
            WHERE account = $1 AND owner = $2
            """,
            self.account,
            self._worker_id,
            self._lease_s,
        )
