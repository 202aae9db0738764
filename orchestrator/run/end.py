"""A session's end: what it says (``RunSummary`` and its exit code), and what happens once its
rows are settled: the visual report, then the notification, then the summary on stdout
(``print_summary``).

The report and the notification are for people, not for the batch: neither can fail the run.
The report is written after ``results.csv`` (which stays the record); a report that cannot be
written is logged as ``report_failed``. The notification goes out last, so it can point at the
report.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from pydantic import SecretStr

from orchestrator.config import Config
from orchestrator.errors import ExitCode, StorageError, UserError
from orchestrator.events import Sink
from orchestrator.ledger.protocol import BatchSnapshot
from orchestrator.ledger.records import SessionEnded
from orchestrator.report.notify import build_payload, outcome, send
from orchestrator.report.page import write_report
from orchestrator.report.previews import gif_size
from orchestrator.report.results import Usage, batch_usage
from orchestrator.report.status import next_command


@dataclass
class RunSummary:
    """How a session of a batch went (what ``Batch.run`` returns and the CLI prints): rows by
    status (``counts``), what this session did, where the results are, why it stopped, and
    ``exit_code``."""

    run_dir: Path
    counts: Counter[str] = field(default_factory=Counter)
    """Rows by status (``done``, ``failed``, ``ambiguous``, ``pending``), the batch's whole."""
    skipped_done: int = 0
    """Rows already done before this session (not rendered again)."""
    started: int = 0
    """Rows this session worked on."""
    requests: int = 0
    elapsed_s: float = 0.0
    results_path: Path | None = None
    interrupted: bool = False
    stop_reason: str | None = None
    failed_permanent: int = 0
    """Of the failed rows, those only ``--retry-failed`` renders again."""
    awaiting_approval: str | None = None
    """Set when a canary was rendered and the rest waits: the line saying how to approve, naming
    the run directory as it was given (printed where the command was typed)."""
    approval_notice: str | None = None
    """The same line naming the run directory by its absolute path: for the report and the
    notification, which are read away from the folder the run was started in."""
    simulated: bool = False
    """The session ran against the embedded simulator (``--simulate``): nothing is billed."""
    report_path: Path | None = None
    batch_ref: str | None = None
    """How commands name the batch: the run directory, or ``--ledger URL --batch NAME``."""
    interrupt_signal: str | None = None
    worker_id: str | None = None
    taken_over: int = 0
    """Rows this worker took over from a stopped one (a shared batch)."""
    storage_fault: StorageError | None = None
    """A disk fault stopped the session (the first one met)."""
    usage: Usage | None = None
    """What the batch's finished renders add up to (video minutes, AI credits), once known."""
    links_warning: str | None = None
    """Done rows whose ``email_url`` may die before ``--links-valid-days`` (one line), if any."""

    @property
    def exit_code(self) -> int:
        """4 after a disk fault; 130 after a signal; 3 when a canary waits for approval; 0 when
        every row is done; 1 when some are not (yet)."""
        if self.storage_fault is not None:
            return ExitCode.STORAGE
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.awaiting_approval is not None:
            return ExitCode.AWAITING_APPROVAL
        bad = sum(n for status, n in self.counts.items() if status != "done")
        return ExitCode.OK if bad == 0 else ExitCode.NOT_ALL_DONE


async def end_of_run(
    run_dir: Path,
    snapshot: BatchSnapshot,
    config: Config,
    url: SecretStr | None,
    sink: Sink,
    summary: RunSummary,
) -> None:
    """Write ``report.html`` (and its posters) from the batch's ``snapshot``, then POST the
    notification to ``url`` when there is one."""
    try:
        info = await anyio.to_thread.run_sync(
            lambda: write_report(
                run_dir,
                snapshot.rows,
                snapshot.state,
                notice=summary.approval_notice or summary.awaiting_approval,
                posters_wanted=config.report.posters,
                warning=summary.links_warning,
                gif=gif_size(config.report) if config.report.preview_gif else None,
            )
        )
    except (OSError, ValueError, UserError) as exc:  # a convenience: the run's record stands
        sink.emit("report_failed", error=str(exc))
        summary.usage = await anyio.to_thread.run_sync(batch_usage, snapshot.state)
    else:
        summary.report_path = info.path
        summary.usage = info.usage
        sink.emit("report_written", path=str(info.path), posters=info.posters)
    if url is None:
        return
    payload = build_payload(
        event=outcome(
            awaiting_approval=summary.awaiting_approval is not None,
            interrupted=summary.interrupted,
            stop_reason=summary.stop_reason,
        ),
        run_dir=run_dir,
        counts=summary.counts,
        started=summary.started,
        elapsed_s=summary.elapsed_s,
        requests=summary.requests,
        reason=summary.stop_reason,
        report=summary.report_path,
        approve=summary.approval_notice or summary.awaiting_approval,
    )
    await send(url.get_secret_value(), payload, sink, timeout_s=config.notify.timeout_s)


def print_summary(summary: RunSummary) -> None:
    """The run's outcome on stdout (progress and warnings went to stderr): counts, where the
    results are, why it stopped, and the one command that continues, if any (it works as
    printed, in the folder the run was started in)."""
    counts = summary.counts
    total = sum(counts.values())
    parts = [f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "ambiguous", "pending")]
    lines = [
        f"{total} rows: "
        + ", ".join(parts)
        + f" ({summary.skipped_done} already done before this run) in {summary.elapsed_s:.1f} s, "
        f"{summary.requests} API requests"
    ]
    if summary.usage is not None and summary.usage.renders:
        lines.append(summary.usage.line())
    if summary.worker_id is not None:
        lines.append(
            f"worker {summary.worker_id}: {summary.started} row(s) worked on "
            f"({summary.taken_over} taken over from a stopped worker)"
        )
    if summary.results_path is not None:
        lines.append(f"results: {summary.results_path}")
    if summary.links_warning is not None:
        lines.append(summary.links_warning)
    if summary.report_path is not None:
        lines.append(f"report: {summary.report_path}")
    if summary.storage_fault is not None:
        why = f"disk: {summary.storage_fault}"
    elif summary.interrupted:
        why = "interrupted (Ctrl-C or SIGTERM); rows in flight were left for the next run"
    elif summary.awaiting_approval is not None:
        why = "the canary is rendered; the rest waits for approval"
    elif summary.stop_reason:
        why = f"stopped admitting rows: {summary.stop_reason}"
    elif counts.get("done", 0) == total:
        why = "every row done"
    else:
        why = "every row was tried"
    lines.append(f"stopped: {why}")
    if counts.get("ambiguous"):
        lines.append("ambiguous rows may or may not have rendered; see docs/failures.md")
    if summary.awaiting_approval is not None:
        lines.append(f"next: {summary.awaiting_approval}")
    else:
        command = next_command(
            summary.batch_ref or summary.run_dir,
            shared=summary.worker_id is not None,
            total=total,
            done=counts.get("done", 0),
            ambiguous=counts.get("ambiguous", 0),
            failed_permanent=summary.failed_permanent,
            simulated=summary.simulated,
        )
        if command is not None:
            lines.append(f"next: {command}")
    say("\n".join(lines))


def say(text: str) -> None:
    """Print to stdout; a reader that went away (``| head``) must not fail the run."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's exit-time flush does not fail either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def ledger_counts(snapshot: BatchSnapshot) -> Counter[str]:
    """Rows by status, from the ledger alone (when ``results.csv`` cannot be written)."""
    counts: Counter[str] = Counter()
    seen = 0
    for r in snapshot.state.rows.values():
        counts[r.status] += 1
        seen += 1
    if snapshot.total is not None and snapshot.total > seen:
        counts["pending"] += snapshot.total - seen
    return counts


def how_it_ended(summary: RunSummary) -> SessionEnded:
    """The session's end as the ledger records it (``status`` reads it back)."""
    if summary.storage_fault is not None:
        return SessionEnded(how="halted", reason=f"disk: {summary.storage_fault}")
    if summary.interrupted:
        return SessionEnded(how="interrupted", reason=summary.interrupt_signal)
    if summary.stop_reason is not None:
        return SessionEnded(how="halted", reason=summary.stop_reason)
    return SessionEnded(how="finished")
