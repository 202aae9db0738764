"""One row through its flow, and the one place a row's final exception becomes a ledger outcome.

A flow is a sequence of stages (``run.stages``). Each stage skips work the ledger already
records, so the same function starts a fresh row and resumes an interrupted one.

Row outcomes:

==========================  ======================================================
exception escaping a stage  ledger event and row status
==========================  ======================================================
none                        ``downloaded`` → done
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
from orchestrator.ledger.row_state import RowStatus
from orchestrator.run.stages.base import RowAmbiguous, RowDeferred, Services


def flow_stages(flow: str, *, direct: bool = False) -> Sequence[tuple[str, Stage]]:
    """The stages of ``flow`` (see ``orchestrator.input.flows``), in order. ``direct``: flows with a
    direct route skip their preview (``stages.render`` sends the direct render)."""
    return flows.get(flow).stages(direct)


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
        for stage_name, stage in flow_stages(row.flow, direct=svc.direct):
            svc.sink.emit("stage", row=row.row_id, stage=stage_name)
            await stage(row, svc)
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
