"""``orchestrator forget`` (issue 32): a customer's values leave every file of the run directory
(every byte of every file, hidden ones included) and the delivered copy, while the row stays
done: neither a resume nor a rerun on the same manifest renders it again. A live run's directory
is refused untouched."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from orchestrator.cli.main import main
from orchestrator.ledger.file import FileLedger

from .helpers import read_results, run_args, write_batch

PLANTED = ("Zelda Quartermain", "Xylophone Heights", "zelda@planted.example")
"""The customer's values: names no other row, file or message holds."""
KEPT = ("Name 0", "City 0", "Name 2")


def _batch(tmp_path: Path) -> dict[str, Path]:
    batch = write_batch(tmp_path, 3)
    with batch["manifest"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city", "email"])
        writer.writerow(["row-000", "Name 0", "City 0", "ann@kept.example"])
        writer.writerow(["row-001", *PLANTED])
        writer.writerow(["row-002", "Name 2", "City 2", "bob@kept.example"])
    return batch


def _holding(folder: Path, texts: tuple[str, ...]) -> dict[str, list[str]]:
    """Every file under ``folder`` (hidden ones too) holding any of ``texts``, in any byte."""
    found: dict[str, list[str]] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if zipfile.is_zipfile(path):  # a workbook: its parts unzipped
                with zipfile.ZipFile(path) as z:
                    data += b"".join(z.read(name) for name in z.namelist())
            hits = [t for t in texts if t.encode() in data or t.encode("utf-16-le") in data]
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def _ledger(run_dir: Path) -> list[dict[str, object]]:
    lines = (run_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_forget_erases_a_customer_everywhere_and_the_row_stays_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a delivered run, ``--dry-run`` lists and changes nothing; ``forget --where
    email=...`` leaves none of the customer's values
    in any file of the run directory, nor a delivered object; the other rows keep theirs; the
    row stays done (results.csv shows the marker), and a resume and a rerun render nothing."""
    batch = _batch(tmp_path)
    out, dest = batch["out"], tmp_path / "delivered"
    assert main(run_args(batch, "--simulate", "test", "--deliver", dest.as_uri() + "/")) == 0
    assert _holding(out, PLANTED), "the values were written before"
    assert _holding(dest, ("",)), "videos were delivered"
    delivered_before = sorted(p.name for p in dest.rglob("*") if p.is_file())
    capsys.readouterr()

    ledger_before = (out / "ledger.jsonl").read_bytes()
    assert main(["forget", "--dry-run", "--where", f"email={PLANTED[2]}", str(out)]) == 0
    said = capsys.readouterr().out
    assert "would forget row row-001" in said and "would remove videos/row-001.mp4" in said
    assert "nothing was changed" in said and "would delete delivered object" in said
    assert (out / "ledger.jsonl").read_bytes() == ledger_before
    assert (out / "videos" / "row-001.mp4").exists() and _holding(out, PLANTED)

    assert main(["forget", "--where", f"email={PLANTED[2]}", str(out)]) == 0
    said = capsys.readouterr().out
    assert "forgot row row-001" in said and "removed videos/row-001.mp4" in said
    assert "deleted delivered object" in said

    assert _holding(out, PLANTED) == {}
    assert _holding(dest, PLANTED) == {}
    delivered_after = sorted(p.name for p in dest.rglob("*") if p.is_file())
    assert len(delivered_after) == len(delivered_before) - 1
    assert not list(out.rglob("row-001*")), "video, poster and GIF removed"
    assert (out / "videos" / "row-000.mp4").exists() and _holding(out, KEPT)

    rows = {r["id"]: r for r in read_results(out)}
    assert rows["row-001"]["status"] == "done"
    assert re.fullmatch(r"\[forgotten \d{4}-\d{2}-\d{2}\]", rows["row-001"]["name"])
    assert rows["row-001"]["email"] == rows["row-001"]["name"]
    assert rows["row-000"]["name"] == "Name 0"

    records = len(_ledger(out))
    assert main(["resume", str(out)]) == 0
    assert main(run_args(batch, "--simulate", "test")) == 0  # the manifest still has the row
    after = _ledger(out)[records:]
    assert not [r for r in after if r.get("row") == "row-001"], "nothing done for the row"
    assert _holding(out, PLANTED) == {}, "a rerun on the manifest writes no value back"
    assert {r["id"]: r["status"] for r in read_results(out)}["row-001"] == "done"

    capsys.readouterr()
    assert main(["forget", "row-001", str(out)]) == 0  # again: checked again, nothing to do
    assert "forgotten before" in capsys.readouterr().out


def test_forget_refuses_a_live_run_and_unknown_rows_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While a run holds the directory, or when a named row is not in the batch, ``forget``
    exits 2 with one line and changes nothing."""
    batch = _batch(tmp_path)
    out = batch["out"]
    assert main(run_args(batch, "--simulate", "test")) == 0
    before = (out / "ledger.jsonl").read_bytes()
    held = FileLedger.open(out)
    try:
        capsys.readouterr()
        assert main(["forget", "row-001", str(out)]) == 2
        err = capsys.readouterr().err
        assert "in use by a run" in err and "nothing was erased" in err
    finally:
        held.close()
    assert main(["forget", "row-999", str(out)]) == 2
    assert "no row 'row-999'" in capsys.readouterr().err
    assert main(["forget", "--line", "3", "--where", "nope", str(out)]) == 2
    assert (out / "ledger.jsonl").read_bytes() == before
    assert (out / "videos" / "row-001.mp4").exists()


def test_a_row_forgotten_before_it_rendered_is_never_rendered(tmp_path: Path) -> None:
    """A canary's held-back row forgotten before approval becomes failed (kind ``forgotten``);
    approving the rest renders the others and never that one."""
    batch = _batch(tmp_path)
    out = batch["out"]
    assert main(run_args(batch, "--simulate", "test", "--canary", "1")) == 3
    pending = [r["id"] for r in read_results(out) if r["status"] == "pending"]
    assert main(["forget", pending[0], str(out)]) == 0
    assert main(["approve", str(out), "--simulate", "test"]) == 1  # one row failed: forgotten
    rows = {r["id"]: r for r in read_results(out)}
    assert rows[pending[0]]["status"] == "failed"
    assert rows[pending[0]]["error"].startswith("forgotten")
    assert rows[pending[0]]["retry"] == ""
    assert not [r for r in _ledger(out) if r.get("row") == pending[0] and r["e"] == "render_job"]
    assert _holding(out, tuple(v for v in PLANTED if pending[0] == "row-001")) == {}


def test_a_workbook_batch_forgets_into_results_xlsx_too(tmp_path: Path) -> None:
    """A batch read from a workbook has results.xlsx: after ``forget --line 3`` none of its
    parts (unzipped) holds the customer's values, and the row's cells show the marker."""
    batch = _batch(tmp_path)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    with batch["manifest"].open(newline="") as f:
        for cells in csv.reader(f):
            sheet.append(cells)
    batch["manifest"] = tmp_path / "m.xlsx"
    book.save(batch["manifest"])
    out = batch["out"]
    assert main(run_args(batch, "--simulate", "test")) == 0
    assert "results.xlsx" in _holding(out, PLANTED)
    assert main(["forget", "--line", "3", str(out)]) == 0
    assert _holding(out, PLANTED) == {}
    assert "[forgotten " in str(_holding(out, ("[forgotten ",)).get("results.xlsx"))


def test_forget_without_the_manifest_finds_rows_by_the_ledger_and_drops_stale_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest moved away: ``forget ID`` still erases the row (found by the ledger) and,
    unable to write results.csv and the report again, removes them rather than leave the values
    in them, saying how to write them again."""
    batch = _batch(tmp_path)
    out = batch["out"]
    assert main(run_args(batch, "--simulate", "test")) == 0
    batch["manifest"].rename(tmp_path / "elsewhere.csv")
    capsys.readouterr()
    assert main(["forget", "row-001", str(out)]) == 0
    said = capsys.readouterr().out
    assert "rows were found by the ledger alone" in said and "removed results.csv" in said
    assert not (out / "results.csv").exists()
    assert _holding(out, PLANTED[:2]) == {}


def test_forget_deletes_the_object_delivered_to_s3(tmp_path: Path, s3: Any) -> None:
    """--deliver s3://videos/campaign/ (moto's S3 on loopback): ``forget`` deletes the row's
    object, with its prefix, and leaves the other rows' objects."""
    batch = _batch(tmp_path)
    deliver = ("--deliver", "s3://videos/campaign/")
    assert main(run_args(batch, "--simulate", "test", *deliver)) == 0
    assert sorted(s3.objects("videos")) == [f"campaign/row-00{i}.mp4" for i in range(3)]
    assert main(["forget", "row-001", str(batch["out"])]) == 0
    assert sorted(s3.objects("videos")) == ["campaign/row-000.mp4", "campaign/row-002.mp4"]
