"""The PostgreSQL ledger's schema, created and migrated by the tool itself, and its connections.

Migrations are numbered and applied in order, each in its own transaction, under an advisory
lock so that workers starting together migrate once. ``orchestrator_schema`` holds the version
reached. A database at a newer version than this tool knows is refused (an older worker would
misread it).

Tables:

================  ================================================================================
``batches``       one per ``orchestrator submit``: ``name``, ``flow`` and the run record
                  (``record``, the encoded ``run`` event: manifest, digest, template, options)
``templates``     ``.pictai`` files by sha256 (``name``, ``content``, ``variables``): workers
                  render from these, not from files on the submitting machine
``rows``          a batch's rows: identity (``row_key``), ``line``, ``flow``, ``template_sha256``,
                  ``variables``, ``output``; ``status`` (pending, done, failed, ambiguous) kept in
                  step with the events; the claim: ``owner`` (a worker id), ``lease_until``,
                  ``account`` (whose jobs its job ids are: ``pg_limits.account_key``); ``claims``
                  (how often claimed), ``taken_from``/``taken_at`` (the last takeover)
``events``        append-only: every ledger event of every batch, in the JSONL ledger's shape
                  (``records.encode``), ``row_key`` set for row events
``rates``         per account, when its next API request may be sent: every worker using that
                  account takes its turns here (``pg_limits``)
``render_slots``  per account, its renders in flight: a slot is held (``owner``,
                  ``lease_until``) from a render's request to its end (``pg_limits``)
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
)
"""Migration N (1-based) brings the schema from version N-1 to N. Append, never edit."""

_LOCK_KEY = 7_316_221_901
"""The advisory lock that serialises migrations (any number unique to this tool)."""


class SchemaTooNew(ConfigError):
    """The database was migrated by a newer orchestrator than this one."""


if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
"""A connection from the pool."""


async def migrate(conn: Conn) -> int:
    """Bring the schema to ``len(MIGRATIONS)``; returns the version it was at before."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS orchestrator_schema (version integer NOT NULL)"
        )
        found = await conn.fetchval("SELECT max(version) FROM orchestrator_schema")
        before = int(found or 0)
        if before > len(MIGRATIONS):
            raise SchemaTooNew(
                f"the database's orchestrator schema is version {before}, newer than this "
                f"version of orchestrator knows ({len(MIGRATIONS)}); upgrade orchestrator"
            )
        for version in range(before + 1, len(MIGRATIONS) + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO orchestrator_schema (version) VALUES ($1)", version)
    return before


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


async def connect(url: str, password: str | None, *, max_connections: int = 4) -> asyncpg.Pool:
    """A pool on ``url``, the schema migrated. Errors name the URL without its password.

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
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
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
