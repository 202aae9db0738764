"""``RUN_DIR/results.csv``: one line per manifest row, in manifest order, written atomically.

Columns: ``id,status,file,extra_files,bytes,sha256,video_url,render_job_id,attempts,error,
retry,line`` followed by the row's own variables.

- ``extra_files``: the files written beside the video, ``;``-separated (a video-edit row's
  ``.srt``, ``.vtt`` and ``.txt``).
- ``status``: ``done``, ``failed``, ``ambiguous`` or ``pending``.
- ``retry``: what renders a row that is not done: ``resume`` (a plain rerun or resume retries
  it), ``retry-failed`` (a permanent failure: only ``--retry-failed`` retries it) or
  ``rerender-ambiguous`` (it may have rendered already; ``--rerender-ambiguous`` renders it
  again); for a done row whose manifest values were edited after its video was made,
  ``rerender-changed``, and the row's variable cells hold the values the video was made from.
  Option names go without their dashes: a cell starting with ``-`` would be neutralised.

A cell a spreadsheet would run as a formula is prefixed with ``'`` (OWASP's advice against CSV
injection), so opening the file never executes anything: one starting with ``=``, ``+``, ``-``
or ``@`` (or their full-width forms, which some spreadsheets read alike), after leading spaces
too, or with a tab, carriage return or line feed. Header cells too: variable names come from the
manifest. A plain number (``-5``, ``+3.5``, ``-1e-3``) is left as it is: a spreadsheet reads it
as that number and nothing runs, while ``'-5`` would show its quote and no longer sort as a
number. Every cell goes through this, ours included; ours (states, sizes, digests, line
numbers) never start that way, so only values from outside change: manifest values and names,
file names made from them, and what the API answered (job ids, URLs, error messages).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from orchestrator.api.retry import resume_action
from orchestrator.files import atomic_text
from orchestrator.input.rows import RowLister
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.row_state import RowState

RESULTS_NAME = "results.csv"
FIXED_COLUMNS = (
    "id",
    "status",
    "file",
    "extra_files",
    "bytes",
    "sha256",
    "video_url",
    "render_job_id",
    "attempts",
    "error",
    "retry",
    "line",
)
_FORMULA_CHARS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CONTROL_STARTS = ("\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def neutralise(cell: str) -> str:
    """Make a cell inert for spreadsheets (CSV injection; see the module docstring)."""
    first = cell[:1]
    if not first or first.isalnum():  # the common case, and never a formula
        return cell
    if first in _CONTROL_STARTS:
        return "'" + cell
    lead = cell.lstrip()
    if lead.startswith(_FORMULA_CHARS) and not _PLAIN_NUMBER.fullmatch(lead.rstrip()):
        return "'" + cell
    return cell


def retry_hint(state: RowState | None) -> str:
    """How a row that is not done gets rendered (see the module docstring): the least a rerun
    needs for ``retry.resume_action`` to work on it."""
    if state is not None and state.status == "done":
        return ""
    for hint, retry_failed, rerender_ambiguous in (
        ("resume", False, False),
        ("retry-failed", True, False),
        ("rerender-ambiguous", False, True),
    ):
        action = resume_action(
            state, retry_failed=retry_failed, rerender_ambiguous=rerender_ambiguous
        )
        if action != "skip":
            return hint
    return ""


def write_results(
    out_dir: Path, rows: RowLister, state: LedgerState
) -> tuple[Path, Counter[str], int]:
    """Write ``OUT_DIR/results.csv`` from the batch's rows (``rows()``, manifest order) and their
    states; return its path, counts by status, and how many of the failed rows failed
    permanently (only ``--retry-failed`` retries them). A shared batch's files are named as each
    worker wrote them under its own ``--out``."""
    variable_names: dict[str, None] = {}
    for job in rows():
        for name in job.variables:
            variable_names.setdefault(name, None)
    columns = [*FIXED_COLUMNS, *(n for n in variable_names if n not in FIXED_COLUMNS)]
    counts: Counter[str] = Counter()
    failed_permanent = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RESULTS_NAME

    def lines() -> Iterator[list[str]]:
        nonlocal failed_permanent
        for job in rows():
            st = state.rows.get(job.row_id)
            fixed, variables = row_cells(job.row_id, job.line, st, job.variables)
            counts[fixed["status"]] += 1
            failed_permanent += fixed["status"] == "failed" and st is not None and st.fail_permanent
            yield [fixed.get(c, variables.get(c, "")) for c in columns]

    write_csv(path, columns, lines())
    return path, counts, failed_permanent


def row_cells(
    row_id: str, line: int, st: RowState | None, variables: Mapping[str, str]
) -> tuple[dict[str, str], Mapping[str, str]]:
    """A row's fixed columns (``FIXED_COLUMNS``) from its ledger state, and the values to show
    beside them: its own, or for a video kept after its line was edited, the values the video
    was made from (never new values beside an old video)."""
    status = st.status if st is not None else "pending"
    error = ""
    if st is not None and status in ("failed", "ambiguous"):
        error = f"{st.fail_kind}: {st.fail_message}" if st.fail_kind else (st.fail_message or "")
    retry = retry_hint(st)
    if (
        st is not None
        and status == "done"
        and st.rendered_values is not None
        and st.made_from_other_values(variables)
    ):
        variables, retry = st.rendered_values, "rerender-changed"
    fixed = {
        "id": row_id,
        "status": status,
        "file": (st.file or "") if st else "",
        "extra_files": ";".join(st.extras or []) if st else "",
        "bytes": str(st.bytes) if st and st.bytes is not None else "",
        "sha256": (st.sha256 or "") if st else "",
        "video_url": (st.video_url or "") if st else "",
        "render_job_id": (st.render_job or "") if st else "",
        "attempts": str(st.attempts) if st else "0",
        "error": error,
        "retry": retry,
        "line": str(line),
    }
    return fixed, variables


def write_csv(path: Path, columns: list[str], lines: Iterable[list[str]]) -> None:
    """``results.csv`` at ``path``: a header, then each line, every cell neutralised (see
    ``neutralise``), written to a temporary name, fsynced, and renamed into place."""
    with atomic_text(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow([neutralise(c) for c in columns])
        for cells in lines:
            writer.writerow([neutralise(c) for c in cells])
