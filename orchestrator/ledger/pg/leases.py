"""What one worker holds in the shared ledger, and keeping it (``Leases``, used by
``ledger.PgLedger``): the rows it has in flight with their claim's generation, renewing their
leases, handing rows back, finding a claim whose answer was lost, and checking a lease once more
before a render request leaves (``vouch``).

A claim counts up the row's ``claims``; that number is the claim's generation, and every write
for the row checks it with the owner (``stored.write_row_event``), so the writes of a claim that
was superseded (the lease ran out while the worker stood still, another worker claimed the row,
even if it came back to this worker since) are refused. This worker's own statements over all
its rows (renewing, handing back, finding lost claims) are serialised by one lock, taken before
any connection: two of them on two connections, locking the same rows in different orders,
deadlock in PostgreSQL.
"""

from __future__ import annotations

import asyncio

import asyncpg

from orchestrator.clock import Clock
from orchestrator.errors import LeaseLost
from orchestrator.ledger.pg.pool import Db

FENCE_MARGIN = 1 / 3
"""A render intent whose answer took longer than ``lease_s * (1 - FENCE_MARGIN)`` does not vouch
for the lease: it is checked again before the render request may leave."""


class Leases:
    """The rows ``worker_id`` holds in batch ``batch_id``, each under a lease of ``lease_s``."""

    def __init__(self, db: Db, batch_id: int, worker_id: str, lease_s: float) -> None:
        self._db = db
        self._batch_id = batch_id
        self._worker_id = worker_id
        self._lease_s = lease_s
        self._lock = asyncio.Lock()
        self.held: dict[str, int] = {}
        """The rows in flight, with their claim's generation."""
        self._releases: dict[str, tuple[str, int]] = {}
        """Rows to hand back, with the status their events fold to (a row claimed and then
        skipped goes back as what it is, never left ``pending`` for a claim loop) and their
        claim's generation."""

    def hold(self, row: str, claim: int) -> None:
        self.held[row] = claim

    def release(self, row: str, status: str) -> None:
        """Done with ``row`` for now: handed back (as ``status``) by the next ``flush``."""
        claim = self.held.pop(row, None)
        if claim is not None:
            self._releases[row] = (status, claim)

    async def renew(self) -> None:
        """Extend every lease this worker holds (the heartbeat), then hand back what is done."""
        async with self._lock:
            await self._db.execute(
                """
                UPDATE rows SET lease_until = clock_timestamp() + make_interval(secs => $3)
                WHERE batch_id = $1 AND owner = $2
                """,
                self._batch_id,
                self._worker_id,
                self._lease_s,
            )
            await self.hand_back()

    async def flush(self) -> None:
        """Hand back the released rows."""
        async with self._lock:
            await self.hand_back()

    async def hand_back(self, *, once: bool = False) -> None:
        """Give the released rows back, each only while this worker still holds it under the
        same claim. ``once``: one try, no waiting for an absent database (closing)."""
        if not self._releases:
            return
        releases, self._releases = self._releases, {}
        query = """
            UPDATE rows r SET owner = NULL, lease_until = NULL, status = v.status
            FROM unnest($2::text[], $4::text[], $5::int[]) AS v(row_key, status, claims)
            WHERE r.batch_id = $1 AND r.row_key = v.row_key AND r.owner = $3
              AND r.claims = v.claims
        """
        args = (
            self._batch_id,
            list(releases),
            self._worker_id,
            [status for status, _ in releases.values()],
            [claim for _, claim in releases.values()],
        )
        try:
            if once:
                await self._db.pool.execute(query, *args)
            else:
                await self._db.execute(query, *args)
        except BaseException:
            self._releases = {**releases, **self._releases}  # still to hand back
            raise

    async def orphans(self) -> list[asyncpg.Record]:
        """Rows this worker owns yet neither works on nor is handing back: a claim committed
        whose answer never arrived. Their leases renewed, as a claim's answer would hold them;
        the columns of a claim's answer (``previous`` unknown)."""
        async with self._lock, self._db.connection() as conn:
            return await conn.fetch(
                """
                UPDATE rows SET lease_until = clock_timestamp() + make_interval(secs => $3)
                WHERE batch_id = $1 AND owner = $2 AND NOT (row_key = ANY($4::text[]))
                RETURNING row_key, line, flow, template_sha256, variables, output, claims,
                          NULL::text AS previous
                """,
                self._batch_id,
                self._worker_id,
                self._lease_s,
                [*self.held, *self._releases],
            )

    async def vouch(self, row: str, claim: int, asked_at: float, clock: Clock) -> None:
        """Return only once the row's lease was renewed less than ``lease_s * (1 -
        FENCE_MARGIN)`` ago by ``clock`` (monotonic), ``asked_at`` being when the last renewal
        (a fenced write) was asked: a statement whose answer came later (a stalled process, a
        slow database) is followed by another, fenced like every write, that renews the lease
        again; ``LeaseLost`` when the row is no longer this worker's under ``claim``."""
        limit_s = self._lease_s * (1 - FENCE_MARGIN)
        while clock.now() - asked_at >= limit_s:
            asked_at = clock.now()
            held = await self._db.fetchval(
                """
                UPDATE rows SET lease_until = clock_timestamp() + make_interval(secs => $5)
                WHERE batch_id = $1 AND row_key = $2 AND owner = $3 AND claims = $4
                RETURNING 1
                """,
                self._batch_id,
                row,
                self._worker_id,
                claim,
                self._lease_s,
            )
            if held is None:
                raise LeaseLost(row, self._worker_id)
