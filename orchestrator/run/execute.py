"""A batch from start to finish: pre-flight, ledger, task pool, results. ``execute`` is the API.

Rows are read from the manifest lazily and admitted into a bounded pool (``max_rows_in_flight``),
so a million-row manifest never becomes a million tasks. A row the ledger says is done is skipped;
a row with recorded jobs re-attaches to them (see ``pipeline``).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import anyio.abc

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter, SharedRate
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.webhooks import WebhookReceiver, run_secret
from orchestrator.clock import Clock, RealClock
from orchestrator.config import Config, Credentials
from orchestrator.errors import LeaseLost, QuotaError, RunDirError, ValidationFailed
from orchestrator.events import Sink
from orchestrator.input.manifest import manifest_digest
from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions
from orchestrator.input.rows import RowJob, TemplateCache, iter_row_jobs
from orchestrator.input.validate import validate_manifest
from orchestrator.ledger.file import FileLedger
from orchestrator.ledger.protocol import Ledger
from orchestrator.ledger.records import RunStarted
from orchestrator.report.results import write_results
from orchestrator.run import canary, triage, watchers
from orchestrator.run.admission import Admission, HaltPolicy, NetworkWatch, Window
from orchestrator.run.end import end_of_run
from orchestrator.run.pipeline import run_row
from orchestrator.run.stages.base import RenderSlots, Services
from orchestrator.run.stages.template_upload import TemplateRegistry

VIDEOS_DIR = "videos"
MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class RunSpec:
    manifest: Path
    template: Path | None
    run_dir: Path
    retry_failed: bool = False
    flow: str = "template"
    halt: HaltPolicy | None = None
    max_renders: int | None = None
    window: Window | None = None
    at_window_end: Literal["finish", "stop"] = "finish"
    check_quota: bool = False
    canary: int | None = None
    approve: bool = False
    canary_required: bool = False
    """``orchestrator approve``: refuse a run directory that holds no canary to approve."""
    manifest_options: ManifestOptions = DEFAULT_OPTIONS


@dataclass
class RunSummary:
    run_dir: Path
    counts: Counter[str] = field(default_factory=Counter)
    skipped_done: int = 0
    started: int = 0
    requests: int = 0
    elapsed_s: float = 0.0
    results_path: Path | None = None
    interrupted: bool = False
    stop_reason: str | None = None
    failed_permanent: int = 0
    """Of the failed rows, those only ``--retry-failed`` renders again."""
    awaiting_approval: str | None = None
    """Set when a canary was rendered and the rest waits: the line saying how to approve."""
    report_path: Path | None = None

    @property
    def exit_code(self) -> int:
        """130 after a signal; 3 when a canary waits for approval; 0 when every row is done;
        1 when some are not (yet)."""
        if self.interrupted:
            return 130
        if self.awaiting_approval is not None:
            return 3
        bad = sum(n for status, n in self.counts.items() if status != "done")
        return 0 if bad == 0 else 1


async def execute(
    spec: RunSpec,
    config: Config,
    credentials: Credentials,
    *,
    sink: Sink,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> RunSummary:
    """Run (or resume) the batch ``spec`` against ``config.api.base_url``."""
    clock = clock or RealClock()
    rng = rng or random.Random()
    started_at = clock.now()
    report = await anyio.to_thread.run_sync(
        validate_manifest, spec.manifest, spec.template, spec.flow, spec.manifest_options
    )
    if not report.ok:
        raise ValidationFailed(
            [str(p) for p in report.problems[:MAX_PROBLEMS_SHOWN]], report.problem_count
        )

    def manifest_rows() -> Iterator[RowJob]:
        cache = TemplateCache()
        rows = iter_row_jobs(spec.manifest, spec.template, cache, spec.flow, spec.manifest_options)
        return (job for _, job in rows)

    ledger: Ledger = FileLedger.open(spec.run_dir, manifest_rows, clock)
    try:
        triage.check_same_manifest(ledger, spec.run_dir, spec.manifest)
        if spec.canary_required and ledger.state.canary_rows is None:
            raise RunDirError(
                f"{spec.run_dir} holds no canary to approve; `orchestrator resume "
                f"{spec.run_dir}` continues a batch"
            )
        digest = report.manifest_sha256
        if digest is None:  # not read to its end (it cannot be: validation passed)
            digest = await anyio.to_thread.run_sync(manifest_digest, spec.manifest)
        await ledger.append(
            RunStarted(
                session=len(ledger.state.runs) + 1,
                manifest=str(spec.manifest.resolve()),
                manifest_sha256=digest,
                template=str(spec.template.resolve()) if spec.template else None,
                flow=spec.flow,
                manifest_options=spec.manifest_options.recorded(),
                config=config.public_dict(),
            )
        )
        sink.emit(
            "run_started",
            run_dir=str(spec.run_dir),
            rows=report.rows,
            already_done=sum(1 for r in ledger.state.rows.values() if r.status == "done"),
            base_url=config.api.base_url,
            manifest=report.read_as or None,
        )
        only = await canary.gate(
            ledger,
            manifest=spec.manifest,
            template=spec.template,
            flow=spec.flow,
            size=spec.canary,
            approve=spec.approve,
            options=spec.manifest_options,
        )
        summary = RunSummary(run_dir=spec.run_dir)
        network = NetworkWatch(clock, config.run.network_dead_after_s)
        admission = Admission(
            clock,
            sink,
            halt=spec.halt,
            max_renders=spec.max_renders,
            window=spec.window,
            assumed_row_s=config.run.assumed_row_s,
        )
        async with (
            open_client(config, credentials, clock, rng, sink, network) as client,
            open_webhooks(config, spec.run_dir, ledger, clock, sink) as webhooks,
        ):
            if spec.check_quota:
                await _check_quota(client, ledger, config, report.rows, sink)
            await work_rows(
                spec, config, client, ledger, sink, clock, rng, summary, admission, webhooks,
                network, only,
            )  # fmt: skip
            summary.requests = client.requests_sent
        path, counts, failed_permanent = await anyio.to_thread.run_sync(
            write_results,
            spec.run_dir,
            spec.manifest,
            spec.template,
            ledger.state,
            spec.flow,
            spec.manifest_options,
        )
        summary.results_path = path
        summary.stop_reason = admission.stop_reason
        summary.counts = counts
        summary.failed_permanent = failed_permanent
        summary.elapsed_s = clock.now() - started_at
        rest = canary.held_back(only, counts, ledger.state) if only is not None else 0
        if only is not None and rest > 0:
            summary.awaiting_approval = canary.approval_line(spec.run_dir, len(only), rest)
        sink.emit(
            "run_finished",
            **dict(counts),
            elapsed_s=round(summary.elapsed_s, 3),
            requests=summary.requests,
        )
        await end_of_run(spec, config, ledger.state, sink, summary)
        return summary
    finally:
        with anyio.CancelScope(shield=True):
            await ledger.aclose()


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

    async with PictoryClient(
        config.api,
        credentials,
        clock=clock,
        limiter=limiter,
        retry_policy=policy,
        rng=rng,
        on_retry=on_retry,
    ) as client:
        yield client


async def _check_quota(
    client: PictoryClient, ledger: Ledger, config: Config, rows: int, sink: Sink
) -> None:
    """Refuse a batch whose remaining renders cannot fit in the account's video minutes."""
    quota = await client.quota()
    minutes = quota.get("videoMinutes")
    if not isinstance(minutes, dict):
        sink.emit("quota_unknown", answer=str(quota)[:200])
        return
    used = float(minutes.get("used", 0.0))
    limit = float(minutes.get("limit", 0.0))
    done, durations = 0, []
    for r in ledger.state.rows.values():  # one pass: stored rows are read back from disk
        done += r.status == "done"
        if r.duration_s:
            durations.append(r.duration_s)
    per_video_min = (
        sum(durations) / len(durations) / 60 if durations else config.run.assumed_video_minutes
    )
    needed = max(0, rows - done) * per_video_min
    sink.emit("quota", used=used, limit=limit, needed=round(needed, 1))
    if needed > limit - used:
        raise QuotaError(
            f"the batch needs about {needed:.0f} video minutes ({rows - done} videos × "
            f"{per_video_min:.1f} min) but the account has {limit - used:.0f} of {limit:.0f} "
            "left; render fewer rows (--max-renders) or raise the plan's quota"
        )


@contextlib.asynccontextmanager
async def open_webhooks(
    config: Config, run_dir: Path, ledger: Ledger, clock: Clock, sink: Sink
) -> AsyncIterator[WebhookReceiver | None]:
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
) -> None:
    videos_dir = spec.run_dir / VIDEOS_DIR
    videos_dir.mkdir(parents=True, exist_ok=True)
    svc = Services(
        client=client,
        ledger=ledger,
        clock=clock,
        sink=sink,
        poll=config.poll,
        videos_dir=videos_dir,
        render_slots=render_slots or slots(config.limits.max_renders_in_flight),
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
    )
    row_slots = slots(config.limits.max_rows_in_flight)

    async def work(job: RowJob) -> None:
        started = clock.now()
        try:
            status = await run_row(job, svc)
            admission.row_finished(status, clock.now() - started)
        except LeaseLost as exc:  # a shared ledger gave the row to another worker: drop it
            sink.emit("lease_lost", row=job.row_id, message=str(exc))
        finally:
            admission.row_left(job.row_id)
            ledger.release(job.row_id)  # keeps memory flat however long the batch
            row_slots.release()

    async def feed(tg: anyio.abc.TaskGroup) -> None:
        async for job in ledger.rows_to_work_on():
            if only is not None and job.row_id not in only:
                continue  # held back until the canary is approved
            state = ledger.state.rows.get(job.row_id)
            if state is not None:
                state = await triage.changed_values(state, job, config, ledger, sink, videos_dir)
            if not await triage.admit(state, spec.retry_failed, config, ledger, job):
                summary.skipped_done += state is not None and state.status == "done"
                continue
            needs_render = state is None or (state.render_job is None and state.status != "done")
            if needs_render and not await admission.reserve_render(job.row_id):
                return
            await row_slots.acquire()
            if not await admission.admit():
                admission.row_left(job.row_id)
                row_slots.release()
                return
            summary.started += 1
            tg.start_soon(work, job)

    rows_scope = anyio.CancelScope()
    feed_scope = anyio.CancelScope()

    def interrupted() -> None:
        summary.interrupted = True

    def stop(reason: str) -> None:
        admission.request_stop(reason)
        feed_scope.cancel()

    async with anyio.create_task_group() as control_tg:
        control_tg.start_soon(watchers.watch_signals, stop, rows_scope, sink, interrupted)
        control_tg.start_soon(watchers.report_rate, client, sink, clock)
        control_tg.start_soon(
            watchers.watch_network, client, network, stop, rows_scope, clock, config
        )
        if spec.window is not None and spec.at_window_end == "stop":
            control_tg.start_soon(
                watchers.close_at_window_end, spec.window, clock, rows_scope, sink
            )
        with rows_scope:
            async with anyio.create_task_group() as rows_tg:
                with feed_scope:
                    await feed(rows_tg)
        control_tg.cancel_scope.cancel()


def _partials(videos_dir: Path) -> frozenset[str]:
    """The partial downloads an earlier run left (one folder scan instead of a look per video)."""
    with os.scandir(videos_dir) as entries:
        return frozenset(e.name for e in entries if e.name.endswith(".part"))


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
