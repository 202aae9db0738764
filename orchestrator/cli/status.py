"""``orchestrator status RUN_DIR``: where a batch stands, read from its ledger.

A command people type many times a day, so this module loads only what reading a ledger needs:
no HTTP client, no run machinery, no openpyxl (``tests/test_startup_imports.py`` pins it).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from orchestrator.errors import UserError
from orchestrator.input.manifest import read_manifest
from orchestrator.input.row import ManifestOptions
from orchestrator.ledger.file import first_run_record, read_ledger
from orchestrator.report.status import status


def status_command(run_dir: Path, *, as_json: bool = False, watch_s: float | None = None) -> int:
    """Print where the batch stands; with ``watch_s``, again every ``watch_s`` seconds until the
    run is no longer live."""
    first = first_run_record(run_dir)
    total: int | None = None
    with contextlib.suppress(UserError):
        options = ManifestOptions.from_record(first.manifest_options)
        total = sum(1 for _ in read_manifest(Path(first.manifest or ""), options))
    while True:
        state = read_ledger(run_dir)
        try:
            report = status(run_dir, state, total)
        finally:
            state.rows.close()
        if as_json:
            print(json.dumps(report.as_dict()), flush=True)
        else:
            print("\n".join(report.lines()), flush=True)
        live = report.liveness is not None and report.liveness.live
        if watch_s is None or not live:
            return 0
        time.sleep(watch_s)
        if not as_json:
            print(flush=True)
