"""What a session settles before its first row is sent: the batch-wide choices it obeys
(``session_choices``), its ``run`` record (``record_session``), whose rows it takes over, its
window and its spend plan (``cost_plan``), and how a printed command names its batch
(``batch_ref``). ``execute`` calls these in order; see its docstring for the whole session."""

from __future__ import annotations

import shlex
from dataclasses import fields, replace
from pathlib import Path

import anyio

from orchestrator.config import Config
from orchestrator.errors import UserError
from orchestrator.events import Sink
from orchestrator.input.manifest import manifest_digest
from orchestrator.input.rows import RowLister
from orchestrator.input.validate import ValidationReport
from orchestrator.ledger.protocol import Ledger
from orchestrator.ledger.records import BatchChoices, RunStarted
from orchestrator.run import cost, session, triage
from orchestrator.run.admission import Window
from orchestrator.run.spec import RunSpec


async def session_choices(
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


async def record_session(
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


def say_if_taken_over(spec: RunSpec, ledger: Ledger, sink: Sink) -> None:
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


def window_of(choices: BatchChoices) -> Window | None:
    if choices.window:
        return Window.parse(choices.window, zone=choices.time_zone)
    if choices.until:
        return Window.parse(choices.until, option="--until", zone=choices.time_zone)
    return None


def batch_ref(spec: RunSpec, absolute: bool = False) -> str:
    """How a printed command names this batch (``approve``, ``status``, ``report``), quoted for
    the shell: the run directory as it was given (the command is printed where it was typed), or
    by its ``absolute`` path (for the report and the notification, read elsewhere)."""
    if spec.ledger_url is None:
        return shlex.quote(str(spec.run_dir.absolute() if absolute else spec.run_dir))
    from orchestrator.ledger.pg.schema import safe_url

    batch = f" --batch {shlex.quote(spec.batch)}" if spec.batch else ""
    account = f" --account {shlex.quote(spec.account)}" if spec.account else ""
    return f"--ledger {shlex.quote(safe_url(spec.ledger_url))}{batch}{account}"


async def cost_plan(
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
