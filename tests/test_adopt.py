"""``orchestrator adopt``: a removed ledger rebuilt from the run directory's results.csv and
videos, each row by what they tell (``run.adopt``'s table), offline."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from orchestrator.errors import RunDirError
from orchestrator.input.row import DEFAULT_OPTIONS
from orchestrator.ledger.file import LEDGER_NAME, FileLedger, replay
from orchestrator.report.results import FIXED_COLUMNS
from orchestrator.run.adopt import adopt
from tests.e2e.helpers import write_batch

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


def _results(run_dir: Path, rows: list[dict[str, str]]) -> None:
    with (run_dir / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, [*FIXED_COLUMNS, "name", "city"])
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in writer.fieldnames})


async def test_each_row_is_adopted_by_what_the_directory_tells(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, 7)
    run_dir = batch["out"]
    (run_dir / "videos").mkdir(parents=True)
    (run_dir / "videos" / "row-000.mp4").write_bytes(MP4)  # done, results agree
    (run_dir / "videos" / "row-001.mp4").write_bytes(MP4)  # done, no results line
    (run_dir / "videos" / "row-005.mp4").write_bytes(b"<html>")  # not an MP4
    (run_dir / "videos" / "row-006.mp4").write_bytes(MP4 + b"x")  # differs from results
    sha = hashlib.sha256(MP4).hexdigest()
    _results(
        run_dir,
        [
            {"id": "row-000", "status": "done", "file": "videos/row-000.mp4", "sha256": sha},
            {"id": "row-002", "status": "failed", "render_job_id": "job-2"},
            {"id": "row-003", "status": "ambiguous", "error": "ambiguous: answer lost"},
            {
                "id": "row-004",
                "status": "failed",
                "error": "permanent: '-bad value",
                "retry": "retry-failed",
            },
            {"id": "row-005", "status": "done", "file": "videos/row-005.mp4", "sha256": sha},
            {"id": "row-006", "status": "done", "file": "videos/row-006.mp4", "sha256": sha},
        ],
    )
    found = await adopt(run_dir, batch["manifest"], batch["template"], "template", DEFAULT_OPTIONS)
    assert found.counts == {"done": 2, "reattach": 1, "ambiguous": 3, "failed": 1}
    assert found.mismatched == ["row-006"]
    state = replay(run_dir / LEDGER_NAME)
    status = {key: state.rows[key].status for key in (f"row-00{i}" for i in range(7))}
    assert status == {
        "row-000": "done",
        "row-001": "done",
        "row-002": "pending",  # re-attaches to job-2: polled, never rendered again
        "row-003": "ambiguous",
        "row-004": "failed",
        "row-005": "ambiguous",  # results say done, the file is not a video, no job known
        "row-006": "ambiguous",
    }
    assert state.rows["row-002"].render_job == "job-2"
    assert state.rows["row-004"].fail_permanent
    assert state.rows["row-001"].sha256 == sha
    assert state.runs[0].manifest_sha256 is not None
    assert state.last_end is not None and state.last_end.reason is not None
    assert "adopted" in state.last_end.reason


async def test_adopt_refuses_a_directory_with_a_ledger_or_nothing_to_adopt(
    tmp_path: Path,
) -> None:
    batch = write_batch(tmp_path, 2)
    run_dir = batch["out"]
    run_dir.mkdir()
    with pytest.raises(RunDirError, match="nothing to adopt"):
        await adopt(run_dir, batch["manifest"], batch["template"], "template", DEFAULT_OPTIONS)
    FileLedger.open(run_dir).close()
    (run_dir / LEDGER_NAME).write_text('{"e":"run","ts":1,"format":2}\n')
    with pytest.raises(RunDirError, match="has a ledger already"):
        await adopt(run_dir, batch["manifest"], batch["template"], "template", DEFAULT_OPTIONS)


def test_a_fresh_start_beside_delivered_videos_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "videos").mkdir(parents=True)
    (run_dir / "videos" / "a.mp4").write_bytes(MP4)
    with pytest.raises(RunDirError, match="orchestrator adopt"):
        FileLedger.open(run_dir)
    assert not (run_dir / LEDGER_NAME).exists()
    (run_dir / "videos" / "a.mp4").unlink()
    FileLedger.open(run_dir).close()  # an empty videos folder is no delivered work
