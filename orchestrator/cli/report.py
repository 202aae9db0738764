"""``orchestrator report``: a batch's ``results.csv`` and ``report.html`` written again from its
ledger (``report_command`` for a run directory; ``write_batch_report`` for any batch's read side,
which ``forget`` and the shared batches' commands use too)."""

from __future__ import annotations

import shlex
from pathlib import Path

from orchestrator.errors import ExitCode, RunDirError, StorageError
from orchestrator.input.row import ManifestOptions
from orchestrator.input.rows import manifest_rows
from orchestrator.ledger.file import read_ledger
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState
from orchestrator.ledger.records import RunStarted
from orchestrator.report.results import write_results


def report_command(
    run_dir: Path,
    out_dir: Path | None = None,
    results_dialect: str | None = None,
    links_valid_days: float | None = None,
) -> int:
    """``results.csv`` and ``report.html`` of a run directory, from its ledger: into the run
    directory, or into ``out_dir`` (a read-only run directory, a copy to share);
    ``results_dialect``: ``--results-dialect`` (default: as the batch records it);
    ``links_valid_days``: ``--links-valid-days``."""
    state = read_ledger(run_dir)
    first = _run_record(state)
    rows = manifest_rows(
        Path(first.manifest or ""),
        Path(first.template) if first.template else None,
        first.flow or "template",
        ManifestOptions.from_record(first.manifest_options),
    )
    snapshot = BatchSnapshot(rows=rows, state=state)
    batch_ref = shlex.quote(str(run_dir.absolute()))  # the page is read from anywhere
    try:
        if out_dir is None or out_dir.resolve() == run_dir.resolve():
            return write_batch_report(
                run_dir,
                snapshot,
                batch_ref,
                results_dialect=results_dialect,
                links_valid_days=links_valid_days,
            )
        return write_batch_report(
            out_dir,
            snapshot,
            batch_ref,
            videos_in=run_dir,
            results_dialect=results_dialect,
            links_valid_days=links_valid_days,
        )
    finally:
        state.rows.close()


def write_batch_report(
    out_dir: Path,
    snapshot: BatchSnapshot,
    batch_ref: str,
    *,
    videos_in: Path | None = None,
    results_dialect: str | None = None,
    links_valid_days: float | None = None,
) -> int:
    """Write ``OUT_DIR/results.csv`` and ``OUT_DIR/report.html`` (with its posters) from a
    batch's read side, print where, and return 0 when every row is done, else 1.
    ``batch_ref``: how the page's commands name the batch, ready for the shell.
    ``videos_in``: the run directory whose videos the page links, when it is not ``out_dir``.
    ``results_dialect``: ``--results-dialect`` (default: as the batch records it).
    ``links_valid_days``: ``--links-valid-days`` (``report.links.short_links``)."""
    from orchestrator.clock import RealClock
    from orchestrator.report.links import links_warning
    from orchestrator.report.page import write_report
    from orchestrator.run.canary import approval_line, held_back, read_record

    try:
        path, counts, _ = write_results(
            out_dir, snapshot.rows, snapshot.state, dialect=results_dialect
        )
        canary = read_record(snapshot.state)
        notice = None
        if canary.waiting and canary.rows is not None:
            rest = held_back(canary.rows, counts, snapshot.state)
            notice = (
                approval_line(out_dir.absolute(), len(canary.rows), rest, batch_ref)
                if rest
                else None
            )
        warning = links_warning(snapshot.state, links_valid_days, RealClock().wall_s())
        info = write_report(
            out_dir,
            snapshot.rows,
            snapshot.state,
            notice=notice,
            videos_in=videos_in,
            warning=warning,
        )
    except (OSError, StorageError) as exc:  # read-only, full, a folder in a file's place...
        if isinstance(exc, StorageError):
            why, where = exc.reason, exc.path
        else:
            why, where = str(exc.strerror), str(exc.filename2 or exc.filename or out_dir)
        again = "orchestrator report"  # a shared batch's, or a copy: its own options
        if videos_in is None and not batch_ref.startswith("--"):
            again += f" {batch_ref}"  # a run directory's own report
        raise RunDirError(
            f"{out_dir}: cannot write results.csv and report.html there ({why}: {where}); the "
            "ledger is untouched: make the folder writable (or free some space) and run "
            f"`{again}` again, or write them elsewhere with `--out DIR`"
        ) from exc
    print(f"{path}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    print(f"{info.path}: {info.posters} poster frame(s)")
    if info.usage.renders:
        print(info.usage.line())
    if warning is not None:
        print(warning)
    return ExitCode.OK if set(counts) <= {"done"} else ExitCode.NOT_ALL_DONE


def _run_record(state: LedgerState) -> RunStarted:
    first = state.run_record
    assert first is not None  # read_ledger refuses a ledger without one
    return first
