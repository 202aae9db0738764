"""The run's memory, whatever stores it: the ``Ledger`` protocol and ``LedgerState``.

Every state change of a row is an event (``records``); folding a ledger's events in
order rebuilds every row's state, which is how a run resumes after a crash, a Ctrl-C or a failure.
``Ledger.append`` returns only once the event is durable, so the delivery contract (the render
intent durable before the render is sent) holds for every implementation:

- ``ledger_file.FileLedger``: ``RUN_DIR/ledger.jsonl``, the embedded default;
- ``pg.ledger.PgLedger``: a batch shared by several workers (docs/shared-ledger.md).

``run``, ``commands``, ``status`` and ``results`` use only this module's names.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.input.rows import RowJob
from orchestrator.ledger.forget import forget_row, masked_rows
from orchestrator.ledger.records import (
    Ambiguous,
    AuxJob,
    BatchChoices,
    CanaryApproved,
    CanaryChosen,
    Delivered,
    Downloaded,
    Event,
    Failed,
    Forgotten,
    JobsCleaned,
    LocalRemoved,
    PreviewJob,
    PreviewReady,
    RenderIntent,
    RenderJob,
    RenderReady,
    RenderRefused,
    Retry,
    RetryFailed,
    RowAdmitted,
    RowEvent,
    RunStarted,
    SessionEnded,
    TemplateUploaded,
    Uploaded,
)
from orchestrator.ledger.row_state import RowState, RowStore

RECENT_DONE_S = 600.0
"""How far back from the latest download ``LedgerState.recent_done`` keeps times (the ETA's
window)."""
RECENT_DONE_MAX = 2048
"""At most this many of them: enough for a rate, and flat memory however fast rows finish."""


@dataclass(slots=True)
class Sessions:
    """Time spent working (each run session's span, summed) and rows downloaded in it."""

    active_s: float = 0.0
    downloaded: int = 0
    started_at: float | None = None
    last_at: float | None = None

    def saw(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.close()
            self.started_at = event.ts
        elif isinstance(event, Downloaded):
            self.downloaded += 1
        self.last_at = event.ts

    def close(self) -> None:
        if self.started_at is not None and self.last_at is not None:
            self.active_s += max(0.0, self.last_at - self.started_at)
        self.started_at = None

    @property
    def total_active_s(self) -> float:
        open_s = 0.0
        if self.started_at is not None and self.last_at is not None:
            open_s = max(0.0, self.last_at - self.started_at)
        return self.active_s + open_s


@dataclass(slots=True)
class LedgerState:
    """What folding the ledger tells: the run sessions, uploaded templates, the canary, every
    row, and when rows were recently downloaded."""

    runs: list[RunStarted] = field(default_factory=list)
    templates: dict[str, str] = field(default_factory=dict)
    rows: RowStore = field(default_factory=RowStore)
    canary_rows: frozenset[str] | None = None
    canary_approved: bool = False
    last_end: SessionEnded | None = None
    """How the latest session ended (None: it is running, or it was killed or crashed)."""
    retry_round_at: float | None = None
    """When ``--retry-failed`` was last recorded: failures older than it may be tried again."""
    choices: BatchChoices = field(default_factory=BatchChoices)
    """The batch-wide choices the latest session stated (see ``records.BatchChoices``)."""
    forgotten: set[str] = field(default_factory=set)
    """The rows ``orchestrator forget`` erased (``records.Forgotten``): their manifest values
    are shown as the marker, never as the manifest holds them (``BatchSnapshot``)."""
    sessions: Sessions = field(default_factory=Sessions)
    recent_done: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_DONE_MAX))
    """``ts`` of the latest downloads (at most ``RECENT_DONE_MAX``) within ``RECENT_DONE_S`` of
    the latest one."""

    @property
    def run_record(self) -> RunStarted | None:
        """The batch's record: its first run session (manifest, template, flow, options)."""
        return self.runs[0] if self.runs else None

    @property
    def canary_waiting(self) -> bool:
        return self.canary_rows is not None and not self.canary_approved

    def may_retry(self, state: RowState) -> bool:
        """Whether a failed row is to be tried again: its failure predates ``--retry-failed``."""
        return (
            state.failed_at is not None
            and self.retry_round_at is not None
            and state.failed_at <= self.retry_round_at
        )

    def row(self, row_id: str) -> RowState:
        """The row's live state (see ``row_state.RowStore.take``)."""
        return self.rows.take(row_id)

    def forget_template(self, sha256: str, stale_id: str) -> None:
        """The API no longer knows ``stale_id``: the next row uploads the template again."""
        if self.templates.get(sha256) == stale_id:
            del self.templates[sha256]

    def apply_replayed(self, event: Event) -> None:
        """``apply`` for replays, which hold no row references: memory stays bounded."""
        self.apply(event)
        self.rows.spill_excess()

    def apply(self, event: Event) -> None:
        """Fold one event into the state."""
        self.sessions.saw(event)
        if isinstance(event, RowEvent):
            self._apply_row(self.row(event.row), event)
        elif isinstance(event, RunStarted):
            self.runs.append(event)
            self.last_end = None
        elif isinstance(event, SessionEnded):
            self.last_end = event
        elif isinstance(event, TemplateUploaded):
            self.templates[event.sha256] = event.template_id
        elif isinstance(event, CanaryChosen):
            self.canary_rows = frozenset(event.rows)
        elif isinstance(event, CanaryApproved):
            self.canary_approved = True
        elif isinstance(event, BatchChoices):
            self.choices = event
        elif isinstance(event, RetryFailed):
            self.retry_round_at = event.ts

    def _apply_row(self, state: RowState, event: RowEvent) -> None:
        match event:
            case RowAdmitted():
                state.attempts += 1
                state.line = event.line if event.line is not None else state.line
                state.output = event.output if event.output is not None else state.output
                state.flow = event.flow or state.flow
            case Uploaded():
                state.source_url = event.url
            case AuxJob():
                if state.aux_jobs is None:
                    state.aux_jobs = {}
                state.aux_jobs[event.stage] = event.job
            case PreviewJob():
                state.preview_job = event.job
            case PreviewReady():
                state.preview_ready = True
            case RenderIntent():
                state.render_intent = True
                state.rendered_vars = event.vars or state.rendered_vars
                state.rendered_values = event.values or state.rendered_values
            case RenderRefused():
                state.render_intent = False
            case RenderJob():
                state.render_job = event.job
                if state.status == "ambiguous":  # resolved after the fact (e.g. by a webhook)
                    state.status = "pending"
            case RenderReady():
                state.video_url = event.video_url
                state.duration_s = event.duration_s
                state.thumbnail = event.thumbnail
                state.share_url = event.share_url
                state.credits = event.credits
                state.subtitles = event.subtitles
            case Downloaded():
                state.file = event.file
                state.extras = event.extras
                state.bytes = event.bytes
                state.sha256 = event.sha256
                state.downloaded = True
                state.deliver_to = event.deliver
                state.delivered_url = state.delivered_key = state.delivered_expires = None
                state.delivered_sha256 = None
                state.status = "pending" if event.deliver else "done"  # done once delivered
                self._saw_done(event.ts)
            case Delivered():
                state.delivered_url = event.url
                state.delivered_key = event.key
                state.delivered_expires = event.expires
                state.delivered_sha256 = event.sha256
                state.status = "done"
            case Failed():
                state.status = "failed"
                state.fail_stage = event.stage
                state.fail_kind = event.kind
                state.fail_message = event.message
                state.fail_permanent = event.permanent
                state.fail_code = event.error_code
                state.fail_api_message = event.error_message
                state.failed_at = event.ts
            case Ambiguous():
                state.status = "ambiguous"
                state.fail_stage = event.stage
                state.fail_kind = "ambiguous"
                state.fail_message = event.message
            case JobsCleaned():
                state.cleaned_jobs = [*(state.cleaned_jobs or ()), *event.jobs]
            case LocalRemoved():
                state.local_removed = [*(state.local_removed or ()), *event.files]
            case Forgotten():
                forget_row(state, event)
                self.forgotten.add(event.row)
            case Retry():
                state.restart()
                if event.output is not None:
                    state.output_override = event.output

    def _saw_done(self, ts: float) -> None:
        recent = self.recent_done
        recent.append(ts)
        while recent and recent[0] < ts - RECENT_DONE_S:
            recent.popleft()


@dataclass
class BatchSnapshot:
    """A batch as the read side sees it: ``rows()`` lists every row in manifest order (anew at
    each call; only ``row_id``, ``line``, ``variables``, ``flow`` and ``output_name`` are
    meaningful), ``state`` holds every row's state, ``total`` counts the rows when known."""

    rows: Callable[[], Iterator[RowJob]]
    state: LedgerState
    total: int | None = None
    owns_state: bool = False
    """Whether ``close`` closes ``state`` (a fresh fold; not the open ledger's own)."""

    def __post_init__(self) -> None:
        if self.state.forgotten:  # forgotten rows show the marker, whatever the manifest holds
            self.rows = masked_rows(self.rows, self.state)

    def close(self) -> None:
        if self.owns_state:
            self.state.rows.close()


@dataclass(frozen=True)
class SharedLimits:
    """An account's limits shared with the other processes working a batch: request turns (an
    ``api.window_guard.SharedRate``) and render slots (a ``run.stages.base.RenderSlots``)."""

    rate: Any
    renders: Any


class Ledger(Protocol):
    """Where a batch's events are kept. Open one per command; ``aclose`` when done."""

    @property
    def state(self) -> LedgerState:
        """Every event appended or replayed so far, folded."""
        ...

    @property
    def location(self) -> str:
        """Where it is, for messages (a path, or a database URL without its password)."""
        ...

    async def append(self, event: Event, files: Sequence[Path] = ()) -> None:
        """Record ``event`` (its ``ts`` set now); returns once it is durable, and ``files``
        (written without an fsync, e.g. a downloaded video) before it. ``state`` follows at
        once."""
        ...

    def rows_to_work_on(self, only: frozenset[str] | None = None) -> AsyncIterator[RowJob]:
        """The batch's rows this process may work on, in order (rows already done included:
        the caller decides what to skip); ``only``: just these (a canary waiting for approval).
        The file ledger reads its run's manifest; a shared ledger yields the rows it claims for
        this worker."""
        ...

    @property
    def worker_id(self) -> str | None:
        """This process's name among the batch's workers (None: it works alone)."""
        ...

    @property
    def taken_over(self) -> list[tuple[str, str]]:
        """``(row, previous owner)`` of every row this process took from a stopped one."""
        ...

    def shared_limits(
        self, *, max_rps: float, max_per_minute: float | None, max_renders: int
    ) -> SharedLimits | None:
        """The account's request turns (under ``max_rps`` and ``max_per_minute``) and its
        ``max_renders`` render slots, shared with the other processes on this batch; None when
        this process works alone."""
        ...

    async def snapshot(self) -> BatchSnapshot:
        """The read side: every row of the batch in manifest order and every row's state, for
        results, the report and status. Close it when done."""
        ...

    async def retry_failed(self) -> None:
        """Record ``--retry-failed``: every row that failed before now may be tried again, once,
        by whichever process works it next (``LedgerState.may_retry``)."""
        ...

    def release(self, row_id: str) -> None:
        """This process is done with the row for now: its state may leave memory (and a shared
        ledger lets another worker claim it)."""
        ...

    async def aclose(self) -> None:
        """Write what is pending and let the ledger go (its lock, its connections)."""
        ...
