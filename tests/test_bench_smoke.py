"""``make bench-smoke`` keeps working: every scenario runs and every figure lands in the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BENCH = [sys.executable, "-m", "benchmarks"]
EXPECTED = {
    "rate_poll": {
        "rows_per_s_whole_run",
        "efficiency",
        "api_requests_per_row",
        "http_429_share",
        "cpu_ms_per_row",
        "peak_rss_mb",
        "duplicate_renders",
    },
    "rate_webhook": {
        "rows_per_s_whole_run",
        "efficiency",
        "api_requests_per_row",
        "http_429_share",
    },
    "render_bound": {"rows_per_s", "efficiency", "api_requests_per_row"},
    "render_bound_queued": {"efficiency", "renders_waiting_max"},
    "overhead": {"rows_per_s", "cpu_ms_per_row", "peak_rss_mb"},
    "startup": {"script_imports_s", "help_s", "status_help_s", "validate_help_s", "status_s"},
    "metrics": {"cpu_ms_per_row_without", "cpu_ms_per_row_with", "cpu_change", "scrapes"},
    "scale": {"validate_s", "validate_peak_rss_mb", "replay_s", "replay_peak_rss_mb", "rss_growth"},
    "validate_xlsx": {"validate_s", "validate_peak_rss_mb"},
    "faults": {"makespan_vs_clean", "rows_lost", "duplicate_renders", "done"},
    "peer_clean": {"makespan_ratio_peer_over_ours", "ours_lost", "peer_lost", "peer_429"},
}


@pytest.mark.timeout(180)
def test_bench_smoke_writes_every_figure(tmp_path: Path) -> None:
    """The smoke benchmark exits 0, prints its table and writes a JSON with every figure."""
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        # The other peer comparisons run the same code as peer_clean, only longer.
        [*BENCH, "--smoke", "--out", str(out), "--only", ",".join(EXPECTED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| scenario | figure |" in proc.stdout
    document = json.loads(out.read_text())
    assert document["machine"]["nproc"]
    for scenario, names in EXPECTED.items():
        figures = document["scenarios"][scenario]
        assert names <= set(figures), f"{scenario} lacks {names - set(figures)}"
        for name in names:
            assert figures[name]["value"] is not None, f"{scenario}.{name} has no value"
