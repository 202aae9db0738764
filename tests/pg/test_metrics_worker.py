"""A shared batch's worker feeds its metrics like a run: rows by state from the shared ledger,
its own renders and bytes, and the rows it took over from a worker whose lease expired."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import anyio
import asyncpg
from pydantic import SecretStr

from orchestrator.config import ApiConfig, Config, Credentials, account_key
from orchestrator.events import ListSink
from orchestrator.ledger.pg.batches import batch_view
from orchestrator.ledger.pg.ledger import PgLedger
from orchestrator.ledger.records import RowAdmitted
from orchestrator.report.metrics import RunMetrics
from orchestrator.run.execute import execute
from orchestrator.run.spec import RunSpec
from orchestrator.simulator import SimSettings, running_simulator

from .conftest import submit_small, take_rows

ROWS = 4
LEASE_S = 1.0
CREDENTIALS = Credentials(
    client_id=SecretStr("test-client"), client_secret=SecretStr("test-secret"), user_id="test-user"
)


def _value(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


async def _dead_worker(pool: asyncpg.Pool, pg_url: str, account: str) -> PgLedger:
    """A worker of ``account`` that claimed one row, began it and died: its lease ran out."""
    dead = await PgLedger.open(pool, pg_url, "b", worker_id="dead", account=account)
    (job,) = await take_rows(dead, 1)
    await dead.append(RowAdmitted(row=job.row_id, line=job.line, output=job.output_name))
    assert dead._heartbeat is not None
    dead._heartbeat.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dead._heartbeat
    await pool.execute("UPDATE rows SET lease_until = now() - interval '1 s' WHERE owner = 'dead'")
    up_s = await pool.fetchval(
        "SELECT extract(epoch FROM clock_timestamp() - pg_postmaster_start_time())::float8"
    )
    await anyio.sleep(max(0.0, LEASE_S - up_s))  # a takeover waits for a server up a lease long
    return dead


async def test_a_workers_metrics_equal_the_shared_ledger(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """After a worker's session: rows done as the ledger counts them, one lease takeover,
    renders started, and bytes downloaded equal to the files the worker wrote."""
    await submit_small(pool, tmp_path / "batch", ROWS)
    metrics = RunMetrics()
    out = tmp_path / "worker"
    async with running_simulator(SimSettings.for_profile("test")) as sim:
        dead = await _dead_worker(pool, pg_url, account_key(sim.base_url, CREDENTIALS))
        try:
            config = Config.model_validate(
                {
                    "api": ApiConfig(base_url=sim.base_url).model_dump(),
                    "limits": {"max_requests_per_s": 500.0},
                    "poll": {"preview_interval_s": 0.01, "render_interval_s": 0.01},
                    "report": {"posters": False},
                    "ledger": {"lease_s": LEASE_S},
                }
            )
            spec = RunSpec(run_dir=out, ledger_url=pg_url, batch="b")
            await execute(spec, config, CREDENTIALS, sink=ListSink(), metrics=metrics)
        finally:
            await dead.aclose()
    text = (await metrics.exposition())[0].decode()
    counts = (await batch_view(pool, "b")).counts
    assert counts["done"] == ROWS
    assert _value(text, "orchestrator_rows", state="done") == ROWS
    assert _value(text, "orchestrator_lease_takeovers_total") == 1
    assert _value(text, "orchestrator_renders_total") == ROWS
    sizes = sum(p.stat().st_size for p in (out / "videos").glob("*.mp4"))
    assert _value(text, "orchestrator_downloaded_bytes_total") == sizes > 0
