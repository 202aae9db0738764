"""A real PostgreSQL for the shared ledger's tests: one server per test session, started from
Debian's binaries by ``orchestrator.ledger.pg.local`` (``scripts/ensure-postgresql`` installs
them), and a fresh database per test. Where no server can be started, every test here fails
saying why: a PostgreSQL ledger that was never exercised must not look tested."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from e2e.helpers import write_batch

from orchestrator.input.row import DEFAULT_OPTIONS
from orchestrator.input.rows import RowJob
from orchestrator.ledger.pg import local as local_pg
from orchestrator.ledger.pg.batches import submit_batch
from orchestrator.ledger.pg.ledger import PgLedger
from orchestrator.ledger.pg.schema import connect, migrate_ledger
from orchestrator.ledger.records import RunStarted

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


class OwnServer:
    """A PostgreSQL of a test module's own (not the session's), to stop and start again under
    workers: ``down()`` is ``pg_ctl stop -m fast`` (what a restart or an administrator's shutdown
    does to connected clients), ``up()`` starts it again on the same port."""

    def __init__(self, server: local_pg.LocalPostgres) -> None:
        self.server = server
        self.running = True

    def url(self, database: str) -> str:
        return self.server.url(database)

    def create_database(self, name: str) -> str:
        return self.server.create_database(name)

    def down(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")
        self.running = False

    def up(self) -> None:
        options = (
            f"-p {self.server.port} -k {self.server.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=on -c max_connections=200"
        )
        log = str(self.server.folder / "server.log")
        self._pg_ctl("-l", log, "-o", options, "-w", "start")
        self.running = True

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.server.bindir / "pg_ctl"), "-D", str(self.server.folder / "data")]
        if self.server.as_user is not None:
            command = ["runuser", "-u", self.server.as_user, "--", *command]
        subprocess.run([*command, *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    """A server for this test module alone, which its tests may stop and start."""
    try:
        server = local_pg.start()
    except local_pg.NoPostgres as exc:
        pytest.fail(f"no PostgreSQL server for the shared ledger's tests: {exc}", pytrace=False)
    try:
        yield OwnServer(server)
    finally:
        server.stop()


@pytest.fixture
def restartable(own_server: OwnServer) -> Iterator[OwnServer]:
    """The module's own server, running again after each test, whatever the test did to it."""
    yield own_server
    if not own_server.running:
        own_server.up()


async def submit_small(
    pool: asyncpg.Pool,
    tmp_path: Path,
    rows: int,
    *,
    name: str = "b",
    accounts: list[str] | None = None,
) -> None:
    """Batch ``name``: ``rows`` rows of the e2e sample, submitted at time 0 (bound to
    ``accounts``, if given)."""
    batch = write_batch(tmp_path, rows)
    await submit_batch(
        pool,
        name,
        RunStarted(manifest=str(batch["manifest"])),
        batch["manifest"],
        batch["template"],
        "template",
        DEFAULT_OPTIONS,
        now_s=0.0,
        accounts=accounts,
    )


async def take_rows(ledger: PgLedger, n: int) -> list[RowJob]:
    """The first ``n`` rows ``ledger`` claims for this worker."""
    jobs: list[RowJob] = []
    async for job in ledger.rows_to_work_on():
        jobs.append(job)
        if len(jobs) == n:
            break
    return jobs
