"""``orchestrator purge --older-than DAYS --ledger URL`` (issue 32): a shared batch whose rows
are all finished and whose last event is older than DAYS is deleted with its rows, events and
the templates nobody else uses; a batch with rows pending, or a fresh one, is kept; ``--dry-run``
deletes nothing. And ``[pictory] clean_after_download`` in a shared batch's worker."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from e2e.helpers import write_batch

from orchestrator.cli.main import main
from orchestrator.ledger.pg.schema import connect

from .conftest import submit_small


def _in_a_thread(work: Any) -> Any:
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


async def _three_batches(url: str, tmp_path: Path) -> None:
    """``old`` (all rows done, last event 1970), ``fresh`` (done, an event now) and ``open``
    (old, its rows still pending)."""
    pool = await connect(url, None, max_connections=2)
    try:
        for name in ("old", "fresh", "open"):
            await submit_small(pool, tmp_path / name, 2, name=name)
        await pool.execute(
            "UPDATE rows SET status = 'done' WHERE batch_id IN "
            "(SELECT id FROM batches WHERE name IN ('old', 'fresh'))"
        )
        body = json.dumps({"e": "ended", "ts": time.time(), "how": "finished"})
        await pool.execute(
            "INSERT INTO events (batch_id, body) SELECT id, $1::jsonb FROM batches "
            "WHERE name = 'fresh'",
            body,
        )
    finally:
        await pool.close()


async def _counts(url: str) -> dict[str, Any]:
    pool = await connect(url, None, max_connections=1)
    try:
        return {
            "batches": sorted(r["name"] for r in await pool.fetch("SELECT name FROM batches")),
            "rows": await pool.fetchval("SELECT count(*) FROM rows"),
            "events": await pool.fetchval(
                "SELECT count(*) FROM events e WHERE NOT EXISTS "
                "(SELECT 1 FROM batches b WHERE b.id = e.batch_id)"
            ),
            "templates": await pool.fetchval("SELECT count(*) FROM templates"),
        }
    finally:
        await pool.close()


def test_purge_deletes_old_finished_batches_and_keeps_the_others(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _in_a_thread(_three_batches(pg_url, tmp_path))
    before = _in_a_thread(_counts(pg_url))
    assert before["batches"] == ["fresh", "old", "open"] and before["rows"] == 6

    assert main(["purge", "--older-than", "30", "--dry-run", "--ledger", pg_url]) == 0
    said = capsys.readouterr().out
    assert "would remove batch old at " in said and "nothing removed" in said
    assert _in_a_thread(_counts(pg_url)) == before

    assert main(["purge", "--older-than", "30", "--ledger", pg_url]) == 0
    said = capsys.readouterr().out
    assert "removed   batch old at " in said and "(2 rows, " in said
    assert "kept      batch fresh at " in said and "ended less than 30 days ago" in said
    assert "kept      batch open at " in said and "rows still pending" in said
    after = _in_a_thread(_counts(pg_url))
    assert after["batches"] == ["fresh", "open"]
    assert after["rows"] == 4 and after["events"] == 0
    assert after["templates"] == before["templates"]  # the same template: the others use it


def test_a_worker_cleans_each_job_once_with_clean_after_download(
    make_sim: Any, api_env: Any, pg_url: str, tmp_path: Path
) -> None:
    """``[pictory] clean_after_download`` on a shared batch: the worker that downloads a row
    cleans its render and preview jobs, once each, and records it in the shared ledger."""
    sim = make_sim("test")
    api_env(sim)
    batch = write_batch(tmp_path, 3, extra_config="[pictory]\nclean_after_download = true\n")
    submit = ["submit", str(batch["manifest"]), "--template", str(batch["template"])]
    assert main([*submit, "--ledger", pg_url, "--name", "clean"]) == 0
    worker = ["worker", "--ledger", pg_url, "--out", str(tmp_path / "w")]
    assert main([*worker, "--config", str(batch["config"])]) == 0
    cleans = sim.stats()["cleans"]
    assert len(cleans) == 6 and set(cleans.values()) == {1}
    recorded = _in_a_thread(_cleaned_records(pg_url))
    assert recorded == 3


async def _cleaned_records(url: str) -> int:
    pool = await connect(url, None, max_connections=1)
    try:
        return int(await pool.fetchval("SELECT count(*) FROM events WHERE body->>'e' = 'cleaned'"))
    finally:
        await pool.close()
