"""The PostgreSQL ledger's schema, its versions and migrations, and its connections.

The schema's version is ``SCHEMA_VERSION``, the number of ``MIGRATIONS``; the database keeps the
version it reached in ``orchestrator_schema``. Only ``orchestrator migrate --ledger URL`` changes
the schema (``migrate_ledger``): it creates it in an empty database, or applies the migrations
it lacks in order, in one transaction, under an advisory lock. Every other command checks the
version when it connects (``connect``) and refuses, in one line naming what to run, a database
that is older (`orchestrator migrate`) or newer (upgrade orchestrator: an older version would
misread it); a worker checks again on each heartbeat, so a migration under a running worker
stops it (``SchemaChanged``). A change of the ledger format (``records.LEDGER_FORMAT``) that
older versions would misread takes a migration too, even an empty one, so that workers of those
versions refuse the database instead of skipping what they do not know.

Tables:

================  ================================================================================
``batches``       one per ``orchestrator submit``: ``name``, ``flow``, the run record
                  (``record``, the encoded ``run`` event: manifest, digest, template, options)
                  and the variable ``columns`` in manifest order; ``accounts``: the names of
                  the accounts whose workers may render it (``submit --account``), NULL for any
``templates``     ``.pictai`` files by sha256 (``name``, ``content``, ``variables``): workers
                  render from these, not from files on the submitting machine
``rows``          a batch's rows: identity (``row_key``), ``line``, ``flow``, ``template_sha256``,
                  ``variables``, ``output``; ``status`` (pending, done, failed, ambiguous) kept in
                  step with the events; the claim: ``owner`` (a worker id), ``lease_until``,
                  ``account`` (whose jobs its job ids are: ``pg_limits.account_key``); ``claims``
                  (how often claimed), ``taken_from``/``taken_at`` (the last takeover)
``events``        append-only: every ledger event of every batch, in the JSONL ledger's shape
                  (``codec.encode``), ``row_key`` set for row events
``rates``         per account, when its next API request may be sent (``next_at``) and its
                  learned window guard (``guard_s``): every worker using that account takes
                  its turns here (``pg_limits``)
``render_slots``  per account, its renders in flight: a slot is held (``owner``,
                  ``lease_until``) from a render's request to its end, for a row (``batch_id``,
                  ``row_key``; ``taken_at``, ``hold_s``: a render's expected time), whose
                  taker takes it over (``pg_limits``)
================  ================================================================================

Times that decide leases are the database's (``clock_timestamp()``), never a worker's, so
workers with skewed clocks still agree on whose lease has expired.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from orchestrator.errors import ConfigError

MIGRATIONS: tuple[str, ...] = (
    # 1: batches, templates, rows, events, shared request turns
    """
    CREATE TABLE batches (
        id          bigserial PRIMARY KEY,
        name        text NOT NULL UNIQUE,
        flow        text NOT NULL,
        record      jsonb NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE TABLE templates (
        sha256      text PRIMARY KEY,
        name        text NOT NULL,
        content     bytea NOT NULL,
        variables   text[] NOT NULL
    );
    CREATE TABLE rows (
        batch_id        bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
        row_key         text NOT NULL,
        line            integer NOT NULL,
        flow            text NOT NULL,
        template_sha256 text REFERENCES templates (sha256),
        variables       jsonb NOT NULL,
        output          text NOT NULL,
        status          text NOT NULL DEFAULT 'pending',
        owner           text,
        account         text,
        lease_until     timestamptz,
        claims          integer NOT NULL DEFAULT 0,
        taken_from      text,
        taken_at        timestamptz,
        PRIMARY KEY (batch_id, row_key)
    );
    CREATE INDEX rows_pending ON rows (batch_id, line) WHERE status = 'pending';
    CREATE INDEX rows_owner ON rows (owner) WHERE owner IS NOT NULL;
    CREATE TABLE events (
        id          bigserial PRIMARY KEY,
        batch_id    bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
        row_key     text,
        body        jsonb NOT NULL
    );
    CREATE INDEX events_by_row ON events (batch_id, row_key, id);
    CREATE TABLE rates (
        account     text PRIMARY KEY,
        next_at     timestamptz NOT NULL
    );
    """,
    # 2: an account's render slots, shared by its workers
    """
    CREATE TABLE render_slots (
        account     text NOT NULL,
        slot        integer NOT NULL,
        owner       text,
        lease_until timestamptz,
        PRIMARY KEY (account, slot)
    );
    """,
    # 3: ledger format 2 (run records carry their format; new kinds ``choices``, ``retry_failed``):
    # the version alone makes workers of earlier releases, which skip events they do not know (a
    # batch's choices: its canary, its spend cap), refuse the database. And a batch's variable
    # columns in manifest order (``rows.variables`` is jsonb, which keeps no key order), so its
    # results.csv has the columns of a run directory's.
    """
    ALTER TABLE batches ADD COLUMN columns text[];
    """,
    # 4: the accounts a batch belongs to (``submit --account NAME``): only workers given one of
    # these names (``worker --account NAME``) claim its rows. NULL, as for every batch submitted
    # before: any account's workers may. The version alone keeps workers of earlier releases,
    # which would not look, off a database where batches are bound.
    """
    ALTER TABLE batches ADD COLUMN accounts text[];
    """,
    # 5: ledger format 3 (new kinds ``delivered`` and ``forgotten``, a row never rendered again;
    # a ``downloaded`` row with ``deliver`` is done
    # only once delivered): no change of tables; the version alone makes workers of earlier
    # releases, which would take such a row as done, refuse the database.
    """
    SELECT 1;
    """,
    # 6: an account's window guard, learned and shared by its workers (``pg_limits``): the
    # spacing of its turns is computed from it and from the limits each turn is taken under.
    # 0 for accounts whose turns were taken before: the first turn sets the worker's guard.
    # And the row whose render holds a render slot, since when, and how long its worker saw
    # renders hold one: a dead worker's slot is not free when its lease expires (the render
    # goes on at Pictory) but passes to the worker that takes the row over, or comes free once
    # the row is finished or the render must be over.
    """
    ALTER TABLE rates ADD COLUMN guard_s double precision NOT NULL DEFAULT 0;
    ALTER TABLE render_slots ADD COLUMN batch_id bigint, ADD COLUMN row_key text,
        ADD COLUMN taken_at timestamptz, ADD COLUMN hold_s double precision;
    """,
)
"""Migration N (1-based) brings the schema from version N-1 to N. Append, never edit."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this orchestrator works on: a database at any other is refused."""

TABLES = ("orchestrator_schema", "batches", "templates", "rows", "events", "rates", "render_slots")
"""Every table of the schema: ``migrate`` takes all privileges on them from ``PUBLIC`` each
time it runs, so only their owner (the role that migrated) and the roles it grants reach
customers' rows (docs/shared-ledger.md#who-can-read-it)."""

_LOCK_KEY = 7_316_221_901
"""The advisory lock that serialises migrations (any number unique to this tool)."""


class SchemaMismatch(ConfigError):
    """The database's schema is not at this orchestrator's version."""


class SchemaTooOld(SchemaMismatch):
    """The database holds no schema yet, or an older one: `orchestrator migrate` brings it here."""


class SchemaTooNew(SchemaMismatch):
    """The database was migrated by a newer orchestrator than this one."""


class SchemaChanged(SchemaMismatch):
    """The schema's version changed under a running worker (a migration): the worker stops."""


if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
"""A connection from the pool."""


async def migrate(conn: Conn, where: str = "the database") -> int:
    """Bring the schema to ``SCHEMA_VERSION``; returns the version it was at before (0: none).
    A newer one is refused (``SchemaTooNew``). ``where``: the database, for that message."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS orchestrator_schema (version integer NOT NULL)"
        )
        found = await conn.fetchval("SELECT max(version) FROM orchestrator_schema")
        before = int(found or 0)
        if before > SCHEMA_VERSION:
            raise _too_new(before, where)
        for version in range(before + 1, SCHEMA_VERSION + 1):
            if MIGRATIONS[version - 1].strip():
                await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO orchestrator_schema (version) VALUES ($1)", version)
        await conn.execute(f"REVOKE ALL ON TABLE {', '.join(TABLES)} FROM PUBLIC")
    return before


async def migrate_ledger(url: str, password: str | None) -> int:
    """``orchestrator migrate``: bring the database at ``url`` to ``SCHEMA_VERSION``; returns
    the version it was at before (0: it held no schema). The one way the schema changes."""
    pool = await connect(url, password, max_connections=1, check=False)
    try:
        async with pool.acquire() as conn:
            return await migrate(conn, safe_url(url))
    finally:
        await pool.close()


async def schema_version(conn: Conn) -> int:
    """The version the database's schema is at (0: it holds none)."""
    if not await conn.fetchval("SELECT to_regclass('orchestrator_schema') IS NOT NULL"):
        return 0
    return int(await conn.fetchval("SELECT max(version) FROM orchestrator_schema") or 0)


def check_version(found: int, where: str) -> None:
    """Refuse a database whose schema is at ``found``, unless it is ``SCHEMA_VERSION``."""
    if found > SCHEMA_VERSION:
        raise _too_new(found, where)
    if found == 0:
        raise SchemaTooOld(
            f"the ledger at {where} holds no orchestrator schema yet: run "
            f"`orchestrator migrate --ledger {where}`"
        )
    if found < SCHEMA_VERSION:
        raise SchemaTooOld(
            f"the ledger at {where} has orchestrator schema version {found}, older than this "
            f"orchestrator's ({SCHEMA_VERSION}): run `orchestrator migrate --ledger {where}`"
        )


def schema_changed(found: int, where: str) -> SchemaChanged:
    """What a worker says when the schema went from ``SCHEMA_VERSION`` to ``found`` under it."""
    action = (
        "upgrade orchestrator, then start the worker again"
        if found > SCHEMA_VERSION
        else f"run `orchestrator migrate --ledger {where}`, then start the worker again"
    )
    return SchemaChanged(
        f"the ledger at {where} went from orchestrator schema version {SCHEMA_VERSION} to "
        f"{found} while this worker ran; this worker stopped (its rows go to other workers "
        f"once their leases expire): {action}"
    )


def _too_new(found: int, where: str) -> SchemaTooNew:
    return SchemaTooNew(
        f"the ledger at {where} has orchestrator schema version {found}, newer than this "
        f"orchestrator reads ({SCHEMA_VERSION}): upgrade orchestrator"
    )


def safe_url(url: str) -> str:
    """``url`` without a password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def check_url(url: str) -> str:
    """A ``postgresql://`` URL without a password in it (the password comes from
    ``PGPASSWORD``), or ConfigError saying what to change."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"ledger URL {safe_url(url)!r}: expected postgresql://USER@HOST:PORT/DATABASE"
        )
    if parts.password is not None:
        raise ConfigError(
            f"ledger URL {safe_url(url)!r} holds a password; remove it from the URL and set "
            "PGPASSWORD in the environment instead (URLs end up in shell history and logs)"
        )
    return url


async def connect(
    url: str, password: str | None, *, max_connections: int = 4, check: bool = True
) -> asyncpg.Pool:
    """A pool on ``url``, its schema checked to be this version's (``check_version``; only
    ``migrate_ledger`` connects without). Errors name the URL without its password.

    asyncpg's own log (a pool retrying its connections, with tracebacks) is silenced: a lost
    database reaches the user as one line (``database_lost``), and one that comes back is
    simply used again."""
    _quiet_driver_log()
    try:
        pool = await asyncpg.create_pool(
            check_url(url),
            password=password,
            min_size=1,
            max_size=max_connections,
            command_timeout=60,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigError(f"cannot connect to the ledger at {safe_url(url)}: {exc}") from exc
    if not check:
        return pool
    try:
        async with pool.acquire() as conn:
            check_version(await schema_version(conn), safe_url(url))
    except BaseException:
        await pool.close()
        raise
    return pool


_LOST = (
    asyncpg.PostgresConnectionError,  # the connection went away, or cannot be made
    asyncpg.exceptions.OperatorInterventionError,  # the server is shutting down (admin, crash)
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.InterfaceError,  # "connection is closed" on a pooled connection
    ConnectionError,
    TimeoutError,
)


def database_lost(exc: BaseException) -> str | None:
    """When ``exc`` (or every exception in a group of them) says the database went away
    mid-run, one line saying so; None for anything else. The one place asyncpg's connection
    failures are recognised."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                walk(inner)
        else:
            leaves.append(e)

    walk(exc)
    if not leaves or not all(isinstance(e, _LOST) for e in leaves):
        return None
    first = leaves[0]
    return f"{type(first).__name__}: {first}".strip().rstrip(":")


def schema_change(exc: BaseException) -> SchemaChanged | None:
    """The ``SchemaChanged`` that stopped a worker, when ``exc`` is one or a group of exceptions
    (a task group's) holding one; None otherwise."""
    if isinstance(exc, SchemaChanged):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = schema_change(inner)
            if found is not None:
                return found
    return None


def _quiet_driver_log() -> None:
    driver = logging.getLogger("asyncpg")
    if not driver.handlers:
        driver.addHandler(logging.NullHandler())
        driver.propagate = False
    loop_log = logging.getLogger("asyncio")
    if _NOISE not in loop_log.filters:
        loop_log.addFilter(_NOISE)


class _LostConnectionNoise(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for a pooled connection's release
    that failed because the database went away: ``database_lost`` already says so once."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or database_lost(exc) is None


_NOISE = _LostConnectionNoise()
