"""Erasing rows' values from a shared batch (``orchestrator forget --ledger URL``).

The ``events`` table is append-only by design: this is the one statement that changes a stored
event. In one transaction, under ``FOR UPDATE`` on the rows (a worker's claim, ``SELECT ... FOR
UPDATE SKIP LOCKED``, passes them by meanwhile):

1. a row a live worker holds (an unexpired lease) is refused, and nothing changes;
2. each of the rows' events is redacted in place (``UPDATE events SET body = ...``: the same
   record with every value replaced by ``[forgotten DATE]``, ``ledger.forget.redact``);
3. a ``forgotten`` event is added for each row not forgotten before;
4. the ``rows`` table forgets the row's values (``variables``: each the marker; ``output``: the
   marker) and takes its status from the folded events (a row not done becomes ``failed``, so
   no worker claims it); its claim is cleared and its generation bumped (``claims + 1``), so a
   stalled worker that held it once can write nothing more for it (``stored``'s fencing).

Committed together, or not at all. PostgreSQL keeps the old row versions until a ``VACUUM``
(autovacuum does it in time) and in its write-ahead log and backups for as long as those are
kept: docs/run-directory.md#forgetting-a-customer says what to do about those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import asyncpg

from orchestrator.errors import RunDirError
from orchestrator.ledger.codec import decode, encode
from orchestrator.ledger.forget import redact
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import Event, Forgotten, JobsCleaned, RowEvent, forgotten_marker


@dataclass
class StoredRow:
    """A row of a shared batch as the ``rows`` table and its events hold it."""

    row: str
    line: int
    variables: dict[str, str]
    output: str
    forgotten: str | None = None
    events: list[Event] = field(default_factory=list)
    account: str | None = None
    """The account that rendered it (``rows.account``: whose job ids its records hold)."""


async def stored_rows(pool: asyncpg.Pool, batch_id: int, rows: list[str]) -> list[StoredRow]:
    """``rows`` of the batch with their events (in order), for ``forget`` to find their traces."""
    async with pool.acquire() as conn:
        found = await conn.fetch(
            "SELECT row_key, line, variables, output, account FROM rows "
            "WHERE batch_id = $1 AND row_key = ANY($2::text[]) ORDER BY line",
            batch_id,
            rows,
        )
        records = await conn.fetch(
            "SELECT row_key, body FROM events WHERE batch_id = $1 AND row_key = ANY($2::text[]) "
            "ORDER BY id",
            batch_id,
            rows,
        )
    by_key = {
        r["row_key"]: StoredRow(
            r["row_key"],
            r["line"],
            json.loads(r["variables"]),
            r["output"],
            account=r["account"],
        )
        for r in found
    }
    for record in records:
        stored = by_key.get(record["row_key"])
        if stored is not None:
            event = decode(json.loads(record["body"]))
            stored.events.append(event)
            if isinstance(event, Forgotten):
                stored.forgotten = event.date
    return list(by_key.values())


async def record_cleaned(
    pool: asyncpg.Pool, batch_id: int, row: str, jobs: list[str], now_s: float
) -> None:
    """Record that ``forget`` cleaned ``row``'s ``jobs`` at Pictory (a ``cleaned`` event, as
    ``[pictory] clean_after_download`` writes it), so no later ``forget`` asks again."""
    event = JobsCleaned(row=row, jobs=jobs, ts=round(now_s, 3))
    body = json.dumps(encode(event), separators=(",", ":"), ensure_ascii=False)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO events (batch_id, row_key, body) VALUES ($1, $2, $3::jsonb)",
            batch_id,
            row,
            body,
        )


async def forget_rows(
    pool: asyncpg.Pool, batch_id: int, dates: dict[str, str], now_s: float
) -> int:
    """Erase the values of ``dates``' rows (row → the day, ``YYYY-MM-DD``) from the batch in one
    transaction (module docstring); returns how many stored events were rewritten."""
    rewritten = 0
    async with pool.acquire() as conn, conn.transaction():
        locked = await conn.fetch(
            "SELECT row_key, owner, (owner IS NOT NULL AND lease_until > clock_timestamp()) "
            "AS live FROM rows WHERE batch_id = $1 AND row_key = ANY($2::text[]) FOR UPDATE",
            batch_id,
            list(dates),
        )
        held = [r for r in locked if r["live"]]
        if held:
            who = ", ".join(f"{r['row_key']} (worker {r['owner']})" for r in held)
            raise RunDirError(
                f"forget: a live worker holds {who}; nothing was erased. Run it again once "
                "that worker has finished the row (its lease ends at the latest "
                "[ledger] lease_s after it stops)"
            )
        records = await conn.fetch(
            "SELECT id, row_key, body FROM events "
            "WHERE batch_id = $1 AND row_key = ANY($2::text[]) ORDER BY id",
            batch_id,
            list(dates),
        )
        updates: list[tuple[int, str]] = []
        kept: list[Event] = []
        already: set[str] = set()
        for record in records:
            event = decode(json.loads(record["body"]))
            if isinstance(event, Forgotten):
                already.add(event.row)
            marker = forgotten_marker(dates[record["row_key"]])
            redacted = redact(event, marker) if isinstance(event, RowEvent) else event
            body = json.dumps(encode(redacted), separators=(",", ":"), ensure_ascii=False)
            kept.append(redacted)
            if redacted != event:
                updates.append((record["id"], body))
        await conn.executemany("UPDATE events SET body = $2::jsonb WHERE id = $1", updates)
        rewritten = len(updates)
        for row, date in dates.items():
            if row in already:
                continue
            event = Forgotten(row=row, date=date, ts=round(now_s, 3))
            body = json.dumps(encode(event), separators=(",", ":"), ensure_ascii=False)
            kept.append(event)
            await conn.execute(
                "INSERT INTO events (batch_id, row_key, body) VALUES ($1, $2, $3::jsonb)",
                batch_id,
                row,
                body,
            )
        state = LedgerState()
        for each in kept:
            state.apply(each)
        for row, date in dates.items():
            st = state.rows.get(row)
            marker = forgotten_marker(date)
            await conn.execute(
                """
                UPDATE rows SET
                    variables = (SELECT coalesce(jsonb_object_agg(k, to_jsonb($3::text)),
                                                 '{}'::jsonb)
                                 FROM jsonb_object_keys(variables) AS k),
                    output = $3, status = $4, owner = NULL, lease_until = NULL,
                    claims = claims + 1
                WHERE batch_id = $1 AND row_key = $2
                """,
                batch_id,
                row,
                marker,
                st.status if st is not None else "failed",
            )
        state.rows.close()
    return rewritten
