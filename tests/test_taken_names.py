"""``run.taken_names`` on its own: which names the ledger's rows hold, which rows are new, and what
a collision says. (End to end through the CLI: ``e2e/test_taken_names.py``.)"""

from __future__ import annotations

from pathlib import Path

from orchestrator.input.rows import RowJob
from orchestrator.ledger.row_state import RowState
from orchestrator.run.taken_names import check, kept_name

MANIFEST = Path("m.csv")


def _job(row: str, line: int, name: str) -> RowJob:
    return RowJob(row, line, {}, None, name, manifest=MANIFEST)


def _states() -> list[RowState]:
    return [
        RowState(row="done", line=2, output="a.mp4", status="done", file="videos/a.mp4"),
        RowState(row="sent", line=3, output="b.mp4", render_job="j-1"),  # being made
        RowState(row="intent", line=4, output="c.mp4", render_intent=True),  # ambiguous-to-be
        RowState(row="again", line=5, output="d.mp4", output_override="d.v2.mp4"),
        RowState(row="admitted", line=6, output="e.mp4"),  # no render sent: takes a new name
        RowState(row="gone", line=7, output="f.mp4", status="done", forgotten="2026-01-01"),
    ]


def test_a_row_keeps_its_name_once_its_render_is_sent() -> None:
    """The name a row keeps: its re-render's, else its file's or its output once a render is
    sent; none before that."""
    kept = {s.row: kept_name(s) for s in _states()}
    assert kept == {
        "done": "a.mp4",
        "sent": "b.mp4",
        "intent": "c.mp4",
        "again": "d.v2.mp4",
        "admitted": None,
        "gone": "f.mp4",
    }


def test_new_rows_may_not_take_a_held_name_or_a_file_in_videos(tmp_path: Path) -> None:
    """New rows named like a done video, a video being made, an intent's or a re-render's name,
    or a file in videos/ (case aside) are listed; a row that keeps its own name, a name only an
    unsent row had, a forgotten row's name and free names are not."""
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "Hand.MP4").write_bytes(b"x")
    (videos / ".part-of-something.mp4.part").write_bytes(b"x")
    jobs = [
        _job("n1", 10, "A.mp4"),
        _job("n2", 11, "b.mp4"),
        _job("n3", 12, "c.mp4"),
        _job("n4", 13, "d.v2.mp4"),
        _job("n5", 14, "hand.mp4"),
        _job("n6", 15, "e.mp4"),  # only the unsent "admitted" row had it
        _job("n7", 16, "f.mp4"),  # forgotten: its video is gone
        _job("n8", 17, "free.mp4"),
        _job("done", 2, "zzz.mp4"),  # keeps a.mp4 whatever its line makes now
        _job("admitted", 6, "e.mp4"),
    ]
    lines, count = check(_states(), lambda: iter(jobs), videos, "{name}")
    assert count == 5
    assert [line.split(":")[1] for line in lines] == ["10", "11", "12", "13", "14"]
    assert "is the video of row 'done', line 2" in lines[0]
    assert "is the video being made of row 'sent', line 3" in lines[1]
    assert "a file already in" in lines[4] and "move or rename that file" in lines[4]
    assert all("change --name '{name}'" in line for line in lines)


def test_a_fresh_run_directory_costs_no_pass_over_the_rows(tmp_path: Path) -> None:
    """Nothing recorded and no videos/ folder: the rows are not even listed."""

    def rows() -> list[RowJob]:
        raise AssertionError("listed")

    assert check([], rows, tmp_path / "videos") == ([], 0)  # type: ignore[arg-type]
