"""What a finished job tells us reaches the user (issue 27 item 4), through the real CLI:

- a completed render's thumbnail, share page, ``videoDuration``, ``aiCreditsUsed`` and subtitle
  links are recorded in the ledger and written to ``results.csv`` and the report; the run's end
  summary and ``orchestrator report`` add up the video minutes and AI credits;
- a failed job keeps Pictory's ``error_code`` and ``error_message`` verbatim;
- ``SCENE_BACKGROUND_VISUAL_NOT_FOUND`` gets a hint saying what to do.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import AI_TEMPLATE, FAST_CONFIG, check_invariants, read_results, run_args, write_batch

VISUAL_HINT = "the search query found no stock visual: change the scene's text"


def _events(run_dir: Path, kind: str) -> list[dict[str, Any]]:
    lines = (run_dir / LEDGER_NAME).read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["e"] == kind]


def test_a_finished_render_tells_reach_ledger_results_report_and_summary(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every done row carries its render's thumbnail (a JPEG link), share page, duration, AI
    credits and subtitle links in the ledger, results.csv and report-data.js; the summary and
    ``orchestrator report`` say the batch's video minutes and AI credits."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3, project=AI_TEMPLATE)
    out = batch["out"]
    assert main(run_args(batch)) == 0
    summary = capsys.readouterr().out
    check_invariants(out, sim.stats(), 3)

    ready = _events(out, "render_ready")
    assert len(ready) == 3
    for event in ready:
        assert event["thumbnail"].split("?")[0].endswith(".jpg")
        assert event["share_url"].startswith("http") and event["credits"] >= 0
        assert set(event["subtitles"]) == {"srtFile", "vttFile", "txtFile"}
    minutes = sum(e["duration_s"] for e in ready) / 60
    credits = sum(e["credits"] for e in ready)
    assert credits == 3 * 22  # the template's AI image and AI video (contract.ai_credits)

    by_id = {e["row"]: e for e in ready}
    for row in read_results(out):
        told = by_id[row["id"]]
        assert float(row["duration_s"]) == pytest.approx(told["duration_s"], abs=1e-3)
        assert float(row["ai_credits"]) == told["credits"]
        assert (row["thumbnail_url"], row["share_url"]) == (told["thumbnail"], told["share_url"])
        assert row["srt_url"] == told["subtitles"]["srtFile"]
        assert row["vtt_url"] and row["txt_url"]
        assert row["error_code"] == row["error_message"] == ""

    usage = f"3 video(s) rendered: {minutes:.1f} video minutes, {credits:g} AI credits used"
    assert usage in summary
    page = (out / "report.html").read_text()
    assert f"{minutes:.1f} video minutes" in page and f"{credits:g} AI credits used" in page
    data = (out / "report-data.js").read_text()
    assert all(e["share_url"] in data and e["thumbnail"] in data for e in ready)

    assert main(["report", str(out)]) == 0
    assert usage in capsys.readouterr().out


def test_a_failed_job_keeps_pictorys_code_and_message_verbatim(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """A preview that fails says ``TEXT_TO_VIDEO_FAILED`` and a message naming the cause; the
    ledger's ``failed`` event and results.csv keep both exactly as Pictory sent them."""
    sim = make_sim(fault_job_failed_p=1.0)
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    out = batch["out"]
    assert main(run_args(batch)) == 1
    message = "The simulated preview failed (fault job_failed); create the job again"
    for event in _events(out, "failed"):
        assert (event["error_code"], event["error_message"]) == ("TEXT_TO_VIDEO_FAILED", message)
    rows = read_results(out)
    assert [r["status"] for r in rows] == ["failed", "failed"]
    for row in rows:
        assert (row["error_code"], row["error_message"]) == ("TEXT_TO_VIDEO_FAILED", message)
        assert row["duration_s"] == row["ai_credits"] == row["thumbnail_url"] == ""


def test_a_scene_without_a_stock_visual_gets_a_hint(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """A storyboard whose scene finds no stock visual fails with Pictory's
    ``SCENE_BACKGROUND_VISUAL_NOT_FOUND``: results.csv keeps the words and says what to do, and
    the report groups the rows under that name with the same hint."""
    sim = make_sim(fault_visual_not_found_p=1.0)
    api_env(sim)
    manifest = tmp_path / "stories.csv"
    with manifest.open("w", newline="") as f:
        csv.writer(f).writerows([["id", "text"], ["s1", "A quiet harbour at dawn."]])
    config = tmp_path / "c.toml"
    config.write_text(FAST_CONFIG)
    out = tmp_path / "run"
    args = ["run", str(manifest), "--flow", "storyboard", "--out", str(out)]
    assert main([*args, "--config", str(config)]) == 1
    (row,) = read_results(out)
    assert row["status"] == "failed" and row["error_code"] == "TEXT_TO_VIDEO_FAILED"
    assert row["error_message"].startswith("SCENE_BACKGROUND_VISUAL_NOT_FOUND: ")
    assert VISUAL_HINT in row["error"]
    page = (out / "report.html").read_text()
    assert 'data-kind="SCENE_BACKGROUND_VISUAL_NOT_FOUND"' in page
    assert VISUAL_HINT.replace("'", "&#x27;") in page
