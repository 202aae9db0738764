"""What a mailing needs, through the real CLI on the ``test`` simulator (issue 28 items 4, 5):

- a done row's ``results.csv`` line holds Pictory's ``video_url``, the local ``poster`` and
  ``preview_gif`` (files the report links too), the ``email_url`` and when each link expires;
- ``--links-valid-days`` warns, at the end and on the report, when the email link dies sooner;
- an ``.xlsx`` manifest gets ``results.xlsx``: the user's columns first, ours after, links
  clickable, a ``status`` per row.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import av
import pytest
from openpyxl import Workbook, load_workbook

from orchestrator.cli.main import main

from .helpers import read_results, run_args, write_batch

ISO = "%Y-%m-%dT%H:%M:%SZ"


def _iso_s(cell: str) -> float:
    return dt.datetime.strptime(cell, ISO).replace(tzinfo=dt.UTC).timestamp()


def test_a_done_row_has_its_email_ready_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each done row: ``video_url`` (the MP4 link) expiring as the link says (the simulator's
    hour), the share page ``never``, ``email_url`` the share page, ``poster`` and
    ``preview_gif`` files in the run directory (a GIF of several frames at ``gif_width_px``),
    which report-data.js links; no warning without ``--links-valid-days``."""
    batch = write_batch(tmp_path, 2, config={"report": {"gif_width_px": 120, "gif_fps": 10}})
    out = batch["out"]
    before_s = dt.datetime.now(dt.UTC).timestamp()
    assert main(run_args(batch, "--simulate=test")) == 0
    assert "links:" not in capsys.readouterr().out
    data = (out / "report-data.js").read_text()
    for row in read_results(out):
        assert row["status"] == "done"
        assert row["video_url"].startswith("http") and ".mp4?" in row["video_url"]
        expires_s = _iso_s(row["video_url_expires"])
        assert before_s + 3000 < expires_s < before_s + 3700 + 60  # the simulator's 1 h links
        assert row["thumbnail_url_expires"] == row["video_url_expires"]
        assert row["share_url_expires"] == "never"
        assert (row["email_url"], row["email_url_expires"]) == (row["share_url"], "never")
        stem = Path(row["file"]).stem
        assert row["poster"] == f"thumbs/{stem}.jpg" and (out / row["poster"]).is_file()
        assert row["preview_gif"] == f"thumbs/{stem}.gif"
        with av.open(str(out / row["preview_gif"])) as gif:
            frames = list(gif.decode(gif.streams.video[0]))
        assert len(frames) > 1 and frames[0].width == 120
        assert f'"{row["preview_gif"]}"' in data  # the report shows the same file


def test_links_valid_days_warns_when_the_email_link_dies_sooner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``[report] email_link = "video"`` mails Pictory's MP4 link, which the simulator signs for
    an hour: ``--links-valid-days 7`` says so in one line at the end, on the report, and from
    ``orchestrator report``; the durable choice (the share page) does not warn."""
    batch = write_batch(tmp_path, 2, config={"report": {"email_link": "video"}})
    out = batch["out"]
    assert main(run_args(batch, "--simulate=test", "--links-valid-days", "7")) == 0
    printed = capsys.readouterr().out
    warning = [line for line in printed.splitlines() if line.startswith("links:")]
    assert len(warning) == 1
    assert (
        "2 of 2 done row(s) have an email_url that may stop working within 7 day(s)" in (warning[0])
    )
    assert "share page" in warning[0] and "--deliver-public-url BASE" in warning[0]
    assert "may stop working within 7 day(s)" in (out / "report.html").read_text()
    for row in read_results(out):
        assert row["email_url"] == row["video_url"]
        assert row["email_url_expires"] == row["video_url_expires"]

    assert main(["report", str(out), "--links-valid-days", "7"]) == 0
    assert "2 of 2 done row(s)" in capsys.readouterr().out
    assert main(["report", str(out), "--links-valid-days", "0"]) == 2
    assert "give a number of days above 0" in capsys.readouterr().err

    durable = write_batch(tmp_path / "durable", 1)
    assert main(run_args(durable, "--simulate=test", "--links-valid-days", "30")) == 0
    assert "links:" not in capsys.readouterr().out


def test_an_xlsx_manifest_gets_results_xlsx_in_its_own_form(tmp_path: Path) -> None:
    """The user's columns first, in their order and spelling (``First Name``), then ours; a
    ``status`` per row; links clickable (the video file, Pictory's link, the poster, the GIF);
    a cell that looks like a formula stays text; results.csv is written too."""
    batch = write_batch(tmp_path, 0)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Segment", "ID", "Name", "City", "Notes"])
    sheet.append(["gold", "r1", "Ann", "Paris", "@SUM(1)"])
    sheet.append(["silver", "r2", "Ben", "Rome", "-x"])
    manifest = tmp_path / "customers.xlsx"
    workbook.save(manifest)
    out = tmp_path / "xrun"
    argv = ["run", str(manifest), "--template", str(batch["template"]), "--out", str(out)]
    assert main([*argv, "--config", str(batch["config"]), "--simulate=test"]) == 0

    assert (out / "results.csv").is_file()
    got = load_workbook(out / "results.xlsx").active
    assert got is not None
    header = [c.value for c in got[1]]
    assert header[:4] == ["Segment", "Name", "City", "Notes"]
    assert header[4:6] == ["id", "status"] and "preview_gif" in header
    col = {name: i for i, name in enumerate(header)}
    rows = list(got.iter_rows(min_row=2))
    assert [r[col["id"]].value for r in rows] == ["r1", "r2"]
    assert [r[col["status"]].value for r in rows] == ["done", "done"]
    assert [r[0].value for r in rows] == ["gold", "silver"]
    assert rows[0][col["Notes"]].value == "@SUM(1)" and rows[0][col["Notes"]].data_type == "s"
    for r in rows:
        for name in ("file", "video_url", "poster", "preview_gif", "email_url"):
            cell = r[col[name]]
            assert cell.hyperlink is not None and cell.hyperlink.target == cell.value, name
        assert isinstance(r[col["bytes"]].value, int)
