"""``RUN_DIR/results.csv``: one line per manifest row, in manifest order, written atomically.

Columns: ``id,status,file,bytes,sha256,video_url,render_job_id,attempts,error,line`` followed by
the row's own variables. ``status`` is ``done``, ``failed``, ``ambiguous`` or ``pending``. A cell a
spreadsheet would run as a formula (leading ``=``, ``+``, ``-``, ``@``, tab or carriage return) is
prefixed with ``'`` so opening the sheet never executes anything.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

from orchestrator.ledger import LedgerState
from orchestrator.manifest_row import DEFAULT_OPTIONS, ManifestOptions
from orchestrator.rows import TemplateCache, iter_row_jobs

RESULTS_NAME = "results.csv"
FIXED_COLUMNS = (
    "id",
    "status",
    "file",
    "bytes",
    "sha256",
    "video_url",
    "render_job_id",
    "attempts",
    "error",
    "line",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Make a cell inert for spreadsheets (CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def write_results(
    run_dir: Path,
    manifest: Path,
    default_template: Path | None,
    state: LedgerState,
    default_flow: str = "template",
    options: ManifestOptions = DEFAULT_OPTIONS,
) -> tuple[Path, Counter[str]]:
    """Write results.csv from the manifest and the ledger; return its path and counts by status."""
    cache = TemplateCache()
    variable_names: dict[str, None] = {}
    for row, _ in iter_row_jobs(manifest, default_template, cache, default_flow, options):
        for name in row.variables:
            variable_names.setdefault(name, None)
    columns = [*FIXED_COLUMNS, *(n for n in variable_names if n not in FIXED_COLUMNS)]
    counts: Counter[str] = Counter()
    path = run_dir / RESULTS_NAME
    tmp = run_dir / f".{RESULTS_NAME}.tmp"
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row, job in iter_row_jobs(manifest, default_template, cache, default_flow, options):
            st = state.rows.get(job.row_id)
            status = st.status if st is not None else "pending"
            counts[status] += 1
            error = ""
            if st is not None and status in ("failed", "ambiguous"):
                error = (
                    f"{st.fail_kind}: {st.fail_message}"
                    if st.fail_kind
                    else (st.fail_message or "")
                )
            fixed = {
                "id": job.row_id,
                "status": status,
                "file": (st.file or "") if st else "",
                "bytes": str(st.bytes) if st and st.bytes is not None else "",
                "sha256": (st.sha256 or "") if st else "",
                "video_url": (st.video_url or "") if st else "",
                "render_job_id": (st.render_job or "") if st else "",
                "attempts": str(st.attempts) if st else "0",
                "error": error,
                "line": str(row.line),
            }
            cells = [fixed.get(c, row.variables.get(c, "")) for c in columns]
            writer.writerow([neutralise(c) for c in cells])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path, counts
