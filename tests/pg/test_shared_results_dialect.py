"""A shared batch's results.csv follows its manifest as ``submit`` found it (recorded with the
batch, so a report written anywhere agrees); ``report --results-dialect`` writes another."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from e2e.helpers import write_batch

from orchestrator.cli.main import main


def test_a_shared_batch_writes_results_like_the_manifest_submit_read(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``;``-separated Windows-1252 in, ``;``-separated Windows-1252 out from ``report
    --ledger``; ``--results-dialect excel`` gives comma-separated UTF-8 with a BOM; ``approve
    --ledger`` refuses the option (the batch's is chosen by submit)."""
    batch = write_batch(tmp_path, 0)
    manifest = tmp_path / "crm.csv"
    manifest.write_bytes("name;city\r\nRené;Zürich\r\nZoë;Köln\r\n".encode("cp1252"))
    submit = ["submit", str(manifest), "--template", str(batch["template"]), "--ledger", pg_url]
    assert main([*submit, "--encoding", "cp1252"]) == 0
    out = tmp_path / "shared"
    assert main(["report", str(out), "--ledger", pg_url]) == 1  # nothing rendered yet
    data = (out / "results.csv").read_bytes()
    assert data.startswith(b"id;status;") and "René;Zürich".encode("cp1252") in data

    assert main(["report", str(out), "--ledger", pg_url, "--results-dialect", "excel"]) == 1
    data = (out / "results.csv").read_bytes()
    assert data.startswith(codecs.BOM_UTF8 + b"id,status,") and "René,Zürich".encode() in data

    capsys.readouterr()
    approve = ["approve", "--ledger", pg_url, "--results-dialect", "excel"]
    assert main(approve) == 2
    assert "chosen by `orchestrator submit`" in capsys.readouterr().err


def test_a_shared_batch_of_a_workbook_gets_results_xlsx_from_report(
    tmp_path: Path, pg_url: str
) -> None:
    """``report --ledger`` of a batch submitted from an ``.xlsx`` writes ``results.xlsx`` too:
    the sheet's columns first, then ours, a ``status`` per row."""
    from openpyxl import Workbook, load_workbook

    batch = write_batch(tmp_path, 0)
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name", "City"])
    sheet.append(["René", "Zürich"])
    sheet.append(["Zoë", "Köln"])
    manifest = tmp_path / "crm.xlsx"
    workbook.save(manifest)
    submit = ["submit", str(manifest), "--template", str(batch["template"]), "--ledger", pg_url]
    assert main(submit) == 0
    out = tmp_path / "shared"
    assert main(["report", str(out), "--ledger", pg_url]) == 1  # nothing rendered yet
    got = load_workbook(out / "results.xlsx").active
    assert got is not None
    header = [c.value for c in got[1]]
    assert header[:4] == ["Name", "City", "id", "status"]
    assert [(r[0].value, r[3].value) for r in got.iter_rows(min_row=2)] == [
        ("René", "pending"),
        ("Zoë", "pending"),
    ]
