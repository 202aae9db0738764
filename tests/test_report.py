"""report.html: poster frames, failures grouped with what to do, rows beside the page, safe data."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from orchestrator.clock import VirtualClock
from orchestrator.input.rows import manifest_rows
from orchestrator.ledger.codec import decode
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import Event
from orchestrator.report.page import (
    DATA_NAME,
    HINTS,
    REPORT_NAME,
    ledger_timing,
    write_report,
)
from orchestrator.report.thumbnails import poster_frame, poster_name
from orchestrator.simulator.media import clip_bytes


def _event(record: dict[str, object]) -> Event:
    """A ledger event from its stored form."""
    event = decode(record)
    assert event is not None
    return event


def _manifest(folder: Path, rows: int, **extra: str) -> tuple[Path, Path]:
    template = folder / "t.pictai"
    template.write_text(json.dumps({"scenes": [{"sentence": "Hi {{name}} of {{company}}"}]}))
    manifest = folder / "m.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "company"])
        for i in range(rows):
            writer.writerow([f"row-{i:06d}", extra.get(f"name{i}", f"Name {i}"), f"Firm {i}"])
    return manifest, template


def _data(run_dir: Path) -> dict[str, list[object]]:
    text = (run_dir / DATA_NAME).read_text()
    prefix = "window.REPORT_DATA="
    assert text.startswith(prefix)
    loaded: dict[str, list[object]] = json.loads(text[len(prefix) :].rstrip().rstrip(";"))
    return loaded


def test_poster_frame_is_a_jpeg_from_the_video(tmp_path: Path) -> None:
    """PyAV decodes the simulator's MP4 and writes a JPEG poster; a second call reuses it."""
    video = tmp_path / "videos" / "a.mp4"
    video.parent.mkdir()
    video.write_bytes(clip_bytes())
    poster = tmp_path / poster_name("videos/a.mp4")
    assert poster_frame(video, poster) == poster
    assert poster.read_bytes()[:2] == b"\xff\xd8"
    mtime = poster.stat().st_mtime_ns
    assert poster_frame(video, poster) == poster
    assert poster.stat().st_mtime_ns == mtime


def test_a_file_that_is_not_a_video_gets_no_poster(tmp_path: Path) -> None:
    """An unreadable video gives None and leaves nothing behind, never an exception."""
    video = tmp_path / "bad.mp4"
    video.write_bytes(b"<html>not a video</html>")
    assert poster_frame(video, tmp_path / "thumbs" / "bad.jpg") is None
    assert not (tmp_path / "thumbs" / "bad.jpg").exists()


def test_report_groups_failures_with_the_api_message_and_what_to_do(tmp_path: Path) -> None:
    """Failed rows are grouped by class with their count, the API's message and a hint; done
    rows get a poster and a link to their file."""
    manifest, template = _manifest(tmp_path, 4)
    run_dir = tmp_path / "run"
    (run_dir / "videos").mkdir(parents=True)
    state = LedgerState()
    events = [
        {"e": "row", "row": "row-000000", "line": 2},
        {
            "e": "downloaded",
            "row": "row-000000",
            "file": "videos/row-000000.mp4",
            "bytes": 1,
            "sha256": "x",
        },
        {
            "e": "failed",
            "row": "row-000001",
            "stage": "render",
            "kind": "job_failed",
            "message": "render failed: font missing (job 952c8230-85e4-4914-9a20-e37fba070778)",
            "permanent": True,
        },
        {
            "e": "failed",
            "row": "row-000002",
            "stage": "render",
            "kind": "job_failed",
            "message": "render failed: font missing (job 1c166480-0c39-4580-bbff-1233b520d9af)",
            "permanent": True,
        },
        {"e": "ambiguous", "row": "row-000003", "stage": "render", "message": "answer lost"},
    ]
    for event in events:
        state.apply(_event(event))
    (run_dir / "videos" / "row-000000.mp4").write_bytes(clip_bytes())
    written = dt.datetime(2026, 11, 28, 23, 59, 30)
    info = write_report(
        run_dir, manifest_rows(manifest, template), state, clock=VirtualClock(wall_start=written)
    )
    assert info.counts == {"done": 1, "failed": 2, "ambiguous": 1}
    assert info.posters == 1 and (run_dir / "thumbs" / "row-000000.jpg").exists()
    assert info.failures["job_failed"].count == 2
    page = (run_dir / REPORT_NAME).read_text()
    assert "render failed: font missing (job …)</q> × 2" in page  # one cause, one line
    assert HINTS["job_failed"].split(".")[0] in page
    assert HINTS["ambiguous"].split(":")[0] in page
    assert '<script src="report-data.js"></script>' in page
    assert "written 2026-11-28 23:59:30" in page  # the clock's calendar time
    rows = _data(run_dir)["rows"]
    assert rows[0][:4] == ["row-000000", "done", "videos/row-000000.mp4", "thumbs/row-000000.jpg"]
    assert rows[1][4] == "job_failed" and rows[1][5].startswith("render failed: font missing")
    assert _data(run_dir)["columns"] == ["name", "company"]
    (run_dir / "thumbs" / "row-000000.jpg").unlink()
    again = write_report(run_dir, manifest_rows(manifest, template), state, posters_wanted=False)
    assert again.posters == 0 and not (run_dir / "thumbs" / "row-000000.jpg").exists()


def test_row_values_cannot_become_markup(tmp_path: Path) -> None:
    """A variable holding </script> cannot close the data script, and messages are escaped."""
    hostile = "</script><script>alert(1)</script>"
    manifest, template = _manifest(tmp_path, 1, name0=hostile)
    state = LedgerState()
    state.apply(
        _event(
            {
                "e": "failed",
                "row": "row-000000",
                "stage": "render",
                "kind": "permanent",
                "message": "<img src=x onerror=alert(1)>",
            }
        )
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_report(run_dir, manifest_rows(manifest, template), state)
    assert "</script>" not in (run_dir / DATA_NAME).read_text().replace("\n", "")
    assert _data(run_dir)["rows"][0][7] == [hostile, "Firm 0"]
    assert "<img src=x" not in (run_dir / REPORT_NAME).read_text()


def test_a_file_name_in_the_ledger_cannot_become_a_script_link(tmp_path: Path) -> None:
    """A tampered (or shared) ledger naming its file ``javascript:...``: the page's link and
    video source stay a relative path (percent-encoded), never a scheme a click would run."""
    manifest, template = _manifest(tmp_path, 1)
    state = LedgerState()
    file = "javascript:alert(document.domain)//x.mp4"
    state.apply(
        _event({"e": "downloaded", "row": "row-000000", "file": file, "bytes": 1, "sha256": "0"})
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_report(run_dir, manifest_rows(manifest, template), state, posters_wanted=False)
    link = _data(run_dir)["rows"][0][2]
    assert link == "javascript%3Aalert%28document.domain%29//x.mp4"


def test_a_value_spelling_a_placeholder_is_shown_as_it_is(tmp_path: Path) -> None:
    """Found by the browser property test: a failure kind or message spelling one of the page's
    placeholders (``@@DATA@@``) was filled in like the placeholder."""
    manifest, template = _manifest(tmp_path, 1)
    state = LedgerState()
    failed = {"e": "failed", "row": "row-000000", "stage": "render", "kind": "@@DATA@@"}
    state.apply(_event({**failed, "message": "@@NOTICE@@"}))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_report(run_dir, manifest_rows(manifest, template), state, posters_wanted=False)
    page = (run_dir / REPORT_NAME).read_text()
    assert "@@DATA@@" in page and "@@NOTICE@@" in page


def test_100k_rows_stay_a_small_page_and_a_compact_data_file(tmp_path: Path) -> None:
    """100,000 rows: the page stays tens of KB and the rows file about 100 bytes a row."""
    manifest, template = _manifest(tmp_path, 100_000)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    info = write_report(run_dir, manifest_rows(manifest, template), LedgerState())
    assert info.counts == {"pending": 100_000}
    assert (run_dir / REPORT_NAME).stat().st_size < 64 * 1024
    assert (run_dir / DATA_NAME).stat().st_size < 100_000 * 120


def test_working_time_sums_each_session_not_the_pause_between(tmp_path: Path) -> None:
    """Two sessions a day apart count their own spans only; downloads are counted."""
    lines = [
        {"e": "run", "ts": 1000.0},
        {"e": "downloaded", "ts": 1010.0, "row": "a", "file": "a", "bytes": 1, "sha256": "x"},
        {"e": "run", "ts": 90000.0},
        {"e": "downloaded", "ts": 90005.0, "row": "b", "file": "b", "bytes": 1, "sha256": "x"},
    ]
    state = LedgerState()
    for line in lines:
        state.apply(_event(line))
    timing = ledger_timing(state)
    assert timing.active_s == 15.0
    assert timing.downloaded == 2
