"""A connection pool on the shared ledger's database (``open_pool``, password from ``PGPASSWORD``;
see ``schema.connect``), and ``Db``: the pool's statements tried again while the database is away.

When PostgreSQL restarts, or a connection is cut, asyncpg raises (seen against a real server,
``tests/pg/test_faults.py``): ``ConnectionDoesNotExistError`` for a statement in flight ("connection
was closed in the middle of operation", also what ``pg_terminate_backend`` gives),
``CannotConnectNowError`` while the server shuts down or starts up, ``ConnectionRefusedError``
while it is down, ``TimeoutError`` when a connection hangs, and now and then
``InternalClientError`` from a connection cut half-way through a statement (asyncpg#1069). The
pool itself recovers: a holder whose connection closed opens a new one on its next ``acquire``.
So a statement that failed that way is closed with its connection and tried again, with backoff,
until the database answers (``Db.run``); after
``max_outage_s`` of trying, ``LedgerUnreachable`` stops the worker with one line (``cli``: exit 1).
Anything else (a wrong statement, a constraint) is raised at once.

A statement whose connection died may or may not have been committed. Every caller says what a
second try must do (``Db.run`` passes ``retrying``): row events are written once (``stored``),
claims and render slots find what a lost answer took (``ledger``, ``limits``); the rest is
idempotent.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import asyncpg

from orchestrator.clock import Clock
from orchestrator.config import ledger_password
from orchestrator.errors import ConfigError
from orchestrator.ledger.pg.schema import Conn, connect

T = TypeVar("T")

DEFAULT_MAX_OUTAGE_S = 300.0
"""How long a statement is tried again while the database is away before the worker stops
(``[ledger] max_outage_s``)."""
FIRST_BACKOFF_S = 0.05
"""The first pause before a statement is tried again; each next doubles, to ``max_backoff_s``."""
MAX_BACKOFF_S = 2.0
"""The longest pause between two tries (shorter with a short lease: see ``Db``)."""

_AWAY: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError (a hung connection, a command timeout)
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08: the connection is gone or cannot be made
    asyncpg.exceptions.AdminShutdownError,  # 57P01: the server is stopping (fast shutdown, kill)
    asyncpg.exceptions.CrashShutdownError,  # 57P02: another backend crashed, the server resets
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up, shutting down, recovering
    asyncpg.exceptions.TooManyConnectionsError,  # 53300: every slot taken (clients reconnecting)
    # A connection the server cut mid-statement sometimes leaves asyncpg's protocol half-way:
    # "cannot switch to state 12; another operation (2) is in progress" (MagicStack/asyncpg#1069,
    # seen here on a restart). That connection is unusable: it is closed, and the statement is
    # tried again on another.
    asyncpg.exceptions.InternalClientError,
)


OPEN_TRIES = 5
"""How many times ``open_pool`` opens the pool when the server cuts its connections meanwhile."""


def _cut_mid_way(exc: BaseException) -> bool:
    """The server is there but dropped us (``pg_terminate_backend``, a restart under way): the
    database is away (``database_away``) for another reason than a connection that could not
    be made (``OSError``: refused, unreachable, a wrong name), which is answered at once.
    ``schema.connect`` wraps the pool's own failure in a ConfigError."""
    found = exc.__cause__ if isinstance(exc, ConfigError) else exc
    return found is not None and not isinstance(found, OSError) and database_away(found)


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached, or the connection broke (try
    again later, on another connection), rather than that the statement was wrong. The one
    place the pg ledger's retries recognise asyncpg's failures."""
    if isinstance(exc, _AWAY):
        return True
    # A closed connection used again ("connection is closed"), or a transaction or cursor left
    # on one ("cannot call Transaction.__aexit__(): the underlying connection is closed", when
    # the server cut it inside ``async with conn.transaction()``); other InterfaceErrors are
    # misuse (bad input, a closed pool).
    said = str(exc)
    return type(exc) is asyncpg.InterfaceError and (
        said == "connection is closed" or said.endswith("the underlying connection is closed")
    )


class LedgerUnreachable(ConnectionError):
    """The database stayed away for ``max_outage_s``: the worker stops (its rows go to other
    workers once their leases expire). A ``ConnectionError``, so ``schema.database_lost`` names
    it in the worker's one line."""


class Db:
    """The pool's statements, each tried again while the database is away (module docstring).

    ``max_outage_s``: how long one statement keeps trying before ``LedgerUnreachable``.
    Pauses between tries double from ``FIRST_BACKOFF_S`` up to ``max_backoff_s`` (with jitter,
    so workers coming back together do not knock at once). A connection a try failed on is
    closed, never handed back to the pool (it may be broken half-way through a statement)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        max_outage_s: float = DEFAULT_MAX_OUTAGE_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        where: str = "the ledger",
        rng: random.Random | None = None,
    ) -> None:
        self.pool = pool
        self._clock = clock
        self.max_outage_s = max_outage_s
        self._max_backoff_s = max(FIRST_BACKOFF_S, max_backoff_s)
        self._where = where
        self._rng = rng or random.Random()
        self.retries = 0
        """Statements tried again so far (a measure of outages, for tests and benchmarks)."""

    async def run(self, attempt: Callable[[Conn, bool], Awaitable[T]]) -> T:
        """``attempt(conn, retrying)`` on a connection of the pool until it returns; ``retrying``
        is False the first time, True after a try that failed with the database away (which
        may have been committed or not)."""

        async def on_a_connection(retrying: bool) -> T:
            async with self.connection() as conn:
                return await attempt(conn, retrying)

        return await self.run_pooled(on_a_connection)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A connection of the pool, closed instead of handed back when the database went away
        under it (it may be broken half-way through a statement): the pool opens a new one."""
        async with self.pool.acquire() as conn:
            try:
                yield conn
            except Exception as exc:
                if database_away(exc):
                    _discard(conn)
                raise

    async def run_pooled(self, attempt: Callable[[bool], Awaitable[T]]) -> T:
        """``attempt(retrying)``, which takes its connections itself (from ``connection()``, or
        the pool), until it returns (as ``run``)."""
        retrying = False
        away_since: float | None = None
        backoff_s = FIRST_BACKOFF_S
        while True:
            try:
                return await attempt(retrying)
            except Exception as exc:
                if not database_away(exc):
                    raise
                now = self._clock.now()
                if away_since is None:
                    away_since = now
                elif now - away_since >= self.max_outage_s:
                    last = f"{type(exc).__name__}: {exc}".rstrip(": ")
                    raise LedgerUnreachable(
                        f"no answer from {self._where} for {now - away_since:.0f} s "
                        f"([ledger] max_outage_s); last: {last}"
                    ) from exc
                retrying = True
                self.retries += 1
                await self._clock.sleep(backoff_s * self._rng.uniform(0.5, 1.0))
                backoff_s = min(backoff_s * 2, self._max_backoff_s)

    async def execute(self, query: str, *args: Any) -> str:
        return await self.run(lambda conn, _: conn.execute(query, *args))

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self.run(lambda conn, _: conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self.run(lambda conn, _: conn.fetchrow(query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.run(lambda conn, _: conn.fetchval(query, *args))


def _discard(conn: Conn) -> None:
    """Close ``conn`` rather than hand it back to the pool, which then opens a new one (leaving
    the ``acquire`` block is then a no-op). A connection the server closed has already gone
    back: asyncpg detached it (using it raises ``InterfaceError``), nothing to do."""
    with contextlib.suppress(asyncpg.InterfaceError):
        if not conn.is_closed():
            conn.terminate()


@asynccontextmanager
async def open_pool(url: str, *, max_connections: int) -> AsyncIterator[asyncpg.Pool]:
    """A pool on ``url``, opened again (``OPEN_TRIES`` at most) when the server cut a connection
    it had accepted while the pool was being opened; a server that cannot be reached is
    answered at once (``schema.connect``'s one line)."""
    password = ledger_password()
    tries = 0
    while True:
        tries += 1
        try:
            pool = await connect(
                url,
                password.get_secret_value() if password else None,
                max_connections=max_connections,
            )
            break
        except Exception as exc:
            if tries >= OPEN_TRIES or not _cut_mid_way(exc):
                raise
            await anyio.sleep(FIRST_BACKOFF_S * 2 ** (tries - 1))
    try:
        yield pool
    finally:
        await pool.close()
