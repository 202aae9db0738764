"""``orchestrator purge --older-than DAYS --ledger URL``: shared batches that are over and old.

A batch is finished when none of its rows is ``pending`` and no worker holds a lease on any of
them (``lease_until`` in the future, by the database's clock); its age is that of its latest
event (``events.body->>'ts'``, else the batch's ``created_at``). A finished batch older than
``older_than_s`` is deleted with everything that hangs off it, in one transaction per batch:
its ``rows`` (and so their claims and leases) and ``events`` go by ``ON DELETE CASCADE``; the
``templates`` no other batch's rows use go too. Accounts' request turns and render slots
(``rates``, ``render_slots``) belong to accounts, not batches, and stay.

The space figure is what the batch's rows and events take in their tables
(``pg_column_size``); PostgreSQL gives it back to the file system at its next ``VACUUM``.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

FINISHED_BATCHES = """
    SELECT b.id, b.name,
           coalesce(
               (SELECT max((e.body->>'ts')::float8) FROM events e WHERE e.batch_id = b.id),
               extract(epoch FROM b.created_at)
           ) AS last_at,
           (SELECT count(*) FROM rows r WHERE r.batch_id = b.id) AS rows,
           (SELECT count(*) FROM rows r WHERE r.batch_id = b.id AND r.status = 'pending')
               AS pending,
           (SELECT count(*) FROM rows r
             WHERE r.batch_id = b.id AND r.lease_until > clock_timestamp()) AS leased,
           coalesce((SELECT sum(pg_column_size(e.*)) FROM events e WHERE e.batch_id = b.id), 0)
           + coalesce((SELECT sum(pg_column_size(r.*)) FROM rows r WHERE r.batch_id = b.id), 0)
               AS bytes
      FROM batches b
     ORDER BY b.id
"""


@dataclass(frozen=True)
class FoundBatch:
    """A shared batch, and what purge makes of it."""

    batch_id: int
    name: str
    last_at: float
    rows: int
    bytes: int
    action: str
    """``remove``, or why it is kept: ``fresh``, ``pending`` (rows left), ``live`` (leased)."""


async def survey(pool: asyncpg.Pool, *, older_than_s: float, now_s: float) -> list[FoundBatch]:
    """What ``purge`` would do with each batch of the ledger."""
    found = []
    for rec in await pool.fetch(FINISHED_BATCHES):
        last_at = float(rec["last_at"])
        if rec["leased"]:
            action = "live"
        elif rec["pending"]:
            action = "pending"
        elif now_s - last_at < older_than_s:
            action = "fresh"
        else:
            action = "remove"
        found.append(
            FoundBatch(
                int(rec["id"]), rec["name"], last_at, int(rec["rows"]), int(rec["bytes"]), action
            )
        )
    return found


async def remove(pool: asyncpg.Pool, batch: FoundBatch) -> bool:
    """Delete ``batch`` (module docstring) unless a worker took a row or a row became pending
    since the survey; False then, and nothing is deleted."""
    async with pool.acquire() as conn, conn.transaction():
        locked = await conn.fetchval(
            "SELECT id FROM batches WHERE id = $1 FOR UPDATE", batch.batch_id
        )
        if locked is None:
            return False
        busy = await conn.fetchval(
            "SELECT count(*) FROM rows WHERE batch_id = $1 AND (status = 'pending' "
            "OR lease_until > clock_timestamp())",
            batch.batch_id,
        )
        if busy:
            return False
        used = await conn.fetch(
            "SELECT DISTINCT template_sha256 FROM rows WHERE batch_id = $1 "
            "AND template_sha256 IS NOT NULL",
            batch.batch_id,
        )
        await conn.execute("DELETE FROM batches WHERE id = $1", batch.batch_id)
        await conn.execute(
            "DELETE FROM templates t WHERE t.sha256 = ANY($1::text[]) "
            "AND NOT EXISTS (SELECT 1 FROM rows r WHERE r.template_sha256 = t.sha256)",
            [r["template_sha256"] for r in used],
        )
    return True
