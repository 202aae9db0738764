"""``benchmarks.ab``: every figure as a ratio of this tree over the other commit, and the
performance document's A/B table regenerated from an ``--ab`` run (never timing asserted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.ab import DOC_END, DOC_START, doc_block, write_doc

ROOT = Path(__file__).resolve().parent.parent


def _run(cpu_ms: float) -> dict[str, Any]:
    figure = {"value": cpu_ms, "unit": "ms", "bound": "≤ 2 ms"}
    return {"scenarios": {"overhead": {"cpu_ms_per_row": figure}}}


RECORD = {
    "ref": "HEAD",
    "commit": "1e25bac",
    "rounds": 2,
    "args": ["--smoke"],
    "started": "2026-12-07 03:20 UTC",
    "load_average_1min": [4.1, 5.3],
    "runs": {"HEAD": [_run(3.0), _run(2.0)], "this tree": [_run(2.0), _run(2.0)]},
}


def test_ab_table_shows_each_figure_as_a_ratio_with_how_busy_the_machine_was() -> None:
    """Medians per side (2.5 and 2.0 ms) become the ratio 0.800; the head says the command,
    the commit, the rounds and the load average."""
    block = doc_block(RECORD)
    assert "| overhead | cpu_ms_per_row | 2.5 | 2 | **0.800** | ms | ≤ 2 ms |" in block
    assert "`HEAD` = 1e25bac" in block and "load average 4.1–5.3" in block
    assert "--smoke" in block and "median of 2 round(s)" in block


def test_write_doc_replaces_only_the_marked_block(tmp_path: Path) -> None:
    """The text around the block stays as it was; the performance document has the block."""
    doc = tmp_path / "perf.md"
    doc.write_text(f"# P\nbefore\n{DOC_START}\nold\n{DOC_END}\nafter\n")
    write_doc(RECORD, doc)
    text = doc.read_text()
    assert text.startswith("# P\nbefore\n") and text.endswith(f"{DOC_END}\nafter\n")
    assert "old" not in text and "**0.800**" in text
    performance = (ROOT / "docs" / "performance.md").read_text()
    assert DOC_START in performance and DOC_END in performance


def test_several_ab_runs_share_the_block_each_with_its_own_head(tmp_path: Path) -> None:
    """``--from A B``: one table per run (say, the CPU figures over three rounds and the
    wall-bound scenarios over one), each headed by its own command and load."""
    other = {**RECORD, "rounds": 1, "args": ["--only", "rate_poll"], "load_average_1min": [0.5]}
    doc = tmp_path / "perf.md"
    doc.write_text(f"{DOC_START}\n{DOC_END}\n")
    write_doc([RECORD, other], doc)
    text = doc.read_text()
    assert text.count("| scenario | figure |") == 2
    assert "--smoke" in text and "--only rate_poll" in text and "load average 0.5–0.5" in text
