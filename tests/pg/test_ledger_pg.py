"""The shared ledger on a real PostgreSQL: schema versions, claims, leases, takeover, fencing and
durability, through ``PgLedger`` as a worker uses it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from orchestrator.errors import LeaseLost
from orchestrator.ledger.pg.batches import batch_view
from orchestrator.ledger.pg.ledger import PgLedger
from orchestrator.ledger.pg.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaChanged,
    SchemaTooNew,
    SchemaTooOld,
    connect,
    migrate,
    migrate_ledger,
)
from orchestrator.ledger.records import RenderIntent, RenderJob, RowAdmitted

from .conftest import submit_small, take_rows

SHORT_LEASE_S = 0.3
IDLE_POLL_S = 0.02


async def _open(pool: asyncpg.Pool, pg_url: str, worker: str, lease_s: float = 30.0) -> PgLedger:
    return await PgLedger.open(
        pool, pg_url, "b", worker_id=worker, lease_s=lease_s, idle_poll_s=IDLE_POLL_S
    )


async def test_schema_is_created_once_and_a_newer_one_is_refused(pool: asyncpg.Pool) -> None:
    """Migrating again changes nothing; a database from a newer orchestrator is refused."""
    async with pool.acquire() as conn:
        assert await migrate(conn) == len(MIGRATIONS)
        await conn.execute("INSERT INTO orchestrator_schema VALUES ($1)", len(MIGRATIONS) + 1)
        with pytest.raises(SchemaTooNew, match="upgrade orchestrator"):
            await migrate(conn)


async def test_submit_stores_every_row_once_with_its_template(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A submitted batch holds each manifest row, pending, and the template's bytes."""
    await submit_small(pool, tmp_path, 30)
    view = await batch_view(pool, "b")
    assert dict(view.counts) == {"pending": 30}
    assert await pool.fetchval("SELECT count(*) FROM templates") == 1


async def test_two_workers_claim_disjoint_rows(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """Rows claimed by one worker are never handed to another while its lease lives."""
    await submit_small(pool, tmp_path, 12)
    a, b = await _open(pool, pg_url, "a"), await _open(pool, pg_url, "b")
    try:
        got_a = [j.row_id for j in await take_rows(a, 6)]
        got_b = [j.row_id for j in await take_rows(b, 6)]
        assert len(set(got_a) | set(got_b)) == 12
        assert (await batch_view(pool, "b")).workers == {"a": 6, "b": 6}
        assert not await a._claim()  # every row is leased: nothing left to claim
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_dead_workers_row_is_taken_over_with_its_recorded_progress(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """A worker that stops renewing its lease loses the row; the next worker folds every event
    recorded for it (an intent without a job: the render stage calls it ambiguous, never sends a
    second render) and the dead worker can no longer write for it."""
    await submit_small(pool, tmp_path, 1)
    dead = await _open(pool, pg_url, "dead", lease_s=SHORT_LEASE_S)
    (job,) = await take_rows(dead, 1)
    await dead.append(RowAdmitted(row=job.row_id, line=job.line, output=job.output_name))
    await dead.append(RenderIntent(row=job.row_id, preview_job="p-1"))
    assert dead._heartbeat is not None
    dead._heartbeat.cancel()  # the process died: no more heartbeats
    heir = await _open(pool, pg_url, "heir", lease_s=SHORT_LEASE_S)
    try:
        (again,) = await take_rows(heir, 1)
        assert again.row_id == job.row_id
        state = heir.state.rows[job.row_id]
        assert state.render_intent and state.render_job is None
        assert heir.taken_over == [(job.row_id, "dead")]
        with pytest.raises(LeaseLost):
            await dead.append(RenderJob(row=job.row_id, job="r-1"))
        bodies = await pool.fetch("SELECT body FROM events WHERE row_key = $1", job.row_id)
        assert "r-1" not in "".join(r["body"] for r in bodies)
    finally:
        await heir.aclose()
        await dead.aclose()


async def test_an_append_is_committed_when_it_returns(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """The render intent is in the database, visible to any other connection, before the
    render request could be sent."""
    await submit_small(pool, tmp_path, 1)
    ledger = await _open(pool, pg_url, "w")
    try:
        (job,) = await take_rows(ledger, 1)
        await ledger.append(RenderIntent(row=job.row_id, preview_job="p-1"))
        other = await asyncpg.connect(pg_url)
        try:
            body = await other.fetchval(
                "SELECT body FROM events WHERE row_key = $1 ORDER BY id DESC LIMIT 1", job.row_id
            )
        finally:
            await other.close()
        assert json.loads(body)["e"] == "render_intent"
    finally:
        await ledger.aclose()


async def test_a_released_row_that_is_done_is_not_claimed_again(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """Once every row is done the worker's row source ends instead of waiting."""
    from orchestrator.ledger.records import Downloaded

    await submit_small(pool, tmp_path, 2)
    ledger = await _open(pool, pg_url, "w")
    try:
        async for job in ledger.rows_to_work_on():
            await ledger.append(
                Downloaded(row=job.row_id, file=job.output_name, bytes=1, sha256="x")
            )
            ledger.release(job.row_id)
        assert dict((await batch_view(pool, "b")).counts) == {"done": 2}
    finally:
        await ledger.aclose()


async def test_an_older_schema_is_migrated_forward(empty_pg_url: str) -> None:
    """A database left at version 1 by an older orchestrator is refused until `orchestrator
    migrate` gives it the later migrations, once."""
    pg_url = empty_pg_url
    conn = await asyncpg.connect(pg_url)
    try:
        async with conn.transaction():
            await conn.execute("CREATE TABLE orchestrator_schema (version integer NOT NULL)")
            await conn.execute(MIGRATIONS[0])
            await conn.execute("INSERT INTO orchestrator_schema VALUES (1)")
    finally:
        await conn.close()
    with pytest.raises(SchemaTooOld, match="version 1, older than"):
        await connect(pg_url, None)
    assert await migrate_ledger(pg_url, None) == 1
    pool = await connect(pg_url, None)
    try:
        assert await pool.fetchval("SELECT max(version) FROM orchestrator_schema") == len(
            MIGRATIONS
        )
        assert await pool.fetchval("SELECT count(*) FROM orchestrator_schema") == SCHEMA_VERSION
        assert await pool.fetchval("SELECT count(*) FROM render_slots") == 0
    finally:
        await pool.close()


async def test_ambiguous_rows_are_claimed_again_only_by_choice(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """An ambiguous row is left alone by workers, unless one runs with --rerender-ambiguous."""
    from orchestrator.ledger.records import Ambiguous

    await submit_small(pool, tmp_path, 1)
    first = await _open(pool, pg_url, "first")
    (job,) = await take_rows(first, 1)
    await first.append(Ambiguous(row=job.row_id, stage="render", message="lost answer"))
    first.release(job.row_id)
    await first.aclose()
    plain = await _open(pool, pg_url, "plain")
    chosen = await PgLedger.open(pool, pg_url, "b", worker_id="chosen", rerender_ambiguous=True)
    try:
        assert await plain._claim() == []
        (again,) = await take_rows(chosen, 1)
        assert chosen.state.rows[again.row_id].status == "ambiguous"
    finally:
        await plain.aclose()
        await chosen.aclose()


async def test_a_schema_change_stops_the_worker_that_opened_the_ledger(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """The heartbeat finds the schema at another version (`orchestrator migrate` ran): it
    cancels the task that opened the ledger (the worker), whose ``aclose`` then says why."""
    await submit_small(pool, tmp_path, 2)
    ledger = await _open(pool, pg_url, "w1", lease_s=SHORT_LEASE_S)
    assert await take_rows(ledger, 1)
    await pool.execute("INSERT INTO orchestrator_schema VALUES ($1)", SCHEMA_VERSION + 1)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.sleep(10)  # the worker's work, cancelled by the next heartbeat
    task = asyncio.current_task()
    assert task is not None
    task.uncancel()
    changed = rf"to {SCHEMA_VERSION + 1} while this worker ran.*upgrade orchestrator"
    with pytest.raises(SchemaChanged, match=changed):
        await ledger.aclose()
