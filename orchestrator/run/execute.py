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
import os
import random
import shlex
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter, SharedRate, render_slots_total
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.webhooks import WebhookReceiver, run_secret
from orchestrator.clock import Clock, RealClock
from orchestrator.config import Config, Credentials, account_key, notify_url
from orchestrator.errors import (
    CredentialsStop,
    LeaseLost,
    RunDirError,
    StorageError,
    UserError,
    ValidationFailed,
)
from orchestrator.events import Sink, wants
from orchestrator.files import make_private_dir
from orchestrator.input.manifest import manifest_digest
from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions
from orchestrator.input.rows import RowJob, RowLister, manifest_rows, no_rows
from orchestrator.input.validate import ValidationReport, validate_manifest
from orchestrator.ledger.open import LedgerPlace, SharedSettings, open_ledger
from orchestrator.ledger.protocol import BatchSnapshot, Ledger
from orchestrator.ledger.records import BatchChoices, JsonObject, RunStarted, SessionEnded
from orchestrator.ledger.row_state import RowState
from orchestrator.report.links import links_warning
from orchestrator.report.previews import gif_size
from orchestrator.report.results import write_results
from orchestrator.run import canary, cost, disk, session, taken_names, triage, watchers
from orchestrator.run.admission import Admission, HaltPolicy, NetworkWatch, Window
from orchestrator.run.end import RunSummary, end_of_run
from orchestrator.run.pipeline import run_row, undelivered
from orchestrator.run.stages import tidy
from orchestrator.run.stages.assets import AssetMaker
from orchestrator.run.stages.base import RenderSlots, Services
from orchestrator.run.stages.template_upload import TemplateRegistry
from orchestrator.storage.destination import Destinations

if TYPE_CHECKING:
    from orchestrator.report.metrics import RunMetrics

VIDEOS_DIR = "videos"
MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class RunSpec:
    """One session of a batch. ``run_dir`` holds what this process writes (videos, log, results,
    report; a worker's ``--out``). A run directory's batch names its ``manifest``; a shared
    batch its ``ledger_url`` (and ``batch``)."""

    run_dir: Path
    manifest: Path | None = None
    template: Path | None = None
    flow: str = "template"
    ledger_url: str | None = None
    batch: str | None = None
    account: str | None = None
    """A worker's ``--account`` (printed in the commands that continue a bound batch)."""
    choices: BatchChoices = field(default_factory=BatchChoices)
    """The batch-wide choices given on the command line."""
    retry_failed: bool = False
    approve: bool = False
    canary_required: bool = False
    """``orchestrator approve``: refuse a batch that holds no canary to approve."""
    manifest_options: ManifestOptions = DEFAULT_OPTIONS
    target: JsonObject | None = None
    """What this session sends its requests to, as its ``run`` record keeps it
    (``RunStarted.target``: ``simulate`` or ``base_url``, and ``config``)."""
    resuming: bool = False
    """``resume`` or ``approve``: a batch-wide choice this session does not state is the
    recorded one (``session.carried_choices``); ``run`` states them all anew."""

    @property
    def simulated(self) -> bool:
        """Against the embedded simulator (``--simulate``), whose jobs die with this process."""
        return bool(self.target and self.target.get("simulate"))

    @property
    def place(self) -> LedgerPlace:
        if self.ledger_url is not None:
            return LedgerPlace(url=self.ledger_url, batch=self.batch)
        return LedgerPlace(run_dir=self.run_dir)


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
        choices = await _session_choices(spec, ledger, report)
        config = session.obey_choices(
            config,
            choices,
            sink,
            run_dir=spec.run_dir,
            notify_stated=spec.choices.notify is not None,
        )
        _say_if_taken_over(spec, ledger, sink)
        simulator_gone = not spec.place.shared and session.simulator_gone(
            ledger, simulated=spec.simulated
        )
        if spec.canary_required and ledger.state.canary_rows is None:
            go_on = "worker" if spec.place.shared else "resume"
            raise RunDirError(
                f"{ledger.location} holds no canary to approve; `orchestrator {go_on} "
                f"{_batch_ref(spec)}` continues a batch"
            )
        if rows is not None and not spec.place.shared:  # a new row's name on a batch's video
            await taken_names.refuse(
                ledger.state.rows.values(),
                rows,
                spec.run_dir / VIDEOS_DIR,
                spec.manifest_options.name_pattern,
            )
        await _record_session(spec, config, ledger, report, choices)
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
            batch_ref=_batch_ref(spec),
            worker_id=ledger.worker_id,
            simulated=spec.simulated,
        )
        network = NetworkWatch(clock, config.run.network_dead_after_s)
        window = _window(choices)
        spend = await _cost_plan(spec, ledger, rows, choices, config)
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
            max_renders=_render_slots(config),
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
                path, counts, failed_permanent = None, _counts(snapshot), 0
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
                        spec.run_dir, len(held.rows), rest, _batch_ref(spec)
                    )
                    summary.approval_notice = canary.approval_line(
                        spec.run_dir.absolute(), len(held.rows), rest, _batch_ref(spec, True)
                    )
            sink.emit(
                "run_finished",
                **dict(counts),
                elapsed_s=round(summary.elapsed_s, 3),
                requests=summary.requests,
            )
            try:
                await ledger.append(_how_it_ended(summary))
            except StorageError as exc:
                summary.storage_fault = summary.storage_fault or exc
            url = notify_url(choices.notify, config)
            await end_of_run(spec.run_dir, snapshot, config, url, sink, summary)
        finally:
            snapshot.close()
        return summary


async def _session_choices(
    spec: RunSpec, ledger: Ledger, report: ValidationReport | None
) -> BatchChoices:
    """The batch-wide choices this session obeys. A run directory's ``run`` states its own;
    its ``resume`` or ``approve`` obeys the ones it states and, for the others, the batch's
    recorded ones (``session.carried_choices``); a worker obeys its shared batch's, and is
    refused when it was given a different one."""
    if not spec.place.shared:
        triage.check_same_manifest(ledger, spec.run_dir, spec.manifest or Path(""))
        if spec.resuming:
            return session.carried_choices(ledger.state.choices, spec.choices)
        return spec.choices
    recorded = ledger.state.choices
    default = BatchChoices()
    for f in fields(BatchChoices):
        given, held = getattr(spec.choices, f.name), getattr(recorded, f.name)
        if f.name in ("ts", "time_zone") or given == getattr(default, f.name) or given == held:
            continue
        flag = "--" + f.name.replace("_", "-")  # each choice is stated by its option
        shown = "not set" if held in (None, False) else f"{flag} {held}"
        raise UserError(
            f"{flag} {given}: the batch in {ledger.location} was submitted with {shown}; a "
            "batch-wide choice is made once, by `orchestrator submit`, and every worker obeys it"
        )
    return recorded


async def _record_session(
    spec: RunSpec,
    config: Config,
    ledger: Ledger,
    report: ValidationReport | None,
    choices: BatchChoices,
) -> None:
    """Record this session (and, for a run directory, its batch-wide choices when they changed)."""
    record = ledger.state.run_record or RunStarted()
    if spec.manifest is not None:
        digest = report.manifest_sha256 if report is not None else None
        if digest is None:  # not read to its end (it cannot be: validation passed)
            digest = await anyio.to_thread.run_sync(manifest_digest, spec.manifest)
        record = RunStarted(
            manifest=str(spec.manifest.resolve()),
            manifest_sha256=digest,
            template=str(spec.template.resolve()) if spec.template else None,
            flow=spec.flow,
            manifest_options=spec.manifest_options.recorded(),
        )
    await ledger.append(
        RunStarted(
            session=len(ledger.state.runs) + 1,
            manifest=record.manifest,
            manifest_sha256=record.manifest_sha256,
            template=record.template,
            flow=record.flow,
            manifest_options=record.manifest_options,
            config=config.public_dict(),
            target=spec.target,
        )
    )
    if not spec.place.shared and replace(choices, ts=0.0) != replace(ledger.state.choices, ts=0.0):
        await ledger.append(choices)  # only when they changed (``ts`` aside)


def _say_if_taken_over(spec: RunSpec, ledger: Ledger, sink: Sink) -> None:
    """A run directory whose latest session never recorded its end (killed, crashed, the
    machine lost): say whose rows this session takes over."""
    state = ledger.state
    if spec.place.shared or not state.runs or state.last_end is not None:
        return
    owner = state.runs[-1].owner or {}
    sink.emit(
        "run_taken_over",
        run_dir=str(spec.run_dir),
        pid=owner.get("pid"),
        host=owner.get("host"),
        since=state.runs[-1].ts,
    )


def _watched(
    metrics: RunMetrics | None, ledger: Ledger, report: ValidationReport | None
) -> contextlib.AbstractAsyncContextManager[None]:
    """``metrics`` (if any) count rows by state from ``ledger``'s read side while it is open."""
    if metrics is None:
        return contextlib.nullcontext()
    from orchestrator.report.metrics import rows_from_ledger

    return metrics.watching(rows_from_ledger(ledger, report.rows if report is not None else None))


def _counts(snapshot: BatchSnapshot) -> Counter[str]:
    """Rows by status, from the ledger alone (when ``results.csv`` cannot be written)."""
    counts: Counter[str] = Counter()
    seen = 0
    for r in snapshot.state.rows.values():
        counts[r.status] += 1
        seen += 1
    if snapshot.total is not None and snapshot.total > seen:
        counts["pending"] += snapshot.total - seen
    return counts


def _how_it_ended(summary: RunSummary) -> SessionEnded:
    """The session's end as the ledger records it (``status`` reads it back)."""
    if summary.storage_fault is not None:
        return SessionEnded(how="halted", reason=f"disk: {summary.storage_fault}")
    if summary.interrupted:
        return SessionEnded(how="interrupted", reason=summary.interrupt_signal)
    if summary.stop_reason is not None:
        return SessionEnded(how="halted", reason=summary.stop_reason)
    return SessionEnded(how="finished")


def _window(choices: BatchChoices) -> Window | None:
    if choices.window:
        return Window.parse(choices.window, zone=choices.time_zone)
    if choices.until:
        return Window.parse(choices.until, option="--until", zone=choices.time_zone)
    return None


def _batch_ref(spec: RunSpec, absolute: bool = False) -> str:
    """How a printed command names this batch (``approve``, ``status``, ``report``), quoted for
    the shell: the run directory as it was given (the command is printed where it was typed), or
    by its ``absolute`` path (for the report and the notification, read elsewhere)."""
    if spec.ledger_url is None:
        return shlex.quote(str(spec.run_dir.absolute() if absolute else spec.run_dir))
    from orchestrator.ledger.pg.schema import safe_url

    batch = f" --batch {shlex.quote(spec.batch)}" if spec.batch else ""
    account = f" --account {shlex.quote(spec.account)}" if spec.account else ""
    return f"--ledger {shlex.quote(safe_url(spec.ledger_url))}{batch}{account}"


@contextlib.asynccontextmanager
async def open_client(
    config: Config,
    credentials: Credentials,
    clock: Clock,
    rng: random.Random,
    sink: Sink,
    network: NetworkWatch,
    shared_rate: SharedRate | None = None,
) -> AsyncIterator[PictoryClient]:
    limiter = RateLimiter(
        clock,
        max_rps=config.limits.max_requests_per_s,
        max_per_minute=config.limits.max_requests_per_minute,
        shared=shared_rate,
    )
    policy = _retry_policy(config)

    def on_retry(endpoint: str, kind: str, delay_s: float) -> None:
        sink.emit("retry", endpoint=endpoint, kind=kind, delay_s=round(delay_s, 3))
        if kind == "not_delivered":
            network.undelivered()

    def on_request(method: str, path: str, status: int | None, waited_s: float) -> None:
        sink.emit("request", method=method, path=path, status=status, waited_s=waited_s)

    async with PictoryClient(
        config.api,
        credentials,
        clock=clock,
        limiter=limiter,
        retry_policy=policy,
        rng=rng,
        on_retry=on_retry,
        on_request=on_request if wants(sink, "request") else None,
    ) as client:
        client.pictory_delivery = pictory_delivery(config)
        yield client


def pictory_delivery(config: Config) -> dict[str, Any]:
    """``[deliver]``'s Pictory-side fields, as the v2 storyboard body names them (§6.3)."""
    deliver = config.deliver
    fields: dict[str, Any] = {}
    if deliver.destinations:
        fields["destinations"] = [dict(d) for d in deliver.destinations]
    if deliver.aws_connection_id:
        fields["awsConnectionId"] = deliver.aws_connection_id
    if deliver.vimeo_connection_id:
        fields["vimeoConnectionId"] = deliver.vimeo_connection_id
    return fields


async def _cost_plan(
    spec: RunSpec, ledger: Ledger, rows: RowLister | None, choices: BatchChoices, config: Config
) -> cost.CostPlan:
    """The session's ``cost.CostPlan``: a run directory's estimate of its rows left, from its
    manifest; a shared batch's (its rows are the database's) from its row count, made only for
    ``--check-quota`` (without it, a worker's spend caps learn from its own renders only)."""
    assumed = config.run.assumed_video_minutes
    if spec.place.shared and not choices.check_quota:
        return await anyio.to_thread.run_sync(cost.plan, (), None, None, assumed)
    if not spec.place.shared:
        states = ledger.state.rows.values()
        return await anyio.to_thread.run_sync(cost.plan, states, rows, None, assumed)
    snapshot = await ledger.snapshot()
    try:
        total = snapshot.total
        if total is None:
            total = await anyio.to_thread.run_sync(lambda: sum(1 for _ in snapshot.rows()))
        states = snapshot.state.rows.values()
        return await anyio.to_thread.run_sync(cost.plan, states, None, total, assumed)
    finally:
        snapshot.close()


@contextlib.asynccontextmanager
async def open_webhooks(
    config: Config,
    run_dir: Path,
    ledger: Ledger,
    clock: Clock,
    sink: Sink,
    batch: str | None = None,
) -> AsyncIterator[WebhookReceiver | None]:
    """The webhook receiver of ``--webhook`` (None without it); ``batch`` (a shared batch's
    name, else the run directory's) goes in each ``webhookInput``."""
    if not config.webhook.enabled:
        yield None
        return
    hook = config.webhook
    rows = ledger.state.rows

    def recorded_job(row: str, stage: str) -> str | None:
        state = rows.get(row)
        if state is None:
            return None
        if stage == "preview":
            return state.preview_job
        if stage == "render":
            return state.render_job
        return (state.aux_jobs or {}).get(stage)

    async with WebhookReceiver(
        secret=run_secret(run_dir),
        recorded_job=recorded_job,
        batch=batch or run_dir.name,
        host=hook.listen_host,
        port=hook.listen_port,
        public_url=hook.public_url,
        clock=clock,
    ) as receiver:
        sink.emit("webhook_listening", url=receiver.base_url)
        try:
            yield receiver
        finally:
            if receiver.rejected:
                sink.emit("webhooks_rejected", **dict(receiver.rejected))


async def work_rows(
    spec: RunSpec,
    config: Config,
    client: PictoryClient,
    ledger: Ledger,
    sink: Sink,
    clock: Clock,
    rng: random.Random,
    summary: RunSummary,
    admission: Admission,
    webhooks: WebhookReceiver | None,
    network: NetworkWatch,
    only: frozenset[str] | None = None,
    render_slots: RenderSlots | None = None,
    *,
    stop_at_window_end: bool = False,
) -> None:
    videos_dir = spec.run_dir / VIDEOS_DIR
    make_private_dir(videos_dir)
    svc = Services(
        client=client,
        ledger=ledger,
        clock=clock,
        sink=sink,
        poll=config.poll,
        videos_dir=videos_dir,
        render_slots=render_slots or slots(_render_slots(config)),
        download_slots=slots(config.limits.max_downloads_in_flight),
        templates=TemplateRegistry(client, ledger, sink),
        admission=admission,
        webhooks=webhooks,
        transfer_policy=RetryPolicy(
            max_attempts=config.retry.transfer_max_attempts,
            base_delay_s=config.retry.base_delay_s,
            max_delay_s=config.retry.max_delay_s,
        ),
        rng=rng,
        rerender_ambiguous=config.run.rerender_ambiguous,
        direct=config.run.route == "direct",
        allowed_paths=tuple(Path(p) for p in spec.manifest_options.allow_paths),
        render_with_params=config.run.render_with_params,
        posters=config.report.posters,
        partials=_partials(videos_dir),
        clean_after_download=config.pictory.clean_after_download,
        keep_local=config.run.keep_local,
        delivers=config.deliver.url is not None,
        destinations=destinations(config),
    )
    if svc.destinations.url is not None:  # a wrong profile or URL stops the run before a row
        await svc.destinations.get(None)
    if svc.keep_local != "all" and not svc.delivers:
        sink.emit("keep_local_kept", keep_local=svc.keep_local)

    def tidy_outstanding(state: RowState | None) -> bool:
        """A done row whose tidying is not finished (``stages.tidy``) is worked on again."""
        return state is not None and tidy.outstanding(
            state, clean=svc.clean_after_download, keep_local=svc.keep_local, delivers=svc.delivers
        )

    row_slots = slots(config.limits.max_rows_in_flight)

    async def work(job: RowJob) -> None:
        started = clock.now()
        try:
            status = await run_row(job, svc)
            admission.row_finished(status, clock.now() - started)
        except LeaseLost as exc:  # a shared ledger gave the row to another worker: drop it
            sink.emit("lease_lost", row=job.row_id, message=str(exc))
        except StorageError as exc:  # the row stays where the ledger says: resumable
            disk_fault(exc, job.row_id)
        except CredentialsStop as exc:  # the API refused the key: nothing more is sent
            stop(str(exc))  # the row stays where the ledger says (pending): resumable
        finally:
            admission.row_left(job.row_id)
            ledger.release(job.row_id)  # keeps memory flat however long the batch
            row_slots.release()

    def disk_fault(exc: StorageError, row: str | None) -> None:
        """Stop admitting; the rows in flight end at their next write, each resumable."""
        sink.emit("storage_fault", row=row, path=exc.path, reason=exc.reason)
        if summary.storage_fault is None:
            summary.storage_fault = exc
            stop(f"disk: {exc}")

    async def feed(tg: anyio.abc.TaskGroup) -> None:
        try:
            await feed_rows(tg)
        except StorageError as exc:
            disk_fault(exc, None)

    async def feed_rows(tg: anyio.abc.TaskGroup) -> None:
        told = len(ledger.taken_over)
        async for job in ledger.rows_to_work_on(only):
            for row, previous in ledger.taken_over[told:]:  # a shared batch's lease takeovers
                sink.emit("row_taken_over", row=row, previous=previous)
            told = len(ledger.taken_over)
            state = ledger.state.rows.get(job.row_id)
            if state is not None:
                state = await triage.changed_values(state, job, config, ledger, sink, videos_dir)
            if (
                not await triage.admit(state, config, ledger, job)
                and not tidy_outstanding(state)
                and not undelivered(state, svc)
            ):
                summary.skipped_done += state is not None and state.status == "done"
                ledger.release(job.row_id)
                continue
            needs_render = state is None or (state.render_job is None and state.status != "done")
            if needs_render and not await admission.reserve_render(job.row_id, job):
                ledger.release(job.row_id)
                return
            await row_slots.acquire()
            if not await admission.admit():
                admission.row_left(job.row_id)
                ledger.release(job.row_id)
                row_slots.release()
                return
            summary.started += 1
            tg.start_soon(work, job)

    rows_scope = anyio.CancelScope()
    feed_scope = anyio.CancelScope()

    def interrupted(signal_name: str) -> None:
        summary.interrupted = True
        summary.interrupt_signal = summary.interrupt_signal or signal_name

    def stop(reason: str) -> None:
        admission.request_stop(reason)
        feed_scope.cancel()

    async with anyio.create_task_group() as control_tg:
        drain = watchers.Drain(
            clock,
            config.run.drain_limit_s,
            lambda: config.limits.max_rows_in_flight - row_slots.value,
        )
        control_tg.start_soon(watchers.watch_signals, stop, rows_scope, sink, interrupted, drain)
        control_tg.start_soon(watchers.report_rate, client, sink, clock)
        control_tg.start_soon(
            watchers.watch_network, client, network, stop, rows_scope, clock, config
        )
        if stop_at_window_end and admission.window is not None:
            control_tg.start_soon(
                watchers.close_at_window_end, admission.window, clock, rows_scope, sink
            )
        with rows_scope:
            async with anyio.create_task_group() as assets_tg:  # waited for: results name GIFs
                if config.report.preview_gif:
                    svc.assets = AssetMaker(assets_tg, spec.run_dir, gif_size(config.report))
                async with anyio.create_task_group() as rows_tg:
                    with feed_scope:
                        await feed(rows_tg)
        control_tg.cancel_scope.cancel()
    await svc.destinations.aclose()


def destinations(config: Config) -> Destinations:
    """The run's delivery destinations (``[deliver]``, ``--deliver``; ``stages.deliver``)."""
    deliver = config.deliver
    return Destinations(
        deliver.url,
        presign_s=None if deliver.presign_days is None else deliver.presign_days * 86400,
        public_url_base=deliver.public_url_base,
        endpoint_url=deliver.endpoint_url,
        region=deliver.region,
        profile=deliver.profile,
    )


def _partials(videos_dir: Path) -> frozenset[str]:
    """The partial downloads an earlier run left (one folder scan instead of a look per video)."""
    with os.scandir(videos_dir) as entries:
        return frozenset(e.name for e in entries if e.name.endswith(".part"))


def _render_slots(config: Config) -> int:
    """The account's renders of ours at once (``limits.render_slots_total``)."""
    return render_slots_total(
        config.limits.max_renders_in_flight, config.limits.renders_queued_ahead
    )


def slots(limit: int) -> anyio.Semaphore:
    """``limit`` things at once (rows, renders, downloads). A semaphore with ``fast_acquire``: a
    free slot is taken without a trip through the event loop, which a ``CapacityLimiter``
    makes on every acquire (measured: a few per row, ~3 % of the CPU of a row)."""
    return anyio.Semaphore(limit, fast_acquire=True)


def _retry_policy(config: Config) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=config.retry.max_attempts,
        base_delay_s=config.retry.base_delay_s,
        max_delay_s=config.retry.max_delay_s,
    )
