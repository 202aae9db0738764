"""What every stage receives: the row being worked on and the run's shared services."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from orchestrator.api.client import PictoryClient
from orchestrator.api.responses import JobState
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.webhooks import WebhookReceiver
from orchestrator.clock import Clock
from orchestrator.config import PollConfig
from orchestrator.errors import InputError, PermanentError, RowAmbiguous, RowDeferred
from orchestrator.events import Sink
from orchestrator.input.local_files import FileKind, LocalFiles
from orchestrator.input.rows import RowJob
from orchestrator.ledger.protocol import Ledger
from orchestrator.ledger.records import Ambiguous, JsonObject
from orchestrator.ledger.row_state import RowState
from orchestrator.run.admission import Admission
from orchestrator.run.stages.assets import AssetMaker
from orchestrator.run.stages.poll import FirstReadDelay, wait_for_job
from orchestrator.run.stages.template_upload import TemplateRegistry
from orchestrator.storage.destination import Destinations

# The row-flow signals are defined in ``errors`` (with every exception) and offered here too.
__all__ = ["RowAmbiguous", "RowDeferred", "RowJob", "Services", "record_ambiguous"]


RenderSlots = contextlib.AbstractAsyncContextManager[object]
"""Held from a render's request to its end: an ``anyio.Semaphore`` of ``[limits]
max_renders_in_flight``, or an account's slots shared by several workers (``pg_limits``)."""


def render_slot(slots: RenderSlots, row_id: str) -> contextlib.AbstractAsyncContextManager[object]:
    """The slot the render of ``row_id`` holds. Slots shared by several workers are bound to
    the row (``for_row``: a dead worker's render goes on at Pictory, so its slot passes to the
    worker that takes the row over, ``pg_limits.PgSharedRenders``); a local semaphore is not."""
    for_row = getattr(slots, "for_row", None)
    return slots if for_row is None else for_row(row_id)


@dataclass
class Services:
    """The run's shared side effects and limits, handed to every stage."""

    client: PictoryClient
    ledger: Ledger
    clock: Clock
    sink: Sink
    poll: PollConfig
    videos_dir: Path
    render_slots: RenderSlots
    download_slots: anyio.Semaphore
    templates: TemplateRegistry
    admission: Admission
    """The spend cap, asked before every new render."""
    webhooks: WebhookReceiver | None = None
    transfer_policy: RetryPolicy = field(default_factory=RetryPolicy)
    """Retries of downloads and uploads: CDN traffic, cheap and outside the API's rate limit."""
    rng: random.Random = field(default_factory=random.Random)
    rerender_ambiguous: bool = False
    allowed_paths: tuple[Path, ...] = ()
    """Folders besides each manifest's own that its file cells may name (``--allow-path``)."""
    direct: bool = False
    """Template and storyboard rows render with ``POST /v2/video/storyboard/render``, no preview."""
    render_with_params: bool = True
    partials: frozenset[str] = frozenset()
    """Names of the partial downloads (``.NAME.part``) in ``videos_dir`` when the run started:
    any other download of this run starts without looking for one (a worker-thread hop)."""
    posters: bool = False
    """Make each video's poster frame as it lands (``[report] posters``), in a worker thread
    while the run waits on the API, so the report at the end has none left to make."""
    assets: AssetMaker | None = None
    """Makes each video's preview GIF after its download, off the row's way (``stages.assets``;
    None: ``[report] preview_gif = false``)."""
    clean_after_download: bool = False
    """``[pictory] clean_after_download``: clean a done row's jobs at Pictory (``stages.tidy``)."""
    keep_local: str = "all"
    """``--keep-local``: which local copies stay once a delivery is verified (``stages.tidy``)."""
    delivers: bool = False
    """The run delivers its videos: tidying a row waits for its ``delivered`` record."""
    destinations: Destinations = field(default_factory=Destinations)
    """Where downloaded videos go (``--deliver``; ``stages.deliver``)."""
    first_reads: dict[str, FirstReadDelay] = field(default_factory=dict)
    """Per stage: when to read a fresh job the first time (see ``stages.poll``)."""

    def files(self, row: RowJob) -> LocalFiles:
        """The files ``row``'s manifest may make us read or upload (see ``local_files``)."""
        return LocalFiles.for_manifest(row.manifest or Path("manifest"), self.allowed_paths)

    def local_file(self, row: RowJob, value: str, kind: FileKind) -> Path:
        """``value`` (a manifest cell) as a file to read, checked again at the moment of use; a
        file that moved out since validation fails the row, it is never read."""
        try:
            return self.files(row).path(value, row.manifest or Path("manifest"), kind)
        except InputError as exc:
            raise PermanentError(exc.message) from exc

    def state(self, row: RowJob) -> RowState:
        return self.ledger.state.row(row.row_id)

    def webhook_url(self, row: RowJob, stage: str) -> str | None:
        return self.webhooks.url_for(row.row_id, stage) if self.webhooks is not None else None

    def webhook_input(self, row: RowJob, stage: str) -> JsonObject | None:
        """The ``webhookInput`` beside ``webhook_url`` on the v2 storyboard routes (§6.3)."""
        if self.webhooks is None:
            return None
        echo: JsonObject = {**self.webhooks.input_for(row.row_id, stage)}
        return echo

    def first_read(self, stage: str, interval_s: float, deadline_s: float) -> FirstReadDelay:
        """The stage's learned first-read delay (created at ``interval_s`` on first use)."""
        learned = self.first_reads.get(stage)
        if learned is None:
            learned = self.first_reads[stage] = FirstReadDelay(interval_s, deadline_s)
        return learned

    async def wait_job(
        self,
        job_id: str,
        *,
        stage: str,
        interval_s: float,
        deadline_s: float,
        fresh: bool,
        on_progress: Callable[[JobState], None] | None = None,
    ) -> JobState:
        """Wait for a job of ``stage`` with this run's polling settings (see ``stages.poll``)."""
        return await wait_for_job(
            self.client,
            job_id,
            clock=self.clock,
            rng=self.rng,
            interval_s=self.poll_interval_s(interval_s),
            jitter_fraction=self.poll.jitter_fraction,
            deadline_s=deadline_s,
            stage=stage,
            fresh=fresh,
            on_progress=on_progress,
            webhooks=self.webhooks,
            first_read=self.first_read(stage, interval_s, deadline_s),
            on_unknown_status=lambda value: self.sink.emit(
                "unknown_status", stage=stage, job=job_id, status=value, action="still waiting"
            ),
        )

    def poll_interval_s(self, interval_s: float) -> float:
        """In webhook mode polling is only the fallback, so it is slow."""
        return self.poll.webhook_fallback_interval_s if self.webhooks is not None else interval_s


async def record_ambiguous(row: RowJob, svc: Services, message: str) -> None:
    """The row's render may or may not exist: say so in the ledger and on the sink."""
    await svc.ledger.append(Ambiguous(row=row.row_id, stage="render", message=message))
    svc.sink.emit("row_ambiguous", row=row.row_id, message=message)
