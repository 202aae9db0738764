"""``orchestrator forget --ledger URL``: a customer's values leave every table of the shared
ledger (its events redacted in place in one transaction, its ``rows`` values replaced) and the
worker's folder, while the row stays done: a worker on the batch renders nothing again."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from e2e.helpers import read_results, run_cli
from e2e.test_forget import KEPT, PLANTED, _batch, _holding

TIMEOUT_S = 120.0


async def _read_tables(conn: Any) -> str:
    texts = []
    for table in ("batches", "templates", "rows", "events", "rates", "render_slots"):
        found = await conn.fetch(f"SELECT t::text AS row FROM {table} t")
        texts += [r["row"] for r in found]
    return "\n".join(texts)


def _tables(url: str) -> str:
    """Every row of every table of ours, as one text."""

    async def read() -> str:
        conn = await asyncpg.connect(url)
        try:
            return await _read_tables(conn)
        finally:
            await conn.close()

    return anyio.run(read)


def test_forget_on_a_shared_batch_erases_every_table_and_the_row_stays_done(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """After a worker finished the batch, ``forget --ledger URL --batch B ID --out W`` cleans the
    row's jobs at Pictory (only its own, recorded ``cleaned``), leaves none of the customer's
    values in any table nor under W (results.csv written again); another worker on the batch
    renders nothing."""
    sim = make_sim("test")
    env = sim.env()
    batch = _batch(tmp_path)
    shared = ["--ledger", pg_url, "--batch", "b"]
    submit = ["submit", str(batch["manifest"]), "--template", str(batch["template"])]
    assert run_cli([*submit, "--ledger", pg_url, "--name", "b"], env).returncode == 0
    out = tmp_path / "w"
    worker = ["worker", *shared, "--out", str(out), "--config", str(batch["config"])]
    done = run_cli(worker, env, TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert run_cli(["report", str(out), *shared], env).returncode == 0
    assert PLANTED[0] in _tables(pg_url) and _holding(out, PLANTED)

    forgot = run_cli(["forget", *shared, "row-001", "--out", str(out)], env, TIMEOUT_S)
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot row row-001" in forgot.stdout
    cleaned = re.findall(r"cleaned job (\S+) of row row-001 at Pictory", forgot.stdout)
    assert len(cleaned) == 2, forgot.stdout  # its preview and render job, and no other row's
    assert sim.stats()["cleans"] == {job: 1 for job in cleaned}
    assert '"e": "cleaned"' in _tables(pg_url).replace('""', '"'), "recorded cleaned"

    recorded = _tables(pg_url)
    assert [v for v in PLANTED if v in recorded] == []
    assert "Name 0" in recorded and "[forgotten " in recorded
    assert _holding(out, PLANTED) == {} and _holding(out, KEPT)
    rows = {r["id"]: r for r in read_results(out)}
    assert rows["row-001"]["status"] == "done" and rows["row-001"]["name"].startswith("[forgot")

    renders = sim.stats()["renders_started"]
    again = run_cli(worker, env, TIMEOUT_S)
    assert again.returncode == 0, again.stderr
    assert sim.stats()["renders_started"] == renders
    assert [v for v in PLANTED if v in _tables(pg_url)] == []


async def test_a_row_a_live_worker_holds_is_refused_and_nothing_changes(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """``forget`` of a row under a live lease raises naming the worker, and the row's values and
    events are as they were; once the worker let it go, the same call forgets it, and the row
    is never claimed again (it was pending: it becomes failed, kind ``forgotten``)."""
    from orchestrator.errors import RunDirError
    from orchestrator.ledger.pg.forget import forget_rows
    from orchestrator.ledger.pg.ledger import PgLedger

    from .conftest import submit_small, take_rows

    await submit_small(pool, tmp_path, 2)
    worker = await PgLedger.open(pool, pg_url, "b", worker_id="w1")
    try:
        (job,) = await take_rows(worker, 1)
        async with pool.acquire() as conn:
            before = await _read_tables(conn)
        with pytest.raises(RunDirError, match=f"{job.row_id} \\(worker w1\\)"):
            await forget_rows(pool, worker.batch_id, {job.row_id: "2026-12-07"}, 1.0)
        async with pool.acquire() as conn:
            assert await _read_tables(conn) == before
        worker.release(job.row_id)
    finally:
        await worker.aclose()
    await forget_rows(pool, worker.batch_id, {job.row_id: "2026-12-07"}, 1.0)
    async with pool.acquire() as conn:
        query = "SELECT status, variables, owner FROM rows WHERE row_key = $1"
        row = await conn.fetchrow(query, job.row_id)
    assert row is not None
    assert row["status"] == "failed" and row["owner"] is None
    assert set(json.loads(row["variables"]).values()) == {"[forgotten 2026-12-07]"}
    again = await PgLedger.open(pool, pg_url, "b", worker_id="w2")
    try:
        assert job.row_id not in [j.row_id for j in await take_rows(again, 1)]
    finally:
        await again.aclose()
