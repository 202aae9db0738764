"""What happens once a run's rows are settled: the visual report, then the notification.

Both are for people, not for the batch: neither can fail the run. The report is written after
``results.csv`` (which stays the record); a report that cannot be written is logged as
``report_failed``. The notification goes out last, so it can point at the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from orchestrator.config import Config
from orchestrator.errors import UserError
from orchestrator.events import Sink
from orchestrator.ledger import LedgerState
from orchestrator.notify import build_payload, outcome, send
from orchestrator.report_html import write_report

if TYPE_CHECKING:
    from orchestrator.run import RunSpec, RunSummary


async def end_of_run(
    spec: RunSpec, config: Config, state: LedgerState, sink: Sink, summary: RunSummary
) -> None:
    """Write ``report.html`` (and its posters), then POST the notification when one is set."""
    try:
        info = await anyio.to_thread.run_sync(
            lambda: write_report(
                spec.run_dir,
                spec.manifest,
                spec.template,
                state,
                spec.flow,
                notice=summary.awaiting_approval,
                posters_wanted=config.report.posters,
                options=spec.manifest_options,
            )
        )
    except (OSError, ValueError, UserError) as exc:  # a convenience: the run's record stands
        sink.emit("report_failed", error=str(exc))
    else:
        summary.report_path = info.path
        sink.emit("report_written", path=str(info.path), posters=info.posters)
    url = config.notify.url
    if url is None:
        return
    payload = build_payload(
        event=outcome(
            awaiting_approval=summary.awaiting_approval is not None,
            interrupted=summary.interrupted,
            stop_reason=summary.stop_reason,
        ),
        run_dir=spec.run_dir,
        counts=summary.counts,
        started=summary.started,
        elapsed_s=summary.elapsed_s,
        requests=summary.requests,
        reason=summary.stop_reason,
        report=summary.report_path,
        approve=summary.awaiting_approval,
    )
    await send(url.get_secret_value(), payload, sink, timeout_s=config.notify.timeout_s)
