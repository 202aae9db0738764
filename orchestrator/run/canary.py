"""The canary: render a few rows, let a person look, then approve the rest.

``--canary N`` picks N rows spread over the manifest's templates and flows (the first row of each
(flow, template) group, then the second of each, and so on, in manifest order), records them in
the ledger *before* anything is sent, renders only those, writes the report and stops with exit
code 3. ``orchestrator approve RUN_DIR`` (or the same command with ``--approve``) records the
approval and renders the rest.

Both decisions live in the ledger, so every later run obeys them whatever its options:

===============  ===================================================================
``canary``       ``rows`` (the chosen identities), ``size`` (N)
``approved``     the person said go: no row is held back any more
===============  ===================================================================

A run of a run directory holding a canary and no approval renders (or resumes) only the canary
rows, even when ``--canary`` is left out or given another N: a plain ``resume`` never starts the
whole batch by surprise. Nothing is rendered twice: canary rows are ordinary rows, so once done
they are skipped like any other done row.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

import anyio

from orchestrator.input.rows import RowLister
from orchestrator.ledger.protocol import Ledger, LedgerState
from orchestrator.ledger.records import CanaryApproved, CanaryChosen
from orchestrator.report.page import REPORT_NAME


@dataclass(frozen=True)
class CanaryRecord:
    """What the ledger says: the canary's rows (None: no canary) and whether it was approved."""

    rows: frozenset[str] | None = None
    approved: bool = False

    @property
    def waiting(self) -> bool:
        return self.rows is not None and not self.approved


def read_record(state: LedgerState) -> CanaryRecord:
    """The canary's two events, as the ledger's state folded them."""
    return CanaryRecord(rows=state.canary_rows, approved=state.canary_approved)


def select_rows(
    rows: RowLister, size: int, done: Callable[[str], bool] = lambda row_id: False
) -> list[str]:
    """``size`` row identities, round-robin over the (flow, template) groups in manifest order,
    leaving out rows already ``done`` (a canary of rendered rows would show nothing new).

    Keeps at most ``size`` identities per group, so a huge manifest costs one pass and little
    memory.
    """
    groups: dict[Hashable, list[str]] = {}
    for job in rows():
        key = (job.flow, job.template.sha256 if job.template is not None else None)
        members = groups.setdefault(key, [])
        if len(members) < size and job.row_id not in members and not done(job.row_id):
            members.append(job.row_id)
    chosen: list[str] = []
    depth = 0
    while len(chosen) < size and any(depth < len(m) for m in groups.values()):
        for members in groups.values():
            if depth < len(members) and len(chosen) < size and members[depth] not in chosen:
                chosen.append(members[depth])
        depth += 1
    return chosen


async def gate(
    ledger: Ledger, rows: RowLister, *, size: int | None, approve: bool
) -> frozenset[str] | None:
    """The rows this run may work on (None: every row), recording a new canary or an approval."""
    record = read_record(ledger.state)
    if approve:
        if record.waiting:
            await ledger.append(CanaryApproved(rows=len(record.rows or ())))
        return None
    if record.rows is not None:
        return None if record.approved else record.rows
    if size is None:
        return None

    def done(row_id: str) -> bool:
        state = ledger.state.rows.get(row_id)
        return state is not None and state.status == "done"

    chosen = await anyio.to_thread.run_sync(select_rows, rows, size, done)
    await ledger.append(CanaryChosen(size=size, rows=chosen))
    return frozenset(chosen)


def held_back(only: frozenset[str], counts: Counter[str], state: LedgerState) -> int:
    """Rows outside the canary that are not done: what an approval would start."""
    not_done = sum(n for status, n in counts.items() if status != "done")
    in_canary = 0
    for row_id in only:
        row = state.rows.get(row_id)
        in_canary += row is None or row.status != "done"
    return not_done - in_canary


def approval_line(run_dir: Path, canary_rows: int, rest: int, batch: str | None = None) -> str:
    """The line that says how to go on after looking at the canary. The command in it works as
    printed (``approve`` reuses what the batch runs against and its choices, ``--notify``
    included); ``batch``: how it names the batch, ready for the shell (the run directory,
    quoted, or a shared batch's ``--ledger URL --batch NAME``), else ``run_dir`` quoted."""
    where = batch or shlex.quote(str(run_dir))
    return (
        f"canary: {canary_rows} rows rendered, {rest} held back; look at "
        f"{run_dir / REPORT_NAME}, then render the other {rest} with "
        f"`orchestrator approve {where}` (or the same command with --approve)"
    )
