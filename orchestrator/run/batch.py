"""The library API: a batch driven from Python, the same way ``orchestrator run`` drives it.

::

    from orchestrator import Batch, RunOptions

    batch = Batch.from_manifest("jobs/x.csv", template="x.pictai", out="runs/x", simulate="test")
    summary = batch.run_sync(on_event=print)     # or: await batch.run(on_event=...)
    for row in batch.rows():                     # one RowResult per manifest row
        print(row.id, row.status, row.file)

``orchestrator run``, ``resume`` and ``approve`` build a ``Batch`` and call ``Batch.run``: there
is no second run path. What a ``Batch`` is made of (the config file and the environment's
credentials, the run directory's recorded target and choices on a resume) is read as the CLI
reads it; the real API is the default, the embedded simulator only when ``simulate`` names a
profile. Every mistake is raised as one of ``orchestrator.errors`` (``UserError`` and its kind,
with file, line and field where there is one; ``StorageError`` for a disk fault), never as a
``SystemExit``. Events (``Event``) are the records the CLI prints and ``RUN_DIR/log.jsonl`` keeps.

In the main thread a run watches SIGINT and SIGTERM while it lasts, as the CLI does (a first
Ctrl-C drains the rows in flight, a second stops them; ``RunSummary.interrupted`` says so); in
another thread it watches none (``run.watchers``).

May import what ``run`` may (docs/library.md is its guide).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from orchestrator.api import calibration, simulated
from orchestrator.clock import Clock, RealClock
from orchestrator.config import Config, Credentials, load_credentials
from orchestrator.errors import OrchestratorError, RunDirError, UserError
from orchestrator.events import LOG_NAME, FanoutSink, JsonlLogSink, Sink, scrub
from orchestrator.files import loose_modes, make_private_dir
from orchestrator.input import flows
from orchestrator.input.row import ManifestOptions
from orchestrator.input.rows import manifest_rows
from orchestrator.ledger.file import LEDGER_NAME, first_run_record, read_ledger
from orchestrator.ledger.row_state import RowStatus
from orchestrator.report.links import recorded_email_link
from orchestrator.report.results import row_cells
from orchestrator.report.thumbnails import thumbs_in
from orchestrator.run.end import RunSummary
from orchestrator.run.execute import execute
from orchestrator.run.options import RunOptions
from orchestrator.run.spec import RunSpec
from orchestrator.run.target import load_target_config, session_target

DEFAULT_RUNS_DIR = Path("runs")
"""Where a batch's run directory goes when ``out`` is not given: ``runs/MANIFEST-NAME``."""


@dataclass(frozen=True)
class Event:
    """One event of a run: its ``kind`` (``run_started``, ``row_done``, ``retry``, ``rate``,
    ``run_finished``...) and its flat, JSON-able ``fields``, secrets masked; ``as_dict`` is the
    line ``log.jsonl`` keeps (without its ``ts``)."""

    kind: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The event as ``log.jsonl`` keeps it, without its ``ts``."""
        return {"event": self.kind, **self.fields}


EventHandler = Callable[[Event], None]
"""What ``Batch.run`` calls with each event, in the run's own task: keep it quick."""


@dataclass(frozen=True)
class RowResult:
    """One manifest row as ``results.csv`` shows it."""

    id: str
    line: int
    """The manifest line (the row number for a workbook or JSON manifest)."""
    status: RowStatus
    """``done``, ``failed``, ``ambiguous`` or ``pending`` (docs/failures.md says what to do)."""
    file: Path | None
    """The video, when the row is done."""
    error: str
    retry: str
    """What renders a row that is not done: ``resume``, ``retry-failed``,
    ``rerender-ambiguous`` (a ``RunOptions`` field each), or empty."""
    cells: Mapping[str, str]
    """Every one of ``results.csv``'s own columns (``report.results.FIXED_COLUMNS``)."""
    variables: Mapping[str, str]
    """The row's values as ``results.csv`` shows them beside the video."""


class Batch:
    """A batch of videos: a manifest rendered into a run directory (``from_manifest``), or a run
    directory's batch continued (``resume``). ``run`` (or ``run_sync``) renders what is left and
    returns the ``RunSummary``; ``rows`` reads each row's result. Running the same batch again
    renders nothing twice: done rows are skipped, started ones re-attach to their jobs."""

    def __init__(
        self,
        spec: RunSpec,
        config: Config,
        credentials: Credentials,
        *,
        simulate: str | None = None,
    ) -> None:
        """A session of any batch, given whole (a shared batch's worker is one: ``RunSpec``
        with ``ledger_url``); ``from_manifest`` and ``resume`` build one as the CLI does."""
        self.spec = spec
        self.config = config if simulate else calibration.with_profile(config, credentials)
        """Against the real API, with the limits of the account's calibration profile, if any
        (``api.calibration``: config keys still win)."""
        self.credentials = credentials
        self.simulate = simulate
        """The embedded simulator's profile, or None: the API at ``config.api.base_url``."""

    @property
    def run_dir(self) -> Path:
        """Where the batch's ledger, videos, ``results.csv`` and ``report.html`` are."""
        return self.spec.run_dir

    @classmethod
    def from_manifest(
        cls,
        manifest: str | Path,
        *,
        template: str | Path | None = None,
        out: str | Path | None = None,
        flow: str = "template",
        simulate: str | None = None,
        config: str | Path | None = None,
        options: RunOptions | None = None,
        warn: list[str] | None = None,
    ) -> Batch:
        """The batch of ``manifest`` (CSV, Excel, JSON or JSON Lines; one row per video), each
        row filling ``template`` (a ``.pictai`` project; rows may name their own), made in
        ``flow`` (the rows' default), into the run directory ``out`` (default
        ``runs/MANIFEST-NAME``; the same ``out`` continues the batch).

        ``simulate``: a simulator profile (``demo``, ``realistic``, ``flaky``, ``test``) to run
        against the embedded simulator; None (the default) sends to the real API, with the
        credentials of the environment (``PICTORY_CLIENT_ID``... or ``PICTORY_API_KEY``).
        ``config``: a TOML settings file. ``options``: the rest of ``orchestrator run``'s
        options. ``warn`` receives the config file's warnings. Raises ``UserError`` (a
        ``ConfigError`` for missing credentials) before anything is sent; the manifest is
        validated by ``run``."""
        manifest = Path(manifest)
        run_dir = Path(out) if out is not None else DEFAULT_RUNS_DIR / manifest.stem
        return cls._session(
            run_dir,
            manifest=manifest,
            template=Path(template) if template is not None else None,
            flow=flow,
            simulate=simulate,
            config=Path(config) if config is not None else None,
            options=options or RunOptions(),
            warn=warn,
        )

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        *,
        simulate: str | None = None,
        config: str | Path | None = None,
        options: RunOptions | None = None,
        approve: bool = False,
        warn: list[str] | None = None,
    ) -> Batch:
        """The batch recorded in ``run_dir``, continued (``orchestrator resume``): its manifest,
        template and flow, against what it last ran against (its simulator profile, or its base
        URL, and its config file) and with its recorded choices and manifest options, each
        replaced when given here. ``approve``: record the approval of its canary and render the
        rest (``orchestrator approve``; refused when the batch holds no canary)."""
        run_dir = Path(run_dir)
        first = first_run_record(run_dir)
        options = options or RunOptions()
        return cls._session(
            run_dir,
            manifest=Path(first.manifest or ""),
            template=Path(first.template) if first.template else None,
            flow=first.flow or "template",
            simulate=simulate,
            config=Path(config) if config is not None else None,
            options=replace(options, approve=True) if approve else options,
            warn=warn,
            recorded=first.manifest_options,
            canary_required=approve,
        )

    @classmethod
    def _session(
        cls,
        run_dir: Path,
        *,
        manifest: Path,
        template: Path | None,
        flow: str,
        simulate: str | None,
        config: Path | None,
        options: RunOptions,
        warn: list[str] | None,
        recorded: dict[str, Any] | None = None,
        canary_required: bool = False,
    ) -> Batch:
        resuming = recorded is not None or canary_required
        _check_profile(simulate)
        if flow not in flows.names():
            raise UserError(f"flow {flow!r}: choose one of {', '.join(flows.names())}")
        target = session_target(run_dir, simulate=simulate, config=config, reuse=resuming)
        loose = loose_modes(run_dir)
        if loose and warn is not None:
            warn.append(loose)
        settings = options.configured(load_target_config(target, config, warn))
        simulate = target.simulate
        target = replace(target, base_url=None if simulate else settings.api.base_url)
        credentials = load_credentials(required=simulate is None)
        spec = RunSpec(
            run_dir=run_dir,
            manifest=manifest,
            template=template,
            flow=flow,
            choices=options.choices(settings),
            retry_failed=options.retry_failed,
            approve=options.approve,
            canary_required=canary_required,
            manifest_options=options.manifest_options(
                recorded=recorded, manifest=manifest, run_dir=run_dir, config_file=config
            ),
            target=target.record(),
            resuming=resuming,
        )
        return cls(spec, settings, credentials, simulate=simulate)

    async def run(
        self,
        *,
        on_event: EventHandler | None = None,
        sink: Sink | None = None,
        clock: Clock | None = None,
    ) -> RunSummary:
        """Validate the manifest, render every row not done yet, write ``results.csv`` and
        ``report.html``, and return how it went (``RunSummary.exit_code`` is the CLI's exit
        code). Each event goes to ``RUN_DIR/log.jsonl``, to ``on_event`` (an ``Event``) and to
        ``sink`` (``sink.emit(kind, **fields)``, as the CLI's console receives it). A manifest
        with problems raises ``ValidationFailed`` (each problem with its file, line and field)
        and sends nothing; a run directory made for it is removed again."""
        clock = clock or RealClock()
        run_dir = self.spec.run_dir
        created = not run_dir.exists()
        try:
            make_private_dir(run_dir)
            log = JsonlLogSink(run_dir / LOG_NAME, self.credentials.secrets(), clock=clock)
        except OSError as exc:
            raise RunDirError(
                f"{run_dir}: cannot use it as the run directory ({exc.strerror}); "
                "choose a folder you can write with --out"
            ) from exc
        sinks: list[Sink] = [log]
        if sink is not None:
            sinks.append(sink)
        if on_event is not None:
            sinks.append(_HandlerSink(on_event, self.credentials.secrets(), log))
        try:
            async with simulated.target(self.config, self.simulate) as effective:
                return await execute(
                    self.spec, effective, self.credentials, sink=FanoutSink(*sinks), clock=clock
                )
        except UserError:
            if created and not (run_dir / LEDGER_NAME).exists():
                # Refused before anything was recorded (a bad manifest...): leave no --out behind.
                log.close()
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        except BaseExceptionGroup as group:  # our error met inside a task group: raise it alone
            ours = _our_errors(group)
            if len({str(exc) for exc in ours}) != 1:  # a crash, or several different errors
                raise
            raise ours[0] from group
        finally:
            log.close()

    def run_sync(
        self, *, on_event: EventHandler | None = None, sink: Sink | None = None
    ) -> RunSummary:
        """``run`` in an event loop of its own, for code that is not async (not from inside a
        running loop: ``await run`` there)."""
        return anyio.run(
            functools.partial(self.run, on_event=on_event, sink=sink),
            backend_options=event_loop_options(),
        )

    def rows(self) -> Iterator[RowResult]:
        """Each manifest row's result, in manifest order, as the ledger says now (the same as
        ``results.csv`` after a run). Raises ``RunDirError`` before the batch has run."""
        state = read_ledger(self.spec.run_dir)
        try:
            first = state.run_record
            options = (
                ManifestOptions.from_record(first.manifest_options)
                if first is not None
                else self.spec.manifest_options
            )
            listed = manifest_rows(
                self.spec.manifest or Path(""), self.spec.template, self.spec.flow, options
            )
            email = recorded_email_link(state)
            thumbs = thumbs_in(self.spec.run_dir)
            for job in listed():
                st = state.rows.get(job.row_id)
                cells, variables = row_cells(
                    job.row_id, job.line, st, job.variables, thumbs=thumbs, email=email
                )
                yield RowResult(
                    id=job.row_id,
                    line=job.line,
                    status=st.status if st is not None else "pending",
                    file=self.spec.run_dir / cells["file"] if cells["file"] else None,
                    error=cells["error"],
                    retry=cells["retry"],
                    cells=cells,
                    variables=dict(variables),
                )
        finally:
            state.rows.close()


class _HandlerSink:
    """Hands each event to an ``EventHandler``, secrets masked. A handler that raises does not
    stop the run: its first failure is logged (``event_handler_failed``)."""

    def __init__(self, handler: EventHandler, secrets: list[str], log: Sink) -> None:
        self._handler = handler
        self._secrets = secrets
        self._log = log
        self._failed = False

    def emit(self, kind: str, /, **fields: Any) -> None:
        shown = {k: scrub(v, self._secrets) if isinstance(v, str) else v for k, v in fields.items()}
        try:
            self._handler(Event(kind, shown))
        except Exception as exc:  # a sink never raises into the pipeline
            if not self._failed:
                self._failed = True
                self._log.emit("event_handler_failed", kind=kind, error=repr(exc))


def _check_profile(simulate: str | None) -> None:
    if simulate is None:
        return
    from orchestrator.simulator.settings import PROFILE_NAMES

    if simulate not in PROFILE_NAMES:
        raise UserError(
            f"simulate={simulate!r}: choose a simulator profile, one of {', '.join(PROFILE_NAMES)}"
        )


def _our_errors(group: BaseExceptionGroup[BaseException]) -> list[OrchestratorError]:
    """The errors of ours ``group`` holds, when it holds nothing else (else [])."""
    found: list[OrchestratorError] = []
    for exc in group.exceptions:
        if isinstance(exc, OrchestratorError):
            found.append(exc)
        elif isinstance(exc, BaseExceptionGroup):
            inner = _our_errors(exc)
            if not inner:
                return []
            found += inner
        else:
            return []
    return found


def event_loop_options() -> dict[str, Any]:
    """anyio's options for a batch's own event loop: uvloop's loop (libuv, in C) where it is
    installed (a dependency everywhere but Windows), else asyncio's own. The loop is a large
    share of a row's CPU against a fast API: docs/performance.md#cpu-per-row."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}
