"""Events read back from the shared ledger's ``events`` table, and the refusal of a batch holding
one that a newer orchestrator wrote (an event kind this version does not know, a ``run`` record
of a newer format): never skipped, named by database and batch (``records.newer_ledger``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import asyncpg

from orchestrator.errors import NewerRecord, RunDirError
from orchestrator.ledger.records import UNNUMBERED_FORMAT, Event, decode, newer_ledger


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
