"""Batches in the shared ledger: creating one from a validated manifest (``orchestrator submit``)
and reading one back (``status``, ``report``). Which batch a worker may work: ``accounts``. Claims
and events while working: ``ledger``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import asyncpg

from orchestrator.errors import RunDirError
from orchestrator.input.row import ManifestOptions, ManifestRow
from orchestrator.input.rows import RowJob, TemplateCache, iter_row_jobs
from orchestrator.input.template import Template
from orchestrator.ledger.codec import encode
from orchestrator.ledger.pg.accounts import binding, refuse_unbound, stored_accounts
from orchestrator.ledger.pg.schema import Conn
from orchestrator.ledger.pg.stored import fold_events
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState
from orchestrator.ledger.records import Event, RetryFailed, RunStarted

COPY_CHUNK = 5000
"""Rows sent per COPY while submitting (memory stays flat for a million-row manifest)."""
EVENTS_PREFETCH = 5000
"""Events read per round trip when a batch's state is folded (its read side)."""
ROW_COLUMNS = ("batch_id", "row_key", "line", "flow", "template_sha256", "variables", "output")


@dataclass(frozen=True)
class Submitted:
    batch_id: int
    name: str
    rows: int
    duplicates: int


async def submit_batch(
    pool: asyncpg.Pool,
    name: str,
    record: RunStarted,
    manifest: Path,
    template: Path | None,
    flow: str,
    options: ManifestOptions,
    *,
    now_s: float,
    batch_events: Sequence[Event] = (),
    accounts: Sequence[str] | None = None,
    any_account: bool = False,
) -> Submitted:
    """Create batch ``name`` with every row of ``manifest`` (already validated), its templates,
    its run record and ``batch_events`` (its choices, its canary), in one transaction: a batch is
    there whole or not at all.

    ``accounts``: the names of the accounts whose workers may render it (``account_name``);
    None leaves it to any account's. Once the ledger holds a batch bound to accounts, a batch
    for any account must say so (``any_account``): a forgotten ``--account`` is refused rather
    than handing a client's rows to every other client's workers."""
    record = replace(record, ts=round(now_s, 3))
    body = json.dumps(encode(record), separators=(",", ":"), ensure_ascii=False)
    jobs = iter_row_jobs(manifest, template, TemplateCache(), flow, options)
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT 1 FROM batches WHERE name = $1", name):
            raise RunDirError(
                f"the ledger already holds a batch named {name!r}; choose another with --name "
                "(its workers go on with `orchestrator worker`)"
            )
        if accounts is None and not any_account:
            await refuse_unbound(conn)
        batch_id = int(
            await conn.fetchval(
                "INSERT INTO batches (name, flow, record, accounts) VALUES ($1, $2, $3, $4) "
                "RETURNING id",
                name,
                flow,
                body,
                binding(accounts),
            )
        )
        await conn.execute(
            "INSERT INTO events (batch_id, row_key, body) VALUES ($1, NULL, $2)", batch_id, body
        )
        for event in batch_events:
            await conn.execute(
                "INSERT INTO events (batch_id, row_key, body) VALUES ($1, NULL, $2)",
                batch_id,
                json.dumps(encode(replace(event, ts=round(now_s, 3))), ensure_ascii=False),
            )
        seen: set[str] = set()
        templates: dict[str, Template] = {}
        columns: dict[str, None] = {}
        total = duplicates = 0
        while True:
            chunk = await anyio.to_thread.run_sync(
                _next_chunk, jobs, seen, templates, columns, batch_id
            )
            if chunk is None:
                break
            records, dropped = chunk
            total += len(records)
            duplicates += dropped
            for sha, t in list(templates.items()):
                await conn.execute(
                    """
                    INSERT INTO templates (sha256, name, content, variables)
                    VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING
                    """,
                    sha,
                    t.path.name,
                    t.content,
                    sorted(t.variables),
                )
            templates.clear()
            await conn.copy_records_to_table("rows", records=records, columns=ROW_COLUMNS)
        await conn.execute("UPDATE batches SET columns = $2 WHERE id = $1", batch_id, list(columns))
    return Submitted(batch_id=batch_id, name=name, rows=total, duplicates=duplicates)


def _next_chunk(
    jobs: Iterator[tuple[ManifestRow, RowJob]],
    seen: set[str],
    templates: dict[str, Template],
    columns: dict[str, None],
    batch_id: int,
) -> tuple[list[tuple[object, ...]], int] | None:
    """The next ``COPY_CHUNK`` rows (a row repeated in the manifest kept once), or None."""
    records: list[tuple[object, ...]] = []
    dropped = 0
    for _, job in jobs:
        if job.row_id in seen:
            dropped += 1
            continue
        seen.add(job.row_id)
        columns.update(dict.fromkeys(job.variables))
        sha = None
        if job.template is not None:
            sha = job.template.sha256
            templates.setdefault(sha, job.template)
        records.append(
            (
                batch_id,
                job.row_id,
                job.line,
                job.flow,
                sha,
                json.dumps(job.variables, ensure_ascii=False),
                job.output_name,
            )
        )
        if len(records) >= COPY_CHUNK:
            break
    if not records and not dropped:
        return None
    return records, dropped


@dataclass(frozen=True)
class BatchView:
    """A batch as ``status`` shows it."""

    batch_id: int
    name: str
    counts: Counter[str]
    workers: dict[str, int]
    """Live workers (an unexpired lease) → rows they hold."""
    expired: int
    """Pending rows whose owner's lease expired (a dead worker's; the next claim takes them)."""
    taken_over: int
    accounts: tuple[str, ...] | None = None
    """The accounts whose workers may render it (None: any account's)."""
    leases: tuple[WorkerLease, ...] = ()
    """Each live worker's account and lease end (``orchestrator serve`` shows them)."""


@dataclass(frozen=True)
class WorkerLease:
    """A live worker's rows on a batch: on which ``account`` (``config.account_key``, a digest
    holding no secret), how many ``rows``, and ``until_s`` (epoch seconds) when its latest
    lease ends; each heartbeat moves it to the heartbeat's time plus the worker's lease."""

    worker: str
    account: str | None
    rows: int
    until_s: float


async def batch_view(
    pool: asyncpg.Pool, name: str | None = None, batch_id: int | None = None
) -> BatchView:
    """Batch ``name`` (or ``batch_id``; default: the newest) as ``status`` shows it."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, name, accounts FROM batches WHERE ($1::text IS NULL OR name = $1) "
            "AND ($2::bigint IS NULL OR id = $2) ORDER BY id DESC LIMIT 1",
            name,
            batch_id,
        )
        if row is None:
            what = f"no batch named {name!r}" if name else "no batch"
            raise RunDirError(f"the ledger holds {what}; submit one with `orchestrator submit`")
        batch_id = int(row["id"])
        counts = Counter(
            {
                r["status"]: int(r["n"])
                for r in await conn.fetch(
                    "SELECT status, count(*) AS n FROM rows WHERE batch_id = $1 GROUP BY status",
                    batch_id,
                )
            }
        )
        held = await conn.fetch(
            """
            SELECT owner, account, count(*) AS n, max(lease_until) AS until FROM rows
              WHERE batch_id = $1 AND owner IS NOT NULL AND lease_until >= clock_timestamp()
              GROUP BY owner, account ORDER BY owner
            """,
            batch_id,
        )
        leases = tuple(
            WorkerLease(r["owner"], r["account"], int(r["n"]), r["until"].timestamp()) for r in held
        )
        workers: dict[str, int] = {}
        for lease in leases:
            workers[lease.worker] = workers.get(lease.worker, 0) + lease.rows
        expired = int(
            await conn.fetchval(
                """
                SELECT count(*) FROM rows WHERE batch_id = $1 AND status = 'pending'
                  AND owner IS NOT NULL AND lease_until < clock_timestamp()
                """,
                batch_id,
            )
        )
        taken = int(
            await conn.fetchval(
                "SELECT count(*) FROM rows WHERE batch_id = $1 AND taken_from IS NOT NULL",
                batch_id,
            )
        )
    accounts = stored_accounts(row["accounts"])
    return BatchView(
        batch_id, str(row["name"]), counts, workers, expired, taken, accounts, leases=leases
    )


async def batch_rows(
    pool: asyncpg.Pool, batch_id: int
) -> tuple[list[tuple[str, int, dict[str, str]]], LedgerState]:
    """Every row of a batch as ``(row_key, line, variables)`` in manifest order, and the batch's
    state folded from every worker's events. Close the state's ``rows`` when done."""
    async with pool.acquire() as conn:
        columns = await conn.fetchval("SELECT columns FROM batches WHERE id = $1", batch_id)
        rows = await conn.fetch(
            "SELECT row_key, line, variables FROM rows WHERE batch_id = $1 ORDER BY line",
            batch_id,
        )
        state = LedgerState()
        try:
            async with conn.transaction():  # a cursor streams the events: memory stays flat
                chunk: list[asyncpg.Record] = []
                query = "SELECT body FROM events WHERE batch_id = $1 ORDER BY id"
                async for record in conn.cursor(query, batch_id, prefetch=EVENTS_PREFETCH):
                    chunk.append(record)
                    if len(chunk) >= EVENTS_PREFETCH:
                        await fold_events(pool, batch_id, chunk, state.apply_replayed)
                        chunk.clear()
                await fold_events(pool, batch_id, chunk, state.apply_replayed)
        except BaseException:  # a read cut short (and tried again by the caller): no spill left
            state.rows.close()
            raise
    order: list[str] = list(columns or ())
    listed = [
        (str(r["row_key"]), int(r["line"]), _in_order(json.loads(r["variables"]), order))
        for r in rows
    ]
    return listed, state


async def find_batch(conn: Conn, name: str | None, where: str) -> int:
    """The id of batch ``name``; without a name, the oldest batch with rows still pending, else
    the oldest (its rows are all finished: a worker on it ends at once)."""
    if name is not None:
        found = await conn.fetchval("SELECT id FROM batches WHERE name = $1", name)
        if found is None:
            raise RunDirError(f"{where} holds no batch named {name!r}; see `orchestrator submit`")
        return int(found)
    found = await conn.fetchval(
        """
        SELECT b.id FROM batches b
        ORDER BY EXISTS (SELECT 1 FROM rows r WHERE r.batch_id = b.id AND r.status = 'pending')
                 DESC, b.id
        LIMIT 1
        """
    )
    if found is None:
        raise RunDirError(f"{where} holds no batch yet; submit one with `orchestrator submit`")
    return int(found)


async def retry_failed_rows(pool: asyncpg.Pool, batch_id: int, event: RetryFailed) -> None:
    """Record ``--retry-failed`` (``event``) and put the batch's failed rows back where workers
    claim them, in one transaction; each is tried again once (``LedgerState.may_retry``)."""
    body = json.dumps(encode(event), separators=(",", ":"))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO events (batch_id, row_key, body) VALUES ($1, NULL, $2)", batch_id, body
        )
        await conn.execute(
            "UPDATE rows SET status = 'pending' WHERE batch_id = $1 AND status = 'failed'",
            batch_id,
        )


async def batch_snapshot(pool: asyncpg.Pool, batch_id: int) -> BatchSnapshot:
    """The read side of a shared batch: its rows from the ``rows`` table in manifest order and
    the state folded from every worker's events (close it when done)."""
    listed, state = await batch_rows(pool, batch_id)

    def rows() -> Iterator[RowJob]:
        for row_key, line, variables in listed:
            yield RowJob(
                row_id=row_key, line=line, variables=variables, template=None, output_name=""
            )

    return BatchSnapshot(rows=rows, state=state, total=len(listed), owns_state=True)


def _in_order(values: dict[str, str], order: list[str]) -> dict[str, str]:
    """A row's variables in the manifest's column order (jsonb keeps none); a batch submitted
    before the order was recorded keeps the database's."""
    if not order:
        return values
    ordered = {name: values[name] for name in order if name in values}
    ordered.update(values)
    return ordered
