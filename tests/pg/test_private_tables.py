"""The shared ledger's tables are their owner's (issue 32): ``orchestrator migrate`` takes every
privilege on them from ``PUBLIC``, also from a database where someone granted one, so another
role of the server reads no customer's row unless the owner grants it (docs/shared-ledger.md)."""

from __future__ import annotations

import asyncpg
import pytest

from orchestrator.ledger.pg.schema import TABLES

from .conftest import migrate_in_a_thread


async def test_migrate_takes_every_privilege_from_public(pg_url: str) -> None:
    """A table granted to PUBLIC (by hand, or by default privileges) is private again after
    ``migrate``: another role is refused reading it; granted to that role, it reads it."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("DROP ROLE IF EXISTS someone_else")
        await conn.execute("CREATE ROLE someone_else")
        await conn.execute("GRANT SELECT ON events, rows, batches TO PUBLIC")
        await conn.execute("SET ROLE someone_else")
        assert await conn.fetchval("SELECT count(*) FROM events") == 0  # open to anyone
        await conn.execute("RESET ROLE")
    finally:
        await conn.close()
    migrate_in_a_thread(pg_url)
    conn = await asyncpg.connect(pg_url)
    try:
        public = await conn.fetch(
            "SELECT c.relname FROM pg_class c, aclexplode(c.relacl) a "
            "WHERE c.relname = ANY($1::text[]) AND a.grantee = 0",
            list(TABLES),
        )
        assert public == []
        await conn.execute("SET ROLE someone_else")
        for table in ("events", "rows", "batches"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(f"SELECT count(*) FROM {table}")
        await conn.execute("RESET ROLE")
        await conn.execute("GRANT SELECT ON events TO someone_else")  # the documented grant
        await conn.execute("SET ROLE someone_else")
        assert await conn.fetchval("SELECT count(*) FROM events") == 0
        await conn.execute("RESET ROLE")
        await conn.execute("REVOKE ALL ON events FROM someone_else")
        await conn.execute("DROP ROLE someone_else")
    finally:
        await conn.close()
