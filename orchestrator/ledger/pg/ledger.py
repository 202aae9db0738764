"""The shared ledger: a batch's events in PostgreSQL, worked on by any number of workers.

``PgLedger`` implements ``ledger.Ledger`` for one worker on one batch (``orchestrator worker``).
Schema and connections: ``pg_schema``; creating a batch and reading one back: ``pg_batches``.

Claims and leases. ``rows_to_work_on`` claims pending rows with ``SELECT ... FOR UPDATE SKIP
LOCKED`` (workers never wait on each other's claims) and marks them ``owner`` = this worker,
``lease_until`` = now + ``lease_s`` by the database's clock. A heartbeat renews every lease this
worker holds each ``lease_s / 3``. A worker that dies (SIGKILL, a lost machine) stops renewing;
once its leases expire, another worker claims those rows, folds their events, and goes on:

- a row with a ``render_job`` re-attaches to that job (polls it, downloads it);
- a row with a ``render_intent`` and no job becomes ``ambiguous`` (the render may exist);
- never a second render: the new owner sends a render only when no intent was recorded.

Accounts. Job ids belong to the Pictory account that made them, so a row is bound to the account
of the first worker that claimed it (``rows.account``): only workers of that account take it
over. Workers with other credentials work the batch's other rows at their own limits. Template
ids are per account too: each worker uploads the template once for its own.

Fencing. A claim increments the row's ``claims``: that number is the claim's generation, and
this worker keeps it for every row it has in flight. Every row event is written by one statement
that also checks this worker still owns the row under that generation (``stored``); when it
does not (its lease expired while it was stalled and another worker claimed the row, even if the
row came back to this worker since), nothing is written and ``LeaseLost`` is raised, so a
stalled worker can never record an intent, and so never send a render, for a row that is no
longer its own. A worker never claims a row it already has in flight, so one row is never
worked by two of its tasks. The render intent is the fence of the billable request: the client
writes it right before the request leaves, and when its answer came back too late to vouch for
the lease (``leases.FENCE_MARGIN``), the lease is checked again in the database before ``append``
returns. What this worker holds, and keeping it: ``leases``.

Durability. ``append`` returns once the statement is committed (autocommit), so the render
intent is in the database before the render request is sent.

The database going away (a restart, a cut connection). Every statement is tried again with
backoff until the database answers (``pool.Db``), so in-flight work carries on once it is back;
meanwhile nothing new is recorded, so no render is sent (its intent waits). After ``[ledger]
max_outage_s`` the worker stops (``LedgerUnreachable``). A restart is not a takeover: rows whose
lease ran out while the server was down are not taken from their owner until ``lease_s`` after
the server started, time for live workers to reconnect and renew. A claim whose answer was lost
is found again (the rows this worker owns but does not work on), so no row is left leased to a
worker that does not know it holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import asyncpg

from orchestrator.clock import Clock, RealClock
from orchestrator.errors import LeaseLost, RunDirError
from orchestrator.files import sync_files, writing
from orchestrator.input.rows import RowJob
from orchestrator.input.template import Template
from orchestrator.ledger.codec import decode, encode
from orchestrator.ledger.pg.accounts import choose_batch
from orchestrator.ledger.pg.batches import batch_snapshot, retry_failed_rows
from orchestrator.ledger.pg.leases import Leases
from orchestrator.ledger.pg.limits import PgSharedRate, PgSharedRenders
from orchestrator.ledger.pg.pool import (
    DEFAULT_MAX_OUTAGE_S,
    MAX_BACKOFF_S,
    Db,
    LedgerUnreachable,
    database_away,
)
from orchestrator.ledger.pg.schema import (
    SCHEMA_VERSION,
    SchemaChanged,
    safe_url,
    schema_changed,
    schema_version,
)
from orchestrator.ledger.pg.stored import fold_events, write_batch_event, write_row_event
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState, SharedLimits
from orchestrator.ledger.records import Event, RenderIntent, RetryFailed, RowEvent, TemplateUploaded
from orchestrator.ledger.row_state import RowState

DEFAULT_LEASE_S = 30.0
"""How long a claim lasts without a heartbeat: the longest a dead worker's rows wait."""
DEFAULT_CLAIM_BATCH = 1
"""Rows claimed per query: one keeps the rows spread evenly over the workers."""
DEFAULT_IDLE_POLL_S = 1.0
"""How often a worker with nothing to claim looks again (other workers' rows may come free)."""


def new_worker_id() -> str:
    """``host:pid:random``: unique per worker process, readable in ``status``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claimed row, as the ``rows`` table holds it."""

    row_key: str
    line: int
    flow: str
    template_sha256: str | None
    variables: dict[str, str]
    output: str
    taken_from: str | None
    claim: int
    """The claim's generation (``rows.claims`` after it): every write for the row checks it."""


class PgLedger:
    """``ledger.Ledger`` for one worker on one batch. Open with ``PgLedger.open``."""

    def __init__(
        self,
        db: Db,
        url: str,
        batch_id: int,
        state: LedgerState,
        *,
        worker_id: str,
        lease_s: float,
        claim_batch: int,
        idle_poll_s: float,
        clock: Clock,
        account: str,
        statuses: tuple[str, ...],
    ) -> None:
        self._db = db
        self._statuses = statuses
        self.account = account
        self._url = url
        self.batch_id = batch_id
        self._state = state
        self.worker_id = worker_id
        self.lease_s = lease_s
        self._claim_batch = claim_batch
        self._idle_poll_s = idle_poll_s
        self._clock = clock
        self._templates: dict[str, Template] = {}
        self._leases = Leases(db, batch_id, worker_id, lease_s)
        self._heartbeat: asyncio.Task[None] | None = None
        self._owner: asyncio.Task[object] | None = None
        """The task that opened the ledger: the worker, which a schema change stops."""
        self._stopped: SchemaChanged | LedgerUnreachable | None = None
        self._also_renew: list[Callable[[], Awaitable[None]]] = []
        self._only: list[str] | None = None
        self.taken_over: list[tuple[str, str]] = []
        """``(row, previous owner)`` of every row this worker took from another."""

    @classmethod
    async def open(
        cls,
        pool: asyncpg.Pool,
        url: str,
        batch: str | None = None,
        *,
        worker_id: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        claim_batch: int = DEFAULT_CLAIM_BATCH,
        idle_poll_s: float = DEFAULT_IDLE_POLL_S,
        clock: Clock | None = None,
        account: str = "default",
        account_name: str | None = None,
        rerender_ambiguous: bool = False,
        max_outage_s: float = DEFAULT_MAX_OUTAGE_S,
    ) -> PgLedger:
        """The batch named ``batch`` (default: the oldest with rows still pending, else the
        oldest, whose rows are all finished: the worker ends at once), among those a worker of
        ``account_name`` may render (``accounts.choose_batch``: a batch bound to other accounts
        is refused by name, never opened). ``rerender_ambiguous``:
        also claim ambiguous rows (the render stage renders them again, by the user's choice;
        it may bill twice). ``max_outage_s``: how long a statement is tried again while the
        database is away before the worker stops. Loads the batch's events that are not a row's
        (run sessions, templates, the canary)."""
        async with pool.acquire() as conn:
            batch_id = (await choose_batch(conn, batch, account_name, safe_url(url))).batch_id
            state = LedgerState()
            records = await conn.fetch(
                "SELECT body FROM events WHERE batch_id = $1 AND row_key IS NULL ORDER BY id",
                batch_id,
            )

        def keep(event: Event) -> None:
            if not isinstance(event, TemplateUploaded):
                state.apply(event)  # template ids are per account: each worker uploads its own

        await fold_events(pool, batch_id, records, keep)
        clock = clock or RealClock()
        db = Db(
            pool,
            clock,
            max_outage_s=max_outage_s,
            max_backoff_s=min(MAX_BACKOFF_S, lease_s / 4),
            where=safe_url(url),
        )
        ledger = cls(
            db,
            url,
            batch_id,
            state,
            worker_id=worker_id or new_worker_id(),
            lease_s=lease_s,
            claim_batch=claim_batch,
            idle_poll_s=idle_poll_s,
            clock=clock,
            account=account,
            statuses=("pending", "ambiguous") if rerender_ambiguous else ("pending",),
        )
        ledger._owner = asyncio.current_task()
        ledger._heartbeat = asyncio.create_task(ledger._beat())
        return ledger

    # ---- the Ledger protocol ------------------------------------------------------------------

    @property
    def state(self) -> LedgerState:
        return self._state

    @property
    def location(self) -> str:
        return f"{safe_url(self._url)} (batch {self.batch_id})"

    async def append(self, event: Event, files: Sequence[Path] = ()) -> None:
        """Record ``event``; returns once committed, ``files`` made durable first
        (``files.sync_files``). Row events only while this worker holds the row's claim (else
        ``LeaseLost``, and nothing is written); a render intent only once the lease is known to
        hold (module docstring: the fence)."""
        if files:
            with writing(files[0].parent):
                await anyio.to_thread.run_sync(sync_files, files)
        event = replace(event, ts=round(self._clock.wall_s(), 3))
        self._state.apply(event)
        body = json.dumps(encode(event), separators=(",", ":"), ensure_ascii=False)
        if not isinstance(event, RowEvent):
            await write_batch_event(self._db, self.batch_id, body)
            return
        claim = self._leases.held.get(event.row)
        if claim is None:  # not claimed by this worker, or dropped: nothing to write for it
            raise LeaseLost(event.row, self.worker_id)
        status = self._state.rows.get(event.row)
        asked_at = self._clock.now()
        written = await write_row_event(
            self._db,
            self.batch_id,
            event.row,
            body,
            owner=self.worker_id,
            claim=claim,
            status=status.status if status is not None else "pending",
            lease_s=self.lease_s,
        )
        if not written:
            raise LeaseLost(event.row, self.worker_id)
        if isinstance(event, RenderIntent):
            await self._leases.vouch(event.row, claim, asked_at, self._clock)

    async def rows_to_work_on(self, only: frozenset[str] | None = None) -> AsyncIterator[RowJob]:
        """Claim rows until none is left pending; wait while others hold the rest (a dead
        worker's rows come free when its leases expire). ``only``: claim just these rows."""
        self._only = sorted(only) if only is not None else None
        while True:
            await self._leases.flush()
            claimed = await self._claim()
            if claimed:
                for row in claimed:
                    self._leases.hold(row.row_key, row.claim)
                    yield await self._job(row)
                continue
            if not await self._others_pending():
                return
            await self._clock.sleep(self._idle_poll_s)

    def shared_limits(
        self, *, max_rps: float, max_per_minute: float | None, max_renders: int
    ) -> SharedLimits | None:
        renders = PgSharedRenders(
            self._db,
            self.account,
            self.worker_id,
            self._clock,
            max_renders=max_renders,
            lease_s=self.lease_s,
            batch_id=self.batch_id,
        )
        self.on_heartbeat(renders.renew)
        rate = PgSharedRate(
            self._db, self.account, self._clock, max_rps=max_rps, max_per_minute=max_per_minute
        )
        return SharedLimits(rate=rate, renders=renders)

    async def snapshot(self) -> BatchSnapshot:
        return await self._db.run_pooled(lambda _: batch_snapshot(self._db.pool, self.batch_id))

    async def retry_failed(self) -> None:
        event = RetryFailed(ts=round(self._clock.wall_s(), 3))
        self._state.apply(event)
        await self._db.run_pooled(lambda _: retry_failed_rows(self._db.pool, self.batch_id, event))

    def on_heartbeat(self, renew: Callable[[], Awaitable[None]]) -> None:
        """Also call ``renew`` on every heartbeat (other leases this worker holds: its render
        slots, ``pg_limits.PgSharedRenders``)."""
        self._also_renew.append(renew)

    def release(self, row_id: str) -> None:
        state = self._state.rows.get(row_id)
        self._leases.release(row_id, state.status if state is not None else "pending")
        self._state.rows.release(row_id)

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        try:
            await self._leases.hand_back(once=True)
        except Exception as exc:  # no database: the rows come free when their leases expire
            if not database_away(exc) and not isinstance(exc, asyncpg.PostgresError):
                raise
        self._state.rows.close()
        if self._stopped is not None:
            raise self._stopped

    # ---- claims and leases --------------------------------------------------------------------

    async def _claim(self) -> list[Claimed]:
        """Claim up to ``claim_batch`` rows. A try whose connection failed may have claimed rows
        whose answer was lost: the next try first takes back what this worker owns but does
        not work on (``Leases.orphans``)."""

        query = """
            WITH c AS MATERIALIZED (
                SELECT row_key, owner FROM rows
                WHERE batch_id = $1 AND status = ANY($6::text[])
                  AND (owner IS NULL OR (lease_until < clock_timestamp()
                       AND pg_postmaster_start_time()
                           < clock_timestamp() - make_interval(secs => $3)))
                  AND (account IS NULL OR account = $5)
                  AND ($7::text[] IS NULL OR row_key = ANY($7::text[]))
                  AND NOT (row_key = ANY($8::text[]))
                ORDER BY line
                LIMIT $4
                FOR UPDATE SKIP LOCKED
            )
            UPDATE rows r SET owner = $2, account = $5,
                lease_until = clock_timestamp() + make_interval(secs => $3),
                claims = r.claims + 1,
                taken_from = CASE WHEN c.owner IS NOT NULL AND c.owner <> $2
                                  THEN c.owner ELSE r.taken_from END,
                taken_at = CASE WHEN c.owner IS NOT NULL AND c.owner <> $2
                                THEN clock_timestamp() ELSE r.taken_at END
            FROM c
            WHERE r.batch_id = $1 AND r.row_key = c.row_key
            RETURNING r.row_key, r.line, r.flow, r.template_sha256, r.variables, r.output,
                      r.claims, c.owner AS previous
            """
        args = (
            self.batch_id,
            self.worker_id,
            self.lease_s,
            self._claim_batch,
            self.account,
            list(self._statuses),
            self._only,
            list(self._leases.held),
        )

        async def attempt(retrying: bool) -> list[asyncpg.Record]:
            if retrying:
                orphans = await self._leases.orphans()
                if orphans:
                    return orphans
            async with self._db.connection() as conn:
                return await conn.fetch(query, *args)

        records = await self._db.run_pooled(attempt)
        claimed = [
            Claimed(
                row_key=r["row_key"],
                line=r["line"],
                flow=r["flow"],
                template_sha256=r["template_sha256"],
                variables=json.loads(r["variables"]),
                output=r["output"],
                taken_from=r["previous"] if r["previous"] != self.worker_id else None,
                claim=r["claims"],
            )
            for r in sorted(records, key=lambda r: r["line"])
        ]
        for row in claimed:
            if row.taken_from is not None:
                self.taken_over.append((row.row_key, row.taken_from))
        return claimed

    async def _job(self, row: Claimed) -> RowJob:
        """The row as a ``RowJob``, its state folded afresh from every event recorded for it
        (by any worker)."""
        records = await self._db.fetch(
            "SELECT body FROM events WHERE batch_id = $1 AND row_key = $2 ORDER BY id",
            self.batch_id,
            row.row_key,
        )
        fresh = LedgerState()
        await fold_events(self._db.pool, self.batch_id, records, fresh.apply)
        live = self._state.rows.take(row.row_key)
        folded = fresh.rows.get(row.row_key) or RowState(row=row.row_key)
        if folded.status == "failed":
            await self._refresh_retry_round()
        _copy_into(live, folded)
        fresh.rows.close()
        template = await self._template(row.template_sha256) if row.template_sha256 else None
        return RowJob(
            row_id=row.row_key,
            line=row.line,
            variables=row.variables,
            template=template,
            output_name=row.output,
            flow=row.flow,
            manifest=None,
        )

    async def _refresh_retry_round(self) -> None:
        """A failed row in hand may have been put back by a ``--retry-failed`` recorded after
        this worker opened the batch: read the latest one, so the row is retried (once)."""
        body = await self._db.fetchval(
            "SELECT body FROM events WHERE batch_id = $1 AND row_key IS NULL AND body->>'e' = $2 "
            "ORDER BY id DESC LIMIT 1",
            self.batch_id,
            RetryFailed.name,
        )
        if body is None:
            return
        event = decode(json.loads(body))
        if isinstance(event, RetryFailed) and (self._state.retry_round_at or 0.0) < event.ts:
            self._state.apply(event)

    async def _template(self, sha256: str) -> Template:
        template = self._templates.get(sha256)
        if template is None:
            record = await self._db.fetchrow(
                "SELECT name, content, variables FROM templates WHERE sha256 = $1", sha256
            )
            if record is None:
                raise RunDirError(f"{self.location}: template {sha256} is missing")
            template = self._templates[sha256] = Template(
                path=Path(record["name"]),
                content=bytes(record["content"]),
                sha256=sha256,
                variables=frozenset(record["variables"]),
            )
        return template

    async def _others_pending(self) -> bool:
        """Whether any row this worker could take is still pending in other hands (a dead
        worker's rows come free when its lease expires)."""
        found = await self._db.fetchval(
            """
            SELECT EXISTS (
                SELECT 1 FROM rows WHERE batch_id = $1 AND status = ANY($4::text[])
                  AND owner IS DISTINCT FROM $2 AND (account IS NULL OR account = $3)
                  AND ($5::text[] IS NULL OR row_key = ANY($5::text[]))
            )
            """,
            self.batch_id,
            self.worker_id,
            self.account,
            list(self._statuses),
            self._only,
        )
        return bool(found)

    async def _beat(self) -> None:
        """Renew this worker's leases every ``lease_s / 3`` (so two beats may be lost), then
        check that the schema is still at this version's. Statements wait for an absent
        database (``pool.Db``). Two things stop the worker: the schema at another version
        (`orchestrator migrate` ran under it), or the database away for ``max_outage_s``.
        Then the heartbeat cancels the task that opened the ledger, whose ``aclose`` raises
        why (``SchemaChanged``, ``LedgerUnreachable``)."""
        while True:
            await self._clock.sleep(self.lease_s / 3)
            try:
                await self._leases.renew()
                for renew in self._also_renew:
                    await renew()
                found = await self._db.run(lambda conn, _: schema_version(conn))
            except LedgerUnreachable as exc:
                self._stop(exc)
                return
            except asyncpg.PostgresError:
                continue  # e.g. a deadlock or a cancelled statement: the next beat tries again
            if found != SCHEMA_VERSION:
                self._stop(schema_changed(found, safe_url(self._url)))
                return

    def _stop(self, why: SchemaChanged | LedgerUnreachable) -> None:
        self._stopped = why
        if self._owner is not None:
            self._owner.cancel()


def _copy_into(target: RowState, source: RowState) -> None:
    for f in dataclasses.fields(RowState):
        setattr(target, f.name, getattr(source, f.name))
