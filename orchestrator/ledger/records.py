"""The ledger's events. Plain data, no I/O: any ledger (the JSONL file, a database) stores these.

Each event is a frozen dataclass whose ``name`` is the ``e`` of its stored form; their one
serialiser (``encode``, ``decode``) is ``ledger.codec``. The events and what each means:

===================  ==========================================================================
``run``              a run session began: ``format`` (see below), ``session``, ``manifest``,
                     ``manifest_sha256``, ``template``, ``flow``, ``manifest_options``,
                     ``config`` (no secrets), ``owner`` (host, pid, nonce), ``target`` (what
                     it sent its requests to: ``simulate``, the ``--simulate`` profile; or
                     ``base_url``, an API's; and ``config``, the ``--config`` file's absolute
                     path; ``resume`` and ``approve`` reuse it)
``template``         a template was uploaded: ``sha256`` (of the .pictai bytes), ``template_id``
``row``              a row was admitted: ``row`` (identity), ``line``, ``output``, ``flow``
``uploaded``         a row's source video is where the API can read it: ``row``, ``url``,
                     ``bytes`` (0 when the row gave a URL)
``aux_job``          a transcription or highlights job exists: ``row``, ``stage``, ``job``
``preview_job``      the preview job exists: ``row``, ``job``
``preview_ready``    the preview finished: ``row``, ``job``
``render_intent``    we are about to send the render request: ``row``, ``preview_job``, ``vars``
                     (digest of the values), ``values``
``render_refused``   the render request was answered with an error, so no job was started:
                     ``row``, ``kind``, ``message`` (clears the intent)
``render_job``       the render job exists: ``row``, ``job``
``render_ready``     the render finished: ``row``, ``job``, ``video_url``, ``duration_s``, and
                     what else the job told (each when it did): ``thumbnail``, ``share_url``,
                     ``credits`` (``aiCreditsUsed``), ``subtitles`` (``{srtFile: URL, ...}``,
                     links only, never a file's contents)
``downloaded``       the video is in place: ``row``, ``file``, ``bytes``, ``sha256``, ``extras``,
                     ``deliver`` (the destination it is to be delivered to, ``--deliver``: the
                     row is done only once ``delivered``)
``delivered``        the video is in the destination, its checksum verified: ``row``,
                     ``destination`` (``s3://bucket/prefix/`` or ``file:///path/``), ``key``,
                     ``url`` (what results.csv links), ``bytes``, ``sha256``, ``expires`` (when
                     ``url`` stops working, seconds since the epoch: a presigned URL)
``failed``           the row failed: ``row``, ``stage``, ``kind``, ``message``, ``permanent``,
                     and Pictory's own ``error_code`` and ``error_message``, verbatim, when it
                     sent them
``ambiguous``        a render may or may not exist: ``row``, ``stage``, ``message``
``retry``            a failed row starts over (its earlier jobs are abandoned): ``row``,
                     ``reason``, ``output`` (a new file name, after its values changed)
``canary``           the canary's rows were chosen: ``size``, ``rows``
``approved``         a person approved the canary: ``rows``
``ended``            a session ended on its own terms: ``how`` (``finished``, ``halted``,
                     ``interrupted``), ``reason`` (none after a kill or a crash)
``retry_failed``     ``--retry-failed`` was given: rows that failed before it are tried again,
                     once
``cleaned``          ``[pictory] clean_after_download``: the row's jobs were cleaned at Pictory
                     (``DELETE /v1/jobs/{id}/clean``, §5.4): ``row``, ``jobs``
``local_removed``    ``--keep-local posters|none``: the row's local copies were removed after a
                     checksum-verified delivery: ``row``, ``files`` (relative to the run
                     directory)
``forgotten``        ``orchestrator forget``: the row's values were erased from the ledger (its
                     earlier records rewritten, every value replaced by ``[forgotten DATE]``)
                     and from every file; it is never rendered again: ``row``, ``date``
                     (``YYYY-MM-DD``)
``choices``          the batch-wide choices of a session (``BatchChoices``): ``canary``,
                     ``halt_after``, ``max_renders``, ``max_minutes``, ``max_credits``,
                     ``window``, ``until``, ``time_zone``,
                     ``at_window_end``, ``check_quota``, ``rerender_changed``, ``notify`` (where
                     the URL comes from, never the URL)
===================  ==========================================================================

Formats. Every ``run`` record carries the format of the ledger its version writes
(``LEDGER_FORMAT``); a ``run`` record without one is format 1 (``UNNUMBERED_FORMAT``). A version
reads every format up to its own and refuses a newer one by name:

======  =======================================================================================
format  what changed
======  =======================================================================================
1       the ledgers of every release before formats were numbered (no ``format`` field); those
        releases skip an event kind they do not know
2       ``run`` records carry ``format``; new kinds ``choices`` and ``retry_failed``; a kind
        this version does not know, or a ``run`` record of a newer format, is refused instead
        of skipped
3       new kinds ``delivered`` and ``forgotten`` (a forgotten row is never rendered again: an
        older version would render it from the manifest); ``downloaded`` may carry ``deliver``
        (a row so downloaded is not done until delivered: an older version would take it as
        done); new kinds ``cleaned`` and ``local_removed`` (what retention did to a done row)
======  =======================================================================================

Bump ``LEDGER_FORMAT`` (and add a row here) for a new event kind, or for a field whose absence
or meaning an older version would misread; a new optional field an older version may ignore
needs no bump. The PostgreSQL ledger then also needs a schema migration (an empty one will do),
so that workers of older releases refuse the database when they connect (``pg.schema``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

LEDGER_FORMAT = 3
"""The ledger format this version writes in every ``run`` record, and the newest it reads."""
UNNUMBERED_FORMAT = 1
"""The format of a ``run`` record that carries none (written before formats were numbered)."""

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonObject = dict[str, JsonValue]


# ---- ledger events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    name: ClassVar[str] = ""
    ts: float = 0.0
    """When the ledger recorded it (seconds since the epoch); set by ``Ledger.append``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RowEvent(Event):
    row: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    name: ClassVar[str] = "run"
    format: int = LEDGER_FORMAT
    """The ledger format of the version that wrote it (a stored record without one: 1)."""
    session: int = 1
    manifest: str | None = None
    manifest_sha256: str | None = None
    template: str | None = None
    flow: str | None = None
    manifest_options: JsonObject | None = None
    config: JsonObject | None = None
    owner: JsonObject | None = None
    """Who ran the session: ``host``, ``pid`` and a ``nonce`` (a run directory's ledger stamps
    it; an older version ignores it)."""
    target: JsonObject | None = None
    """What the session sent its requests to: ``simulate`` (the ``--simulate`` profile: the
    embedded simulator, whose jobs live as long as its process) or ``base_url`` (an API), and
    ``config`` (the absolute path of ``--config``, when given). ``resume`` and ``approve`` reuse
    the latest one; an older version ignores it (older ledgers have none)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateUploaded(Event):
    name: ClassVar[str] = "template"
    sha256: str
    template_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RowAdmitted(RowEvent):
    name: ClassVar[str] = "row"
    line: int | None = None
    output: str | None = None
    flow: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Uploaded(RowEvent):
    name: ClassVar[str] = "uploaded"
    url: str
    bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuxJob(RowEvent):
    name: ClassVar[str] = "aux_job"
    stage: str
    job: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviewJob(RowEvent):
    name: ClassVar[str] = "preview_job"
    job: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviewReady(RowEvent):
    name: ClassVar[str] = "preview_ready"
    job: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderIntent(RowEvent):
    name: ClassVar[str] = "render_intent"
    preview_job: str | None = None
    vars: str | None = None
    values: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderRefused(RowEvent):
    name: ClassVar[str] = "render_refused"
    kind: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderJob(RowEvent):
    name: ClassVar[str] = "render_job"
    job: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderReady(RowEvent):
    name: ClassVar[str] = "render_ready"
    job: str | None = None
    video_url: str | None = None
    duration_s: float | None = None
    thumbnail: str | None = None  # what else the job told: see the module docstring
    share_url: str | None = None
    credits: float | None = None
    subtitles: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Downloaded(RowEvent):
    name: ClassVar[str] = "downloaded"
    file: str
    bytes: int
    sha256: str
    extras: list[str] | None = None
    deliver: str | None = None
    """The destination the video is to be delivered to (``--deliver``); None: no delivery."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivered(RowEvent):
    """The row's video is in its destination, checksum verified (``run.stages.deliver``)."""

    name: ClassVar[str] = "delivered"
    destination: str
    key: str
    url: str
    bytes: int
    sha256: str
    expires: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed(RowEvent):
    name: ClassVar[str] = "failed"
    stage: str | None = None
    kind: str | None = None
    message: str | None = None
    permanent: bool = False
    error_code: str | None = None  # Pictory's own, verbatim (e.g. TEXT_TO_VIDEO_FAILED)
    error_message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Ambiguous(RowEvent):
    name: ClassVar[str] = "ambiguous"
    stage: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry(RowEvent):
    name: ClassVar[str] = "retry"
    reason: str | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryChosen(Event):
    name: ClassVar[str] = "canary"
    size: int | None = None
    rows: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryApproved(Event):
    name: ClassVar[str] = "approved"
    rows: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded(Event):
    """A session (a run, or a worker) ended on its own terms: ``how`` is ``finished``,
    ``halted`` (``reason``: why it stopped admitting rows) or ``interrupted`` (``reason``: the
    signal). A session whose ``run`` record has none after it was killed or crashed."""

    name: ClassVar[str] = "ended"
    how: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryFailed(Event):
    """``--retry-failed``: every row whose failure was recorded before this event may be tried
    again, once (a failure recorded after it is that retry's outcome)."""

    name: ClassVar[str] = "retry_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchChoices(Event):
    """The batch-wide choices of a session: stated by ``run``/``resume``/``approve`` for a run
    directory (each session its own) and by ``submit`` for a shared batch (every worker obeys
    them). Never a secret: ``notify`` says where the URL comes from (``env:NAME`` or ``config``)."""

    name: ClassVar[str] = "choices"
    canary: int | None = None
    halt_after: str | None = None
    max_renders: int | None = None
    max_minutes: float | None = None
    max_credits: float | None = None
    window: str | None = None
    until: str | None = None
    time_zone: str | None = None
    at_window_end: str | None = None
    check_quota: bool = False
    rerender_changed: bool = False
    notify: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobsCleaned(RowEvent):
    """The row's jobs (render, preview) were cleaned at Pictory once its video was verified
    (``[pictory] clean_after_download``; a job Pictory no longer knew counts as cleaned)."""

    name: ClassVar[str] = "cleaned"
    jobs: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalRemoved(RowEvent):
    """The row's local copies were removed (``--keep-local``), only ever after a
    checksum-verified delivery: ``files``, relative to the run directory."""

    name: ClassVar[str] = "local_removed"
    files: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Forgotten(RowEvent):
    """``orchestrator forget``: the row's values were erased (``ledger.forget``); the row keeps
    its identity and status and is never rendered again. ``date``: ``YYYY-MM-DD``, the day."""

    name: ClassVar[str] = "forgotten"
    date: str

    @property
    def marker(self) -> str:
        """What stands where the row's values were: ``[forgotten 2026-12-07]``."""
        return forgotten_marker(self.date)


def forgotten_marker(date: str) -> str:
    """``[forgotten DATE]``: what replaces a forgotten row's values everywhere."""
    return f"[forgotten {date}]"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls
    for cls in (
        RunStarted,
        TemplateUploaded,
        RowAdmitted,
        Uploaded,
        AuxJob,
        PreviewJob,
        PreviewReady,
        RenderIntent,
        RenderRefused,
        RenderJob,
        RenderReady,
        Downloaded,
        Delivered,
        Failed,
        Ambiguous,
        Retry,
        CanaryChosen,
        CanaryApproved,
        SessionEnded,
        RetryFailed,
        BatchChoices,
        JobsCleaned,
        LocalRemoved,
        Forgotten,
    )
}
"""Every event kind by its stored name: the one list of them."""
