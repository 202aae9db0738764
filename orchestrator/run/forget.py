"""``orchestrator forget``: erase customers' values from a batch, keeping that their rows are done.

A deletion request names rows by identity (the manifest's ``id``, or the ``r-...`` identity
``results.csv`` shows), by manifest line (``--line N``) or by a column's value (``--where
email=ann@example.com``). For each row, in this order (each step safe to repeat, so running the
same command again after a crash finishes the job):

0. its **jobs at Pictory** (``run.forget_pictory``): each cleaned, unless a ``cleaned`` record
   says so already; a clean that fails holds the row back (none of steps 1–5 for it; exit 1);
   without credentials (or with ``--keep-at-pictory``) the jobs are left and named;
1. its **delivered objects** (``delivered`` records: ``storage.open_destination(url).delete``);
2. its **local files**: the video, the files beside it (subtitles), a partial download, the
   poster frame and preview GIF (``thumbs/``), in the run directory or a worker's ``--out``;
   and copies a crash may have left of the ledger, results or report;
3. its lines in **log.jsonl**: a line about the row keeps only identities, states and numbers
   (``ledger.forget.KEPT``); any other line loses every text the row held (values, file names,
   links), rewritten atomically;
4. the **ledger**: the row's records rewritten with every value replaced by ``[forgotten
   DATE]``, and a ``forgotten`` record (``ledger.erase``, or ``ledger.pg.forget`` for a shared
   batch): the one moment the row becomes forgotten;
5. ``results.csv`` and the **report** are written again from the ledger (the CLI), the row's
   cells showing the marker though the manifest may still hold its values.

The row stays as it was (done, failed; a row that was not done becomes failed, kind
``forgotten``) and is never rendered again: ``retry.resume_action`` skips it, whatever a
resume, a rerun on the same manifest or ``--retry-failed`` says. What is kept and why:
``ledger.forget``. The manifest is the user's file: ``forget`` never edits it, and says so.

May import what ``run`` may.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.clock import Clock, RealClock
from orchestrator.config import Config
from orchestrator.errors import RunDirError, UserError
from orchestrator.input.row import ManifestOptions
from orchestrator.input.rows import RowJob, manifest_rows
from orchestrator.ledger import erase
from orchestrator.ledger.file import LEDGER_NAME, FileLedger, lock_holder
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import JobsCleaned, RowEvent, forgotten_marker
from orchestrator.run.forget_pictory import PictoryAccess, clean_rows
from orchestrator.run.traces import (
    Erased,
    RowTraces,
    delete_delivered,
    remove_files,
    rewrite_log,
    traces,
)


@dataclass(frozen=True)
class Selection:
    """The rows a deletion request names: identities, manifest lines, ``COLUMN=VALUE``."""

    ids: tuple[str, ...] = ()
    lines: tuple[int, ...] = ()
    where: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ids or self.lines or self.where)


def parse_where(text: str) -> tuple[str, str]:
    """``--where COLUMN=VALUE`` → ``(COLUMN, VALUE)``; a ``UserError`` saying the form else."""
    column, sep, value = text.partition("=")
    if not sep or not column.strip():
        raise UserError(
            f"--where {text!r}: expected COLUMN=VALUE, e.g. --where email=ann@example.com"
        )
    return column.strip(), value.strip()


def today() -> str:
    """The day a row is forgotten on (``YYYY-MM-DD``, local)."""
    return dt.date.today().isoformat()


# ---- choosing rows ------------------------------------------------------------------------------


def batch_rows(state: LedgerState) -> tuple[list[RowJob], str | None]:
    """The batch's manifest rows (as its run record names them), or ``[]`` and why not (the
    manifest moved or is gone: rows are then found by the ledger alone)."""
    first = state.run_record
    if first is None or not first.manifest:
        return [], "the ledger names no manifest"
    lister = manifest_rows(
        Path(first.manifest),
        Path(first.template) if first.template else None,
        first.flow or "template",
        ManifestOptions.from_record(first.manifest_options),
    )
    try:
        return list(lister()), None
    except (UserError, OSError) as exc:
        return [], f"the manifest could not be read ({exc})"


def choose(selection: Selection, jobs: list[RowJob], state: LedgerState) -> list[str]:
    """The identities ``selection`` names, in the order named; a ``UserError`` naming what
    matches no row of the batch (nothing is erased then)."""
    known = {job.row_id for job in jobs}
    chosen: dict[str, None] = {}
    for row in selection.ids:
        if row not in known and state.rows.get(row) is None:
            raise UserError(
                f"forget: no row {row!r} in this batch (an `id` of the manifest, or the `id` "
                "column of results.csv); nothing was erased"
            )
        chosen[row] = None
    for line in selection.lines:
        found = [job.row_id for job in jobs if job.line == line] or [
            st.row for st in state.rows.values() if st.line == line
        ]
        if not found:
            raise UserError(f"forget: --line {line}: no row of this batch is on that line")
        chosen.update(dict.fromkeys(found))
    for column, value in selection.where:
        found = [job.row_id for job in jobs if _matches(job.shown(), column, value)] + [
            st.row for st in state.rows.values() if _matches(st.rendered_values, column, value)
        ]
        if not found:
            raise UserError(
                f"forget: --where {column}={value}: no row of this batch has that value in "
                f"column {column!r}; nothing was erased"
            )
        chosen.update(dict.fromkeys(found))
    return list(chosen)


def _matches(cells: dict[str, str] | None, column: str, value: str) -> bool:
    return cells is not None and (cells.get(column) or "").strip() == value


# ---- a run directory ----------------------------------------------------------------------------


async def forget_in_run_dir(
    run_dir: Path,
    selection: Selection,
    config: Config,
    *,
    day: str | None = None,
    clock: Clock | None = None,
    dry_run: bool = False,
    pictory: PictoryAccess | None = None,
) -> Erased:
    """Erase the selected rows' values from ``run_dir`` (module docstring, steps 0–4; the CLI
    writes results and report again). Refused while a run holds the directory. ``dry_run``:
    list what would go, change nothing. ``pictory``: how to clean the rows' jobs there (None:
    they are left, and named)."""
    if not (run_dir / LEDGER_NAME).exists():
        raise RunDirError(f"{run_dir} holds no ledger ({LEDGER_NAME}); is it a run directory?")
    holder = lock_holder(run_dir)
    if holder is not None:
        raise _in_use(run_dir, holder)
    try:
        ledger = FileLedger.open(run_dir)
    except RunDirError as exc:
        if "in use" in str(exc):
            raise _in_use(run_dir, lock_holder(run_dir)) from None
        raise
    try:
        now_s = (clock or RealClock()).wall_s()
        erased = Erased(dry_run=dry_run)
        access = pictory or PictoryAccess(config, left_why="not asked to")
        await _forget_held(
            ledger, run_dir, selection, config, day or today(), now_s, erased, access, clock
        )
        return erased
    finally:
        ledger.close()


def _in_use(run_dir: Path, holder: dict[str, Any] | None) -> RunDirError:
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}" if holder else "a run"
    return RunDirError(
        f"{run_dir} is in use by a run ({who}); nothing was erased: forget never touches a live "
        "run. Run it again once that run ended (let it finish, or Ctrl-C it)"
    )


async def _forget_held(
    ledger: FileLedger,
    run_dir: Path,
    selection: Selection,
    config: Config,
    day: str,
    now_s: float,
    erased: Erased,
    access: PictoryAccess,
    clock: Clock | None,
) -> None:
    state = ledger.state
    jobs, unread = batch_rows(state)
    rows = choose(selection, jobs, state)
    if unread:
        erased.notes.append(f"{unread}: rows were found by the ledger alone")
    traced = traces(ledger.path, rows, jobs)

    async def record(row: str, cleaned: list[str]) -> None:
        await ledger.append(JobsCleaned(row=row, jobs=cleaned))

    await clean_rows(traced, access, erased, record, clock=clock)
    rows = [row for row in rows if row not in erased.held]
    traced = {row: found for row, found in traced.items() if row not in erased.held}
    dates: dict[str, str] = {}
    for row in rows:
        st = state.rows.get(row)
        if st is not None and st.forgotten is not None:
            erased.already.append(row)
            dates[row] = st.forgotten
        else:
            erased.rows.append(row)
            dates[row] = day
    await delete_delivered(traced, config, erased)
    remove_files(run_dir, traced, erased)  # and the copies a crash left (``erase.stale_copies``)
    if erased.dry_run or not rows:
        erased.records = sum(t.records for t in traced.values()) if erased.dry_run else 0
        return
    markers = {row: forgotten_marker(date) for row, date in dates.items()}
    erased.log_lines = rewrite_log(run_dir, traced, markers)
    erased.records = erase.rewrite(ledger.path, dates, erased.rows, now_s)


# ---- a shared batch -----------------------------------------------------------------------------


async def forget_in_shared(
    pool: Any,
    where: str,
    batch: str,
    selection: Selection,
    config: Config,
    outs: list[Path],
    *,
    day: str | None = None,
    clock: Clock | None = None,
    dry_run: bool = False,
    pictory: PictoryAccess | None = None,
) -> Erased:
    """Erase the selected rows' values from shared batch ``batch`` (``ledger.pg.forget``: one
    transaction) and from the workers' folders ``outs`` (their videos, posters and log), after
    cleaning their jobs at Pictory (``pictory``, as ``forget_in_run_dir``; a row another
    account rendered keeps its jobs there, named). ``dry_run``: list what would go, change
    nothing."""
    from orchestrator.ledger.pg.batches import batch_rows, find_batch
    from orchestrator.ledger.pg.forget import forget_rows, record_cleaned, stored_rows

    async with pool.acquire() as conn:
        batch_id = await find_batch(conn, batch, where)
    listed, state = await batch_rows(pool, batch_id)
    try:
        jobs = [
            RowJob(row_id=key, line=line, variables=values, template=None, output_name="")
            for key, line, values in listed
        ]
        rows = choose(selection, jobs, state)
    finally:
        state.rows.close()
    erased = Erased(dry_run=dry_run)
    dates: dict[str, str] = {}
    traced: dict[str, RowTraces] = {}
    accounts: dict[str, str | None] = {}
    stored_list = await stored_rows(pool, batch_id, rows)
    for stored in stored_list:
        found = traced[stored.row] = RowTraces(stored.row)
        for event in stored.events:
            if isinstance(event, RowEvent):
                found.saw(event)
        found.texts.update(stored.variables.values())
        found.names.add(stored.output)
        accounts[stored.row] = stored.account

    async def record(row: str, cleaned: list[str]) -> None:
        await record_cleaned(pool, batch_id, row, cleaned, (clock or RealClock()).wall_s())

    access = pictory or PictoryAccess(config, left_why="not asked to")
    await clean_rows(traced, access, erased, record, accounts=accounts, clock=clock)
    traced = {row: found for row, found in traced.items() if row not in erased.held}
    for stored in stored_list:
        if stored.row in erased.held:
            continue
        if stored.forgotten is not None:
            erased.already.append(stored.row)
        else:
            erased.rows.append(stored.row)
        dates[stored.row] = stored.forgotten or day or today()
    await delete_delivered(traced, config, erased)
    markers = {row: forgotten_marker(date) for row, date in dates.items()}
    for out in outs:
        remove_files(out, traced, erased, stale=False, label=f"{out}/")
        if not dry_run:
            erased.log_lines += rewrite_log(out, traced, markers)
    if dry_run or not dates:
        erased.records = sum(t.records for t in traced.values()) if dry_run else 0
        return erased
    now_s = (clock or RealClock()).wall_s()
    erased.records = await forget_rows(pool, batch_id, dates, now_s)
    return erased
