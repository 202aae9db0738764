"""One row through its flow, and the one place a row's final exception becomes a ledger outcome.

A flow is a sequence of stages (``run.stages``). Each stage skips work the ledger already
records, so the same function starts a fresh row and resumes an interrupted one.

Row outcomes:

==========================  ======================================================
exception escaping a stage  ledger event and row status
==========================  ======================================================
none                        ``downloaded`` → done (with ``--deliver``: ``downloaded`` then
                            ``delivered`` → done); then ``stages.tidy``, which never fails it
RowAmbiguous                ``ambiguous`` (already written by the render stage)
RowDeferred                 nothing: the spend cap stopped it before its render; pending
PermanentError              ``failed``, permanent: retried only with --retry-failed
any other ApiError          ``failed``, not permanent: retried by the next resume
cancellation                nothing: the row stays where the ledger says, resumable
==========================  ======================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.api.responses import pictory_said
from orchestrator.errors import ApiError, PermanentError
from orchestrator.input import flows
from orchestrator.input.flows import Stage
from orchestrator.input.rows import RowJob
from orchestrator.ledger.records import Failed, RowAdmitted
from orchestrator.ledger.row_state import RowState, RowStatus
from orchestrator.run.stages.base import RowAmbiguous, RowDeferred, Services
from orchestrator.run.stages.deliver import deliver
from orchestrator.run.stages.tidy import tidy


def flow_stages(flow: str, *, direct: bool = False) -> Sequence[tuple[str, Stage]]:
    """The stages of ``flow`` (see ``orchestrator.input.flows``), in order. ``direct``: flows with a
    direct route skip their preview (``stages.render`` sends the direct render)."""
    return flows.get(flow).stages(direct)


def row_stages(row: RowJob, svc: Services) -> Sequence[tuple[str, Stage]]:
    """The stages ``row`` still has: its flow's, then ``deliver`` when its video is to be
    delivered (``--deliver``, or its ``downloaded`` record names a destination); a row whose
    video is already in place (waiting for its delivery, or whose delivery failed) only the
    stages after ``download`` (a shared batch's row downloaded on another machine, whose video
    is not on this disk, is downloaded again: never rendered again)."""
    stages = list(flow_stages(row.flow, direct=svc.direct))
    state = svc.state(row)
    if svc.destinations.url is not None or state.deliver_to is not None:
        stages.append(("deliver", deliver))
    names = [name for name, _ in stages]
    in_place = state.file is not None and (svc.videos_dir.parent / state.file).is_file()
    if state.downloaded and in_place and "download" in names:
        stages = stages[names.index("download") + 1 :]
    return stages


def undelivered(state: RowState | None, svc: Services) -> bool:
    """A done row this run delivers whose video is not delivered (it was done before
    ``--deliver`` was given): the run takes it up again for its ``deliver`` stage only."""
    return (
        state is not None
        and state.status == "done"
        and state.downloaded
        and svc.destinations.url is not None
        and state.delivered_sha256 is None
    )


async def run_row(row: RowJob, svc: Services) -> RowStatus:
    """Run ``row`` through its flow's stages; record and return its outcome."""
    await svc.ledger.append(
        RowAdmitted(row=row.row_id, line=row.line, output=row.output_name, flow=row.flow)
    )
    svc.sink.emit("row_started", row=row.row_id, line=row.line)
    try:
        return await _run_stages(row, svc)
    finally:
        if svc.webhooks is not None:
            svc.webhooks.forget_row(row.row_id)


async def _run_stages(row: RowJob, svc: Services) -> RowStatus:
    stage_name = "start"
    try:
        state = svc.state(row)
        if state.status != "done" or undelivered(state, svc):  # else only for its tidying
            for stage_name, stage in row_stages(row, svc):
                svc.sink.emit("stage", row=row.row_id, stage=stage_name)
                await stage(row, svc)
        await tidy(row, svc)
    except RowAmbiguous:
        return "ambiguous"
    except RowDeferred:
        svc.sink.emit("row_deferred", row=row.row_id)
        return "pending"
    except ApiError as exc:
        permanent = isinstance(exc, PermanentError)
        error_code, error_message = pictory_said(exc)
        await svc.ledger.append(
            Failed(
                row=row.row_id,
                stage=stage_name,
                kind=exc.kind,
                message=exc.describe(),
                permanent=permanent,
                error_code=error_code,
                error_message=error_message,
            )
        )
        svc.sink.emit(
            "row_failed", row=row.row_id, stage=stage_name, kind=exc.kind, message=exc.describe()
        )
        return "failed"
    return "done"
