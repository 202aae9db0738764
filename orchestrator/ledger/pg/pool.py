"""A connection pool on the shared ledger's database, closed when done (password from
``PGPASSWORD``; see ``schema.connect``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from orchestrator.config import ledger_password
from orchestrator.ledger.pg.schema import connect


@asynccontextmanager
async def open_pool(url: str, *, max_connections: int) -> AsyncIterator[asyncpg.Pool]:
    password = ledger_password()
    pool = await connect(
        url,
        password.get_secret_value() if password else None,
        max_connections=max_connections,
    )
    try:
        yield pool
    finally:
        await pool.close()
