"""A batch session from start to finish: pre-flight, ledger, task pool, results. ``execute`` is
the API, and the one path for every ledger: ``run``, ``resume`` and ``approve`` on a run
directory, and ``worker`` on a shared batch, differ only in the ledger ``open_ledger`` opens.

- A run directory's session validates its manifest, records its run session (with what it runs
  against: ``RunStarted.target``) and its batch-wide choices (``records.BatchChoices``: canary,
  halt, spend cap, window, quota check, notify...), and reads its rows from the manifest lazily.
  What it takes over from the sessions before it (for ``resume`` and ``approve``, the choices
  it does not state; under ``--simulate``, the rows whose jobs died with an earlier
  simulator) is ``session``'s.
- A shared batch was validated and its choices recorded by ``orchestrator submit``; a worker
  obeys them (a worker given a choice that differs is refused, naming the batch's value) and
  works the rows it claims.

Either way the rows flow into a bounded pool (``max_rows_in_flight``), so a million-row batch
never becomes a million tasks; a row the ledger says is done is skipped; a row with recorded jobs
re-attaches to them (see ``pipeline``). At the end, the batch's ``results.csv`` and
``report.html`` are written from the ledger's read side (``Ledger.snapshot``) and the
notification is sent.
"""

from __future__ import annotations

import contextlib
import random
from typing import TYPE_CHECKING

import anyio

from orchestrator.clock import Clock, RealClock
from orchestrator.config import Config, Credentials, account_key, notify_url
from orchestrator.errors import RunDirError, StorageError, ValidationFailed
from orchestrator.events import Sink
from orchestrator.input.rows import manifest_rows, no_rows
from orchestrator.input.validate import ValidationReport, validate_manifest
from orchestrator.ledger.open import SharedSettings, open_ledger
from orchestrator.ledger.protocol import Ledger
from orchestrator.report.links import links_warning
from orchestrator.report.results import write_results
from orchestrator.run import canary, cost, disk, preflight, session, taken_names
from orchestrator.run.admission import Admission, HaltPolicy, NetworkWatch
from orchestrator.run.clients import open_client, open_webhooks
from orchestrator.run.end import RunSummary, end_of_run, how_it_ended, ledger_counts
from orchestrator.run.pool import VIDEOS_DIR, render_slots_of, work_rows
from orchestrator.run.spec import RunSpec

if TYPE_CHECKING:
    from orchestrator.report.metrics import RunMetrics

MAX_PROBLEMS_SHOWN = 20


async def execute(
    spec: RunSpec,
    config: Config,
    credentials: Credentials,
    *,
    sink: Sink,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    metrics: RunMetrics | None = None,
) -> RunSummary:
    """Run (or resume, or join) the batch ``spec`` against ``config.api.base_url``.
    ``metrics``: a ``report.metrics.RunMetrics`` the run feeds; with ``[metrics] port`` the run
    serves one of its own at ``/metrics`` (``report.metrics_server``) while it lasts."""
    if metrics is None and config.metrics.port is None:
        return await _execute(spec, config, credentials, sink=sink, clock=clock, rng=rng)
    from orchestrator.report.metrics_server import run_metrics  # prometheus_client: only now

    async with run_metrics(config.metrics, sink, metrics) as (fed_sink, fed):
        return await _execute(
            spec, config, credentials, sink=fed_sink, clock=clock, rng=rng, metrics=fed
        )


async def _execute(
    spec: RunSpec,
    config: Config,
    credentials: Credentials,
    *,
    sink: Sink,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    metrics: RunMetrics | None = None,
) -> RunSummary:
    clock = clock or RealClock()
    rng = rng or random.Random()
    started_at = clock.now()
    report: ValidationReport | None = None
    if spec.manifest is not None:
        report = await anyio.to_thread.run_sync(
            validate_manifest, spec.manifest, spec.template, spec.flow, spec.manifest_options
        )
        if not report.ok:
            raise ValidationFailed(
                [str(p) for p in report.problems[:MAX_PROBLEMS_SHOWN]], report.problem_count
            )
    rows = (
        manifest_rows(spec.manifest, spec.template, spec.flow, spec.manifest_options)
        if spec.manifest is not None
        else None
    )
    shared = SharedSettings(
        lease_s=config.ledger.lease_s,
        max_connections=config.ledger.max_connections,
        account=account_key(config.api.base_url, credentials),
        account_name=config.ledger.account,
        rerender_ambiguous=config.run.rerender_ambiguous,
        max_outage_s=config.ledger.max_outage_s,
    )
    async with (
        open_ledger(spec.place, clock, rows=rows, shared=shared, sink=sink) as ledger,
        _watched(metrics, ledger, report),
    ):
        choices = await preflight.session_choices(spec, ledger, report)
        config = session.obey_choices(
            config,
            choices,
            sink,
            run_dir=spec.run_dir,
            notify_stated=spec.choices.notify is not None,
        )
        preflight.say_if_taken_over(spec, ledger, sink)
        simulator_gone = not spec.place.shared and session.simulator_gone(
            ledger, simulated=spec.simulated
        )
        if spec.canary_required and ledger.state.canary_rows is None:
            go_on = "worker" if spec.place.shared else "resume"
            raise RunDirError(
                f"{ledger.location} holds no canary to approve; `orchestrator {go_on} "
                f"{preflight.batch_ref(spec)}` continues a batch"
            )
        if rows is not None and not spec.place.shared:  # a new row's name on a batch's video
            await taken_names.refuse(
                ledger.state.rows.values(),
                rows,
                spec.run_dir / VIDEOS_DIR,
                spec.manifest_options.name_pattern,
            )
        await preflight.record_session(spec, config, ledger, report, choices)
        sink.emit(
            "run_started",
            run_dir=str(spec.run_dir),
            rows=report.rows if report is not None else None,
            already_done=sum(1 for r in ledger.state.rows.values() if r.status == "done"),
            base_url=config.api.base_url,
            manifest=report.read_as if report is not None and report.read_as else None,
            ledger=ledger.location if spec.place.shared else None,
            worker=ledger.worker_id,
            time_zone=choices.time_zone if (choices.window or choices.until) else None,
            calibration=config.limits.calibration,
        )
        if simulator_gone:
            await session.start_over_lost_with_simulator(ledger, spec.run_dir / VIDEOS_DIR, sink)
        if spec.retry_failed:
            await ledger.retry_failed()
        only = await canary.gate(ledger, rows or no_rows, size=choices.canary, approve=spec.approve)
        summary = RunSummary(
            run_dir=spec.run_dir,
            batch_ref=preflight.batch_ref(spec),
            worker_id=ledger.worker_id,
            simulated=spec.simulated,
        )
        network = NetworkWatch(clock, config.run.network_dead_after_s)
        window = preflight.window_of(choices)
        spend = await preflight.cost_plan(spec, ledger, rows, choices, config)
        if report is not None:  # a worker's share of a shared batch is not known in advance
            caps = [n for n in (choices.max_renders, len(only) if only else None) if n]
            expected = spend.estimate
            disk.check_space(
                spec.run_dir,
                report.rows,
                ledger.state.rows.values(),
                sink,
                assumed_video_minutes=config.run.assumed_video_minutes,
                expected_minutes=expected.minutes / expected.rows
                if expected is not None and expected.rows
                else None,
                expected_basis=expected.basis if expected is not None else None,
                posters=config.report.posters,
                at_most=min(caps) if caps else None,
                refuse=config.run.check_disk_space,
            )
        admission = Admission(
            clock,
            sink,
            halt=HaltPolicy.parse(choices.halt_after) if choices.halt_after else None,
            max_renders=choices.max_renders,
            window=window,
            assumed_row_s=config.run.assumed_row_s,
            max_minutes=choices.max_minutes,
            max_credits=choices.max_credits,
            cost=spend.model,
        )
        limits = ledger.shared_limits(
            max_rps=config.limits.max_requests_per_s,
            max_per_minute=config.limits.max_requests_per_minute,
            max_renders=render_slots_of(config),
        )
        async with (
            open_client(
                config, credentials, clock, rng, sink, network, limits.rate if limits else None
            ) as client,
            open_webhooks(config, spec.run_dir, ledger, clock, sink, spec.batch) as webhooks,
        ):
            await cost.announce(
                client,
                spend,
                sink,
                quota=not spec.place.shared,
                check=choices.check_quota,
                wait_s=min(cost.QUOTA_WAIT_S, config.run.network_dead_after_s),
                caps=choices,
            )
            await work_rows(
                spec, config, client, ledger, sink, clock, rng, summary, admission, webhooks,
                network, only, limits.renders if limits else None,
                stop_at_window_end=window is not None and choices.at_window_end == "stop",
            )  # fmt: skip
            summary.requests = client.requests_sent
        snapshot = await ledger.snapshot()
        try:
            try:
                path, counts, failed_permanent = await anyio.to_thread.run_sync(
                    write_results, spec.run_dir, snapshot.rows, snapshot.state
                )
            except StorageError as exc:  # the ledger holds every row: results wait for space
                summary.storage_fault = summary.storage_fault or exc
                path, counts, failed_permanent = None, ledger_counts(snapshot), 0
            summary.results_path = path
            summary.stop_reason = admission.stop_reason
            summary.counts = counts
            summary.failed_permanent = failed_permanent
            summary.links_warning = await anyio.to_thread.run_sync(
                links_warning, snapshot.state, config.report.links_valid_days, clock.wall_s()
            )
            summary.taken_over = len(ledger.taken_over)
            summary.elapsed_s = clock.now() - started_at
            held = canary.read_record(snapshot.state)
            if held.waiting and held.rows is not None:
                rest = canary.held_back(held.rows, counts, snapshot.state)
                if rest > 0:
                    summary.awaiting_approval = canary.approval_line(
                        spec.run_dir, len(held.rows), rest, preflight.batch_ref(spec)
                    )
                    summary.approval_notice = canary.approval_line(
                        spec.run_dir.absolute(),
                        len(held.rows),
                        rest,
                        preflight.batch_ref(spec, True),
                    )
            sink.emit(
                "run_finished",
                **dict(counts),
                elapsed_s=round(summary.elapsed_s, 3),
                requests=summary.requests,
            )
            try:
                await ledger.append(how_it_ended(summary))
            except StorageError as exc:
                summary.storage_fault = summary.storage_fault or exc
            url = notify_url(choices.notify, config)
            await end_of_run(spec.run_dir, snapshot, config, url, sink, summary)
        finally:
            snapshot.close()
        return summary


def _watched(
    metrics: RunMetrics | None, ledger: Ledger, report: ValidationReport | None
) -> contextlib.AbstractAsyncContextManager[None]:
    """``metrics`` (if any) count rows by state from ``ledger``'s read side while it is open."""
    if metrics is None:
        return contextlib.nullcontext()
    from orchestrator.report.metrics import rows_from_ledger

    return metrics.watching(rows_from_ledger(ledger, report.rows if report is not None else None))
