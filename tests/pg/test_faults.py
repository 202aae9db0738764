"""The shared ledger when the database fails under a worker, statement by statement, on a real
PostgreSQL: a restart is waited out and nothing is lost or written twice; an outage longer than
``max_outage_s`` stops the worker with one error; a connection cut after a commit loses no
answer that matters; and a claim that was superseded, or a render intent whose answer came too
late to vouch for the lease, can no longer lead to a render."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import anyio
import asyncpg
import pytest

from orchestrator.clock import RealClock
from orchestrator.errors import LeaseLost
from orchestrator.ledger.pg.ledger import PgLedger
from orchestrator.ledger.pg.limits import PgSharedRenders
from orchestrator.ledger.pg.pool import Db, LedgerUnreachable
from orchestrator.ledger.pg.schema import connect, database_lost
from orchestrator.ledger.records import RenderIntent, RowAdmitted

from .conftest import OwnServer, migrate_in_a_thread, submit_small, take_rows

IDLE_POLL_S = 0.02
WAIT_S = 20.0
"""The longest a test waits for a worker's statement to come through (a loaded machine)."""


async def _events(url: str, row: str) -> list[str]:
    """The kinds of the row's events, read by a connection of its own (an independent witness)."""
    conn = await asyncpg.connect(url)
    try:
        bodies = await conn.fetch("SELECT body FROM events WHERE row_key = $1 ORDER BY id", row)
    finally:
        await conn.close()
    return [json.loads(b["body"])["e"] for b in bodies]


async def _own_database(server: OwnServer, name: str) -> str:
    url = await anyio.to_thread.run_sync(server.create_database, name)
    await anyio.to_thread.run_sync(migrate_in_a_thread, url)
    return url


async def test_a_restart_is_waited_out_and_the_intent_lands_once(
    restartable: OwnServer, tmp_path: Path
) -> None:
    """PostgreSQL stops under a worker about to render: the intent waits (so the render is not
    sent) until the server is back, then lands once; the row stays the worker's, and right after
    the restart no other worker takes it, though its lease ran out while the server was down."""
    url = await _own_database(restartable, "restart_intent")
    pool = await connect(url, None, max_connections=4)
    try:
        await submit_small(pool, tmp_path, 1)
        ledger = await PgLedger.open(pool, url, "b", worker_id="w", lease_s=30.0)
        (job,) = await take_rows(ledger, 1)
        await anyio.to_thread.run_sync(restartable.down)
        intent = asyncio.create_task(ledger.append(RenderIntent(row=job.row_id, preview_job="p")))
        await asyncio.sleep(0.5)
        assert not intent.done()  # not durable: the client would not send the render yet
        await anyio.to_thread.run_sync(restartable.up)
        await asyncio.wait_for(intent, WAIT_S)
        assert await _events(url, job.row_id) == ["render_intent"]
        conn = await asyncpg.connect(url)
        try:
            owner = await conn.fetchval("SELECT owner FROM rows WHERE row_key = $1", job.row_id)
            assert owner == "w"
            # The lease as if it ran out during the outage: still not taken over so soon.
            await conn.execute("UPDATE rows SET lease_until = now() - interval '1 s'")
        finally:
            await conn.close()
        heir = await PgLedger.open(pool, url, "b", worker_id="heir", lease_s=30.0)
        try:
            assert await heir._claim() == []
        finally:
            await heir.aclose()
        await ledger.aclose()
    finally:
        await pool.close()


async def test_an_append_gives_up_after_max_outage_s_with_one_error(
    restartable: OwnServer, tmp_path: Path
) -> None:
    """The database stays away longer than ``max_outage_s``: the statement stops trying and
    raises ``LedgerUnreachable`` naming the setting and the last failure, which the worker's
    one-line message recognises (``database_lost``)."""
    url = await _own_database(restartable, "give_up_append")
    pool = await connect(url, None, max_connections=2)
    try:
        await submit_small(pool, tmp_path, 1)
        ledger = await PgLedger.open(pool, url, "b", worker_id="w", max_outage_s=1.0)
        (job,) = await take_rows(ledger, 1)
        await anyio.to_thread.run_sync(restartable.down)
        with pytest.raises(LedgerUnreachable, match=r"for \d+ s \(\[ledger\] max_outage_s\)"):
            await ledger.append(RowAdmitted(row=job.row_id, line=job.line))
        await ledger.aclose()  # hands nothing back (no database), raises nothing
    finally:
        await pool.close()


async def test_a_heartbeat_that_gives_up_stops_the_worker(
    restartable: OwnServer, tmp_path: Path
) -> None:
    """An idle worker notices too: its heartbeat gives up after ``max_outage_s`` and cancels the
    worker, whose ``aclose`` raises ``LedgerUnreachable`` (the CLI's one line, exit 1)."""
    url = await _own_database(restartable, "give_up_beat")
    pool = await connect(url, None, max_connections=2)
    try:
        await submit_small(pool, tmp_path, 1)
        ledger = await PgLedger.open(pool, url, "b", worker_id="w", lease_s=0.6, max_outage_s=0.8)
        await anyio.to_thread.run_sync(restartable.down)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(WAIT_S)  # the worker's work, cancelled by the heartbeat
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
        with pytest.raises(LedgerUnreachable) as stopped:
            await ledger.aclose()
        assert database_lost(stopped.value) is not None
    finally:
        await pool.close()


class Meddles:
    """The pool, except that after each statement run on one of its connections (with its answer
    in hand), ``after(query, args)`` runs: it may raise what a cut connection raises, or change
    the world behind the worker's back."""

    def __init__(self, pool: asyncpg.Pool, after: Any) -> None:
        self._pool = pool
        self._after = after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def acquire(self) -> Any:
        return _Acquired(self._pool.acquire(), self._after)


class _Acquired:
    def __init__(self, acquiring: Any, after: Any) -> None:
        self._acquiring = acquiring
        self._after = after

    async def __aenter__(self) -> _Meddled:
        return _Meddled(await self._acquiring.__aenter__(), self._after)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._acquiring.__aexit__(*exc)


class _Meddled:
    def __init__(self, conn: Any, after: Any) -> None:
        self._conn = conn
        self._after = after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def execute(self, query: str, *args: Any) -> Any:
        answer = await self._conn.execute(query, *args)
        await self._after(query, args)
        return answer

    async def fetch(self, query: str, *args: Any) -> Any:
        answer = await self._conn.fetch(query, *args)
        await self._after(query, args)
        return answer

    async def fetchval(self, query: str, *args: Any) -> Any:
        answer = await self._conn.fetchval(query, *args)
        await self._after(query, args)
        return answer


class LosesAnswers(Meddles):
    """Statements for which ``loses(query, args)`` is true are committed, then their connection
    fails before the answer, ``times`` times: what a connection cut at the worst moment does."""

    def __init__(self, pool: asyncpg.Pool, loses: Any, times: int = 1) -> None:
        super().__init__(pool, self._lose)
        self._loses = loses
        self.left = times

    async def _lose(self, query: str, args: tuple[Any, ...]) -> None:
        if self.left > 0 and self._loses(query, args):
            self.left -= 1
            raise asyncpg.ConnectionDoesNotExistError(
                "connection was closed in the middle of operation"
            )


def _as_pool(proxy: Meddles) -> asyncpg.Pool:
    return cast(asyncpg.Pool, proxy)


async def test_a_row_event_whose_answer_was_lost_is_written_once(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """The event was committed but its answer lost: tried again, it is not written twice."""
    await submit_small(pool, tmp_path, 1)
    cut = LosesAnswers(pool, lambda query, args: "INSERT INTO events" in query)
    ledger = await PgLedger.open(_as_pool(cut), pg_url, "b", worker_id="w")
    try:
        (job,) = await take_rows(ledger, 1)
        await ledger.append(RowAdmitted(row=job.row_id, line=job.line))
        await ledger.append(RenderIntent(row=job.row_id, preview_job="p"))
        assert cut.left == 0
        assert await _events(pg_url, job.row_id) == ["row", "render_intent"]
    finally:
        await ledger.aclose()


async def test_a_claim_whose_answer_was_lost_is_found_again(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """The claim was committed but its answer lost: the worker finds the row it owns without
    knowing it and works it (claimed once), instead of leaving it leased to nobody at work."""
    await submit_small(pool, tmp_path, 2)
    cut = LosesAnswers(pool, lambda query, args: "FOR UPDATE SKIP LOCKED" in query)
    ledger = await PgLedger.open(_as_pool(cut), pg_url, "b", worker_id="w")
    try:
        jobs = await take_rows(ledger, 2)
        assert cut.left == 0
        assert sorted(j.row_id for j in jobs) == ["row-000", "row-001"]
        claims = await pool.fetch("SELECT owner, claims FROM rows ORDER BY row_key")
        assert [(r["owner"], r["claims"]) for r in claims] == [("w", 1), ("w", 1)]
        for job in jobs:
            await ledger.append(RowAdmitted(row=job.row_id, line=job.line))  # held: fenced OK
    finally:
        await ledger.aclose()


async def test_a_render_slot_whose_answer_was_lost_is_found_by_its_token(
    pool: asyncpg.Pool,
) -> None:
    """The slot was taken but the answer lost: the take tried again finds it (no slot leaks,
    none is held twice), and giving it back frees it."""
    cut = LosesAnswers(pool, lambda query, args: "SET owner = $2" in query)
    db = Db(_as_pool(cut), RealClock())
    slots = PgSharedRenders(db, "acct", "w", RealClock(), max_renders=2, lease_s=30.0)
    assert await slots.take() == 0
    assert cut.left == 0
    held = "SELECT count(*) FROM render_slots WHERE owner IS NOT NULL"
    assert await pool.fetchval(held) == 1
    await slots.give_back()
    assert await pool.fetchval(held) == 0


async def test_a_superseded_claim_writes_nothing_though_the_owner_is_the_same(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """The row was claimed again since this worker's claim (its lease ran out and the row came
    back under the same worker id): the older claim's writes are refused (the generation is
    checked with the owner), and its hand-back leaves the newer claim alone."""
    await submit_small(pool, tmp_path, 1)
    ledger = await PgLedger.open(pool, pg_url, "b", worker_id="w")
    try:
        (job,) = await take_rows(ledger, 1)
        await pool.execute("UPDATE rows SET claims = claims + 1 WHERE row_key = $1", job.row_id)
        with pytest.raises(LeaseLost):
            await ledger.append(RenderIntent(row=job.row_id, preview_job="p"))
        assert await _events(pg_url, job.row_id) == []
        ledger.release(job.row_id)
        await ledger._leases.flush()
        assert await pool.fetchval("SELECT owner FROM rows WHERE row_key = $1", job.row_id) == "w"
    finally:
        await ledger.aclose()


class Stalls(RealClock):
    """The real clock, plus ``extra_s``: a process that stood still for that long."""

    extra_s = 0.0

    def now(self) -> float:
        return super().now() + self.extra_s


async def test_an_intent_answered_too_late_is_checked_again_before_the_render(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """The worker stood still a whole lease between writing the render intent and reading its
    answer, and another worker took the row meanwhile: ``append`` checks the lease again and
    raises ``LeaseLost``, so the render is never sent; the intent is there, so the other worker
    never renders the row either (it is ambiguous)."""
    await submit_small(pool, tmp_path, 1)
    lease_s = 5.0
    clock = Stalls()
    ledger = await PgLedger.open(pool, pg_url, "b", worker_id="w", lease_s=lease_s, clock=clock)
    try:
        (job,) = await take_rows(ledger, 1)

        async def meanwhile() -> None:
            await pool.execute(
                "UPDATE rows SET owner = 'thief', claims = claims + 1 WHERE row_key = $1",
                job.row_id,
            )
            clock.extra_s += lease_s

        async def after(query: str, args: tuple[Any, ...]) -> None:
            if any("render_intent" in str(a) for a in args):
                await meanwhile()

        original = ledger._db.pool
        ledger._db.pool = _as_pool(Meddles(original, after))
        with pytest.raises(LeaseLost):
            await ledger.append(RenderIntent(row=job.row_id, preview_job="p"))
        assert await _events(pg_url, job.row_id) == ["render_intent"]
        ledger._db.pool = original
    finally:
        await ledger.aclose()
