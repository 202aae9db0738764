"""The shared ledger's ``events`` table: events written (a row's fenced by its claim), events read
back, and the refusal of a batch holding one that a newer orchestrator wrote (an event kind this
version does not know, a ``run`` record of a newer format): never skipped, named by database and
batch (``codec.newer_ledger``).

Fencing. A row event is written by one statement that also checks the writer still holds the
row's claim: ``owner`` is this worker AND ``claims`` is the generation its claim set. When either
changed (its lease expired while it was stalled and another worker claimed the row, even if the
row came back to this worker since), nothing is written. The same statement renews the row's
lease, so a worker that could write an event holds the row for a whole lease from that moment.

Written once. A statement whose connection died may have been committed: tried again
(``pool.Db``), it writes the event only if that very event (same body, same timestamp to the
millisecond) is not there yet.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import asyncpg

from orchestrator.errors import NewerRecord, RunDirError
from orchestrator.ledger.codec import decode, newer_ledger
from orchestrator.ledger.pg.pool import Db
from orchestrator.ledger.records import UNNUMBERED_FORMAT, Event

_ROW_EVENT = """
    WITH own AS (
        UPDATE rows SET status = $4, lease_until = clock_timestamp() + make_interval(secs => $7)
        WHERE batch_id = $1 AND row_key = $2 AND owner = $3 AND claims = $6
        RETURNING 1
    ), written AS (
        INSERT INTO events (batch_id, row_key, body) SELECT $1, $2, $5::jsonb FROM own
        {once}
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM own)
"""
_ROW_ONCE = (
    "WHERE NOT EXISTS (SELECT 1 FROM events WHERE batch_id = $1 AND row_key = $2 "
    "AND body = $5::jsonb)"
)
_BATCH_EVENT = """
    INSERT INTO events (batch_id, row_key, body) SELECT $1, NULL, $2::jsonb
    {once}
"""
_BATCH_ONCE = (
    "WHERE NOT EXISTS (SELECT 1 FROM events WHERE batch_id = $1 AND row_key IS NULL "
    "AND body = $2::jsonb)"
)


async def write_row_event(
    db: Db,
    batch_id: int,
    row: str,
    body: str,
    *,
    owner: str,
    claim: int,
    status: str,
    lease_s: float,
) -> bool:
    """Record a row's event (``body``, encoded) and its ``status``, and renew its lease, if
    ``owner`` still holds the row under generation ``claim``; False (nothing written) if not.
    Committed when it returns."""
    first, once = _ROW_EVENT.format(once=""), _ROW_EVENT.format(once=_ROW_ONCE)
    args = (batch_id, row, owner, status, body, claim, lease_s)
    return bool(
        await db.run(lambda conn, retrying: conn.fetchval(once if retrying else first, *args))
    )


async def write_batch_event(db: Db, batch_id: int, body: str) -> None:
    """Record an event of the batch (not a row's). Committed when it returns."""
    first, once = _BATCH_EVENT.format(once=""), _BATCH_EVENT.format(once=_BATCH_ONCE)
    await db.run(lambda conn, retrying: conn.execute(once if retrying else first, batch_id, body))


async def fold_events(
    pool: asyncpg.Pool,
    batch_id: int,
    records: Iterable[asyncpg.Record],
    apply: Callable[[Event], None],
) -> None:
    """``apply`` each event ``records`` hold (their ``body``), in order. A record a newer
    orchestrator wrote stops it: ``RunDirError`` naming the database, the batch and the
    formats."""
    try:
        for record in records:
            apply(decode(json.loads(record["body"])))
    except NewerRecord as exc:
        raise await _refusal(pool, batch_id, exc) from None


async def _refusal(pool: asyncpg.Pool, batch_id: int, exc: NewerRecord) -> RunDirError:
    async with pool.acquire() as conn:
        found = await conn.fetchrow(
            "SELECT current_database() AS db, name FROM batches WHERE id = $1", batch_id
        )
        formats = await conn.fetch(
            "SELECT body->'format' AS format FROM events "
            "WHERE batch_id = $1 AND row_key IS NULL AND body->>'e' = 'run'",
            batch_id,
        )
    declared = UNNUMBERED_FORMAT
    for record in formats:
        value = json.loads(record["format"]) if record["format"] is not None else None
        if isinstance(value, int) and not isinstance(value, bool):
            declared = max(declared, value)
    where = (
        f"the ledger database {found['db']!r}, batch {found['name']!r}"
        if found is not None
        else f"the ledger's batch {batch_id}"
    )
    return newer_ledger(where, exc, declared)
