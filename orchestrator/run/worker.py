"""One worker on a shared batch (``orchestrator worker --ledger URL``): the same task pool as
``run``, fed by the rows this worker claims in the database instead of a manifest file.

Videos land in the worker's ``--out``/videos (a shared folder, when every worker is given the
same one, gathers them in one place); ``orchestrator report --ledger URL --out DIR`` writes the
batch's ``results.csv``. Leases, takeover and the delivery contract: ``ledger_pg``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from orchestrator.api.limits import shared_interval_s
from orchestrator.clock import Clock, RealClock
from orchestrator.config import Config, Credentials
from orchestrator.events import Sink
from orchestrator.ledger.pg.batches import batch_view
from orchestrator.ledger.pg.ledger import PgLedger
from orchestrator.ledger.pg.limits import PgSharedRate, PgSharedRenders, account_key
from orchestrator.ledger.records import RunStarted
from orchestrator.run.admission import Admission, NetworkWatch
from orchestrator.run.execute import RunSpec, RunSummary, open_client, open_webhooks, work_rows

if TYPE_CHECKING:
    import asyncpg


@dataclass(frozen=True)
class WorkerSpec:
    out: Path
    batch: str | None = None
    max_renders: int | None = None


@dataclass
class WorkerSummary(RunSummary):
    """A worker's ``RunSummary``: ``counts`` are the whole batch's; ``started`` the rows this
    worker worked on, ``taken_over`` those of them it took from a stopped worker."""

    worker_id: str = ""
    taken_over: int = 0


async def execute_worker(
    pool: asyncpg.Pool,
    url: str,
    spec: WorkerSpec,
    config: Config,
    credentials: Credentials,
    *,
    sink: Sink,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> WorkerSummary:
    """Claim and work rows of the batch until none is left pending; returns this worker's
    summary (``counts`` are the whole batch's, read from the database at the end)."""
    clock = clock or RealClock()
    rng = rng or random.Random()
    started_at = clock.now()
    account = account_key(config.api.base_url, credentials)
    ledger = await PgLedger.open(
        pool,
        url,
        spec.batch,
        lease_s=config.ledger.lease_s,
        clock=clock,
        account=account,
        rerender_ambiguous=config.run.rerender_ambiguous,
    )
    try:
        record = ledger.state.run_record or RunStarted()
        await ledger.append(
            RunStarted(
                session=len(ledger.state.runs) + 1,
                manifest=record.manifest,
                manifest_sha256=record.manifest_sha256,
                template=record.template,
                flow=record.flow,
                manifest_options=record.manifest_options,
                config=config.public_dict(),
            )
        )
        sink.emit(
            "worker_started",
            worker=ledger.worker_id,
            ledger=ledger.location,
            base_url=config.api.base_url,
        )
        run_spec = RunSpec(
            manifest=Path(record.manifest or "manifest"),
            template=None,
            run_dir=spec.out,
            flow=record.flow or "template",
            max_renders=spec.max_renders,
        )
        summary = WorkerSummary(run_dir=spec.out, worker_id=ledger.worker_id)
        shared = PgSharedRate(
            pool, account, clock, interval_s=shared_interval_s(config.limits.max_requests_per_s)
        )
        renders = PgSharedRenders(
            pool,
            account,
            ledger.worker_id,
            clock,
            max_renders=config.limits.max_renders_in_flight,
            lease_s=config.ledger.lease_s,
        )
        ledger.on_heartbeat(renders.renew)
        network = NetworkWatch(clock, config.run.network_dead_after_s)
        admission = Admission(
            clock, sink, max_renders=spec.max_renders, assumed_row_s=config.run.assumed_row_s
        )
        async with (
            open_client(config, credentials, clock, rng, sink, network, shared) as client,
            open_webhooks(config, spec.out, ledger, clock, sink) as webhooks,
        ):
            await work_rows(
                run_spec, config, client, ledger, sink, clock, rng, summary, admission, webhooks,
                network, None, renders,
            )  # fmt: skip
            summary.requests = client.requests_sent
        view = await batch_view(pool, batch_id=ledger.batch_id)
        summary.counts = Counter(view.counts)
        summary.taken_over = len(ledger.taken_over)
        summary.stop_reason = admission.stop_reason
        summary.elapsed_s = clock.now() - started_at
        sink.emit(
            "worker_finished",
            worker=ledger.worker_id,
            taken_over=len(ledger.taken_over),
            elapsed_s=round(summary.elapsed_s, 3),
            requests=summary.requests,
            **dict(view.counts),
        )
        return summary
    finally:
        with anyio.CancelScope(shield=True):  # hand the claimed rows back even when cancelled
            await ledger.aclose()
