"""The flow registry: what status and the console read from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orchestrator.input import flows
from orchestrator.ledger.row_state import RowState
from orchestrator.report.console import Tally
from orchestrator.report.status import row_stage


def test_status_names_a_pending_row_as_its_flow_does() -> None:
    transcribing = RowState(row="a", flow="video-edit", aux_jobs={"transcription": "j"})
    assert row_stage(transcribing) == "transcribing"
    assert row_stage(RowState(row="b", flow="video-edit", source_url="https://u")) == "uploaded"
    assert row_stage(RowState(row="c", flow="template", preview_job="p")) == "previewing"
    assert row_stage(RowState(row="d", preview_job="p")) == "previewing"  # an older ledger
    assert row_stage(RowState(row="e", flow="storyboard", render_job="r")) == "rendering"
    assert row_stage(RowState(row="f", flow="no-such-flow")) == "queued"


def test_the_console_counts_every_flows_stages_and_shows_the_busy_ones() -> None:
    assert set(flows.stage_names()) >= {"preview", "upload", "transcribe", "render", "download"}
    tally = Tally()
    tally.consume("stage", {"row": "a", "stage": "transcribe"})
    tally.consume("stage", {"row": "b", "stage": "render"})
    tally.consume("stage", {"row": "c", "stage": "transcription"})  # an aux job, not a stage
    assert tally.busy_stages() == [
        ("preview", 0),
        ("render", 1),
        ("download", 0),
        ("transcribe", 1),
    ]
    assert "1 transcribe" in tally.line()


def test_unknown_flows_are_reported_with_the_known_ones() -> None:
    problems = flows.check_fields("slideshow", {}, Path("m.csv"), frozenset())
    assert problems[0][0] == "flow" and "video-edit" in str(problems[0][2])


def test_flow_names_are_known_before_any_flow_module_loads() -> None:
    """``orchestrator --help`` lists the flows without importing their stages (start-up time),
    and asking for stage names or owned fields first still loads them."""
    code = (
        "import sys\n"
        "from orchestrator.input import flows\n"
        "assert flows.names()[:3] == ('template', 'storyboard', 'video-edit'), flows.names()\n"
        "assert 'orchestrator.run.stages.base' not in sys.modules\n"
        "assert 'aiohttp' not in sys.modules\n"
        "assert 'preview' in flows.stage_names()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
