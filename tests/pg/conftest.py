"""A real PostgreSQL for the shared ledger's tests: one server per test session, started from
Debian's binaries by ``benchmarks.local_pg`` (``scripts/ensure-postgresql`` installs them), and
a fresh database per test. Where no server can be started, every test here fails saying why:
a PostgreSQL ledger that was never exercised must not look tested."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest

from benchmarks import local_pg
from orchestrator.ledger.pg.schema import connect, migrate_ledger

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[local_pg.LocalPostgres]:
    try:
        server = local_pg.start()
    except local_pg.NoPostgres as exc:
        pytest.fail(f"no PostgreSQL server for the shared ledger's tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def empty_pg_url(pg_server: local_pg.LocalPostgres) -> str:
    """A new database on the session's server holding nothing, not even the schema."""
    return pg_server.create_database(f"test_{next(_numbers)}")


@pytest.fixture
def pg_url(empty_pg_url: str) -> str:
    """A new database, its schema created as `orchestrator migrate` creates it (every other
    command refuses a database without it)."""
    migrate_in_a_thread(empty_pg_url)
    return empty_pg_url


def migrate_in_a_thread(url: str) -> int:
    """``migrate_ledger`` (what `orchestrator migrate` runs) on ``url``, from synchronous code:
    on an event loop of its own, in a thread, so it never meets a test's loop."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, migrate_ledger(url, None)).result()


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool on ``pg_url``, the schema migrated, as a worker opens it."""
    pool = await connect(pg_url, None, max_connections=6)
    yield pool
    await pool.close()
