"""The row pool: a session's rows worked on at most ``max_rows_in_flight`` at once
(``work_rows``), so a million-row batch never becomes a million tasks. Rows come from the
ledger's ``rows_to_work_on``; a row the ledger says is done is skipped (unless its tidying or
delivery is outstanding), the rest pass ``admission`` and go through ``pipeline.run_row``. The
control tasks beside them (signals, window end, network) are ``watchers``'. A disk fault or a
refused API key stops admitting; the rows in flight end where the ledger says, resumable."""

from __future__ import annotations

import os
import random
from pathlib import Path

import anyio
import anyio.abc

from orchestrator.api.client import PictoryClient
from orchestrator.api.render_slots import render_slots_total
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.webhooks import WebhookReceiver
from orchestrator.clock import Clock
from orchestrator.config import Config
from orchestrator.errors import CredentialsStop, LeaseLost, StorageError
from orchestrator.events import Sink
from orchestrator.files import make_private_dir
from orchestrator.input.rows import RowJob
from orchestrator.ledger.protocol import Ledger
from orchestrator.ledger.row_state import RowState
from orchestrator.report.previews import gif_size
from orchestrator.run import triage, watchers
from orchestrator.run.admission import Admission, NetworkWatch
from orchestrator.run.end import RunSummary
from orchestrator.run.pipeline import run_row, undelivered
from orchestrator.run.spec import RunSpec
from orchestrator.run.stages import tidy
from orchestrator.run.stages.assets import AssetMaker
from orchestrator.run.stages.base import RenderSlots, Services
from orchestrator.run.stages.template_upload import TemplateRegistry
from orchestrator.storage.destination import Destinations

VIDEOS_DIR = "videos"


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
        render_slots=render_slots or slots(render_slots_of(config)),
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


def render_slots_of(config: Config) -> int:
    """The account's renders of ours at once (``render_slots.render_slots_total``)."""
    return render_slots_total(
        config.limits.max_renders_in_flight, config.limits.renders_queued_ahead
    )


def slots(limit: int) -> anyio.Semaphore:
    """``limit`` things at once (rows, renders, downloads). A semaphore with ``fast_acquire``: a
    free slot is taken without a trip through the event loop, which a ``CapacityLimiter``
    makes on every acquire (measured: a few per row, ~3 % of the CPU of a row)."""
    return anyio.Semaphore(limit, fast_acquire=True)
