"""Spreadsheets as marketers have them: workbooks, semicolons, tabs, UTF-16, friendly headers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from orchestrator.cli.main import main
from orchestrator.errors import ManifestError, UserError
from orchestrator.input.cell_format import cell_text
from orchestrator.input.manifest import read_manifest
from orchestrator.input.row import ManifestOptions
from orchestrator.input.validate import validate_manifest

TEMPLATE = {
    "projectName": "sheets",
    "scenes": [
        {"sceneId": 1, "sentence": "Hi {{first_name}} from {{company}}: {{offer}} until {{until}}"}
    ],
}
CSV_TEXT = (
    "id,first_name,company,offer,until\n"
    "c1,Ann,Acme,20%,01/03/2026\n"
    'c2,Ben,"Beta; Co",12.5%,02/04/2026\n'
)
EXPECTED = [
    {"first_name": "Ann", "company": "Acme", "offer": "20%", "until": "01/03/2026"},
    {"first_name": "Ben", "company": "Beta; Co", "offer": "12.5%", "until": "02/04/2026"},
]


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "t.pictai"
    path.write_text(json.dumps(TEMPLATE))
    return path


def write_workbook(path: Path, sheets: dict[str, list[list[Any]]], formats: dict[str, str]) -> Path:
    """A real .xlsx: ``sheets`` name → rows; ``formats`` cell → number format (first sheet)."""
    workbook = Workbook()
    first = True
    for name, rows in sheets.items():
        sheet = workbook.active if first else workbook.create_sheet(name)
        assert sheet is not None
        sheet.title = name
        for row in rows:
            sheet.append(row)
        if first:
            for cell, number_format in formats.items():
                sheet[cell].number_format = number_format
        first = False
    workbook.save(path)
    return path


def customers_xlsx(path: Path, header: list[str] | None = None) -> Path:
    header = header or ["id", "first_name", "company", "offer", "until"]
    rows: list[list[Any]] = [
        header,
        ["c1", "Ann", "Acme", 0.2, dt.datetime(2026, 3, 1)],
        ["c2", "Ben", "Beta; Co", 0.125, dt.datetime(2026, 4, 2)],
        [None, None, None, None, None],  # an empty trailing row, formatted
    ]
    formats = {"D2": "0%", "D3": "0.0%", "E2": "dd/mm/yyyy", "E3": "dd/mm/yyyy", "A4": "0.00"}
    other = [["id", "x"], ["z1", 3]]
    return write_workbook(path, {"Customers": rows, "Other": other}, formats)


def variables(path: Path, options: ManifestOptions | None = None) -> list[dict[str, str]]:
    return [row.variables for row in read_manifest(path, options or ManifestOptions())]


# --- workbooks ---------------------------------------------------------------------------------


def test_workbook_cells_read_as_displayed_and_trailing_empty_row_skipped(tmp_path: Path) -> None:
    """Percentages and dates come through their number formats, not as 0.2 or a datetime."""
    path = customers_xlsx(tmp_path / "c.xlsx")
    rows = list(read_manifest(path))
    assert [r.variables for r in rows] == EXPECTED
    assert [(r.id, r.line) for r in rows] == [("c1", 2), ("c2", 3)]


def test_workbook_and_equivalent_csv_validate_the_same(tmp_path: Path, template: Path) -> None:
    """The same rows as a workbook and as a CSV: both clean, same row count."""
    (tmp_path / "c.csv").write_text(CSV_TEXT)
    xlsx = validate_manifest(customers_xlsx(tmp_path / "c.xlsx"), template)
    text = validate_manifest(tmp_path / "c.csv", template)
    assert (xlsx.ok, xlsx.rows) == (text.ok, text.rows) == (True, 2)


def test_sheet_option_reads_another_sheet_and_unknown_sheet_lists_them(tmp_path: Path) -> None:
    """``--sheet Other`` reads the second sheet; a wrong name lists the sheets there are."""
    path = customers_xlsx(tmp_path / "c.xlsx")
    assert variables(path, ManifestOptions(sheet="Other")) == [{"x": "3"}]
    with pytest.raises(ManifestError, match="has no sheet 'Nope'; it has: 'Customers', 'Other'"):
        list(read_manifest(path, ManifestOptions(sheet="Nope")))


def test_workbook_problems_are_located_file_sheet_row_column(
    tmp_path: Path, template: Path
) -> None:
    """An empty variable is reported as ``FILE[Sheet]:ROW:COLUMN``."""
    path = write_workbook(
        tmp_path / "c.xlsx",
        {"Customers": [["first_name", "company", "offer", "until"], ["Ann", "", "x", "y"]]},
        {},
    )
    report = validate_manifest(path, template)
    assert [str(p).split(": ")[0] for p in report.problems] == [f"{path}[Customers]:2:B"]


def test_workbook_value_under_no_header_is_refused_with_its_cell(tmp_path: Path) -> None:
    """A value right of the header has no column name: refused, naming the cell."""
    path = write_workbook(tmp_path / "c.xlsx", {"S": [["id", "x"], ["a", "1", "stray"]]}, {})
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    assert str(info.value).startswith(f"{path}[S]:2:C: ")


def test_broken_workbook_is_one_line_not_a_traceback(tmp_path: Path, capsys: Any) -> None:
    """A file named .xlsx that is not a workbook: exit 2 with one message."""
    path = tmp_path / "c.xlsx"
    path.write_bytes(b"not a zip")
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "cannot open the workbook" in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("value", "number_format", "shown"),
    [
        (0.2, "0%", "20%"),
        (0.125, "0.00%", "12.50%"),
        (1234.5, "#,##0.00", "1,234.50"),
        (1234.5, '"$"#,##0', "$1,235"),
        (-3.0, "0.0;[Red]-0.0", "-3.0"),
        (0.1 + 0.2, "General", "0.3"),
        (42.0, "General", "42"),
        (12345.678, "0.00E+00", "1.23E+04"),
        (True, "General", "TRUE"),
        (dt.datetime(2026, 3, 1), "yyyy-mm-dd", "2026-03-01"),
        (dt.datetime(2026, 3, 1, 14, 5), "d mmm yyyy h:mm AM/PM", "1 Mar 2026 2:05 PM"),
        (dt.datetime(2026, 3, 1), "mmmm d, yyyy", "March 1, 2026"),
        (dt.time(9, 30), "hh:mm", "09:30"),
    ],
)
def test_cell_shown_through_its_number_format(value: Any, number_format: str, shown: str) -> None:
    """The common Excel formats render as Excel displays them."""
    assert cell_text(value, number_format) == shown


# --- delimited text and encodings ---------------------------------------------------------------


def test_semicolon_csv_is_sniffed(tmp_path: Path) -> None:
    """A European-locale export separated by ';' reads like the comma CSV."""
    path = tmp_path / "c.csv"
    path.write_text(
        "id;first_name;company;offer;until\n"
        "c1;Ann;Acme;20%;01/03/2026\n"
        'c2;Ben;"Beta; Co";12.5%;02/04/2026\n'
    )
    manifest = read_manifest(path)
    assert list(manifest) == list(read_manifest(_csv(tmp_path)))
    assert manifest.description == "CSV, semicolon-separated, UTF-8"


def test_tsv_is_read_and_delimiter_can_be_forced(tmp_path: Path) -> None:
    """A .tsv is tab-separated; ``--delimiter '|'`` reads a pipe file."""
    tsv = tmp_path / "c.tsv"
    tsv.write_text("first_name\tcompany\nAnn\tAcme, Inc\n")
    assert variables(tsv) == [{"first_name": "Ann", "company": "Acme, Inc"}]
    pipe = tmp_path / "c.csv"
    pipe.write_text("a|b,c\n1|2,3\n")
    assert variables(pipe, ManifestOptions(delimiter="|")) == [{"a": "1", "b,c": "2,3"}]


def test_unknown_delimiter_or_encoding_is_a_usage_error(tmp_path: Path) -> None:
    """Options are checked before reading."""
    path = _csv(tmp_path)
    with pytest.raises(UserError, match="--delimiter ':'"):
        read_manifest(path, ManifestOptions(delimiter=":"))
    with pytest.raises(UserError, match="--encoding 'klingon'"):
        read_manifest(path, ManifestOptions(encoding="klingon"))


def test_utf16_with_bom_is_read_as_it_is(tmp_path: Path) -> None:
    """Excel's 'Unicode Text' (UTF-16 LE with a BOM, tab-separated) reads without options."""
    path = tmp_path / "c.txt"
    text = "first_name\tcompany\r\nZoë\tÆther AG\r\n"
    path.write_bytes(text.encode("utf-16"))
    manifest = read_manifest(path)
    assert next(iter(manifest)).variables == {"first_name": "Zoë", "company": "Æther AG"}
    assert manifest.description == "TSV, tab-separated, UTF-16"


def test_windows_1252_is_refused_naming_it_then_read_with_encoding(tmp_path: Path) -> None:
    """A cp1252 file is refused with 'Windows-1252' and the option named; --encoding reads it."""
    path = tmp_path / "c.csv"
    path.write_bytes("first_name,company\nRené,“Quotes” Ltd\n".encode("cp1252"))
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    assert "most likely Windows-1252" in info.value.message
    assert info.value.hint is not None and "--encoding cp1252" in info.value.hint
    assert variables(path, ManifestOptions(encoding="cp1252")) == [
        {"first_name": "René", "company": "“Quotes” Ltd"}
    ]


# --- headers and column problems ---------------------------------------------------------------


def test_friendly_headers_match_once_per_column(
    tmp_path: Path, template: Path, capsys: Any
) -> None:
    """``First Name`` ~ ``first_name``: validate passes and says so once per mapped column."""
    path = tmp_path / "c.csv"
    rows = "".join(f"c{i},Ann,Acme,5%,soon\n" for i in range(50))
    path.write_text("ID,First Name,Company,offer,Until\n" + rows)
    assert main(["validate", str(path), "--template", str(template)]) == 0
    out = capsys.readouterr().out
    for header, name in [
        ("ID", "id"),
        ("First Name", "first_name"),
        ("Company", "company"),
        ("Until", "until"),
    ]:
        assert out.count(f"header {header!r} is read as {name!r}") == 1
    assert "CSV, comma-separated, UTF-8" in out


def test_strict_headers_refuses_near_matches(tmp_path: Path, template: Path, capsys: Any) -> None:
    """With --strict-headers, ``First Name`` is a missing variable with a rename hint."""
    path = tmp_path / "c.csv"
    path.write_text("id,First Name,company,offer,until\nc1,Ann,Acme,5%,soon\n")
    argv = ["validate", str(path), "--template", str(template), "--strict-headers"]
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert "missing variable 'first_name'" in out and "the manifest has 'First Name'" in out


def test_missing_column_in_5000_rows_is_one_line_naming_5000_rows(
    tmp_path: Path, template: Path, capsys: Any
) -> None:
    """One column absent from a 5,000-row manifest prints one line for it, not 5,000."""
    path = tmp_path / "c.csv"
    rows = "".join(f"c{i},Ann,Acme,5%\n" for i in range(5000))
    path.write_text("id,first_name,company,offer\n" + rows)
    assert main(["validate", str(path), "--template", str(template)]) == 2
    captured = capsys.readouterr()
    problems = [line for line in captured.out.splitlines() if "until" in line]
    assert len(problems) == 1
    assert "affects 5000 rows (lines 2, 3, 4, 5, 6, …)" in problems[0]
    assert "1 problem(s)" in captured.err


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "comma.csv"
    path.write_text(CSV_TEXT)
    return path


def test_shared_strings_spilled_to_a_file_read_back_by_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the in-memory limit the string table lives in a temporary file; lookups still work."""
    from orchestrator.input import xlsx_stream

    monkeypatch.setattr(xlsx_stream, "IN_MEMORY_MAX_BYTES", 100)
    monkeypatch.setattr(xlsx_stream, "_FLUSH_BYTES", 64)
    strings = xlsx_stream.SharedStrings()
    words = [f"wörd {i}" for i in range(500)]
    for word in words:
        strings.append(word)
    strings.finish()
    try:
        assert strings._file is not None
        assert [strings[i] for i in (0, 1, 250, 499)] == [words[i] for i in (0, 1, 250, 499)]
        assert len(strings) == 500
    finally:
        strings.close()


def test_workbook_with_gaps_and_rich_text_is_read_by_column(tmp_path: Path) -> None:
    """A skipped cell reads as empty in its own column; rows keep their sheet numbers."""
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"], sheet["B1"], sheet["C1"] = "a", "b", "c"
    sheet["A3"], sheet["C3"] = "x", "z"
    sheet["B5"] = CellRichText(["bold ", TextBlock(InlineFont(b=True), "text")])
    path = tmp_path / "gaps.xlsx"
    workbook.save(path)
    rows = list(read_manifest(path))
    assert [(r.line, r.variables) for r in rows] == [
        (3, {"a": "x", "b": "", "c": "z"}),
        (5, {"a": "", "b": "bold text", "c": ""}),
    ]


@pytest.mark.parametrize("sample", ["manifest.xlsx", "manifest-semicolon.csv"])
def test_welcome_samples_make_the_same_row_jobs_as_the_csv(sample: str) -> None:
    """jobs/welcome's workbook and semicolon CSV: same ids, output names, variables, template."""
    from orchestrator.input.rows import TemplateCache, iter_row_jobs

    welcome = Path(__file__).parent.parent / "jobs" / "welcome"
    template = welcome / "welcome.pictai"

    def jobs(name: str) -> list[tuple[str, str, dict[str, str]]]:
        rows = iter_row_jobs(welcome / name, template, TemplateCache())
        return [(job.row_id, job.output_name, job.variables) for _, job in rows]

    expected = jobs("manifest.csv")
    assert len(expected) == 25
    assert jobs(sample) == expected


def test_utf16_without_bom_is_named_as_such(tmp_path: Path) -> None:
    """UTF-16 with no byte-order mark is not called Windows-1252: the hint names utf-16-le."""
    path = tmp_path / "c.csv"
    path.write_bytes("first_name,company\nAnn,Acme\n".encode("utf-16-le"))
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    assert "UTF-16 without a byte-order mark" in info.value.message
    assert info.value.hint is not None and "--encoding utf-16-le" in info.value.hint
    options = ManifestOptions(encoding="utf-16-le")
    assert variables(path, options) == [{"first_name": "Ann", "company": "Acme"}]


def test_validate_summary_says_how_the_file_was_read(
    tmp_path: Path, template: Path, capsys: Any
) -> None:
    """A TSV through the CLI: the last line names the file, 'TSV, tab-separated' and the rows."""
    path = tmp_path / "c.tsv"
    path.write_text("first_name\tcompany\toffer\tuntil\nAnn\tAcme\t5%\tsoon\n")
    assert main(["validate", str(path), "--template", str(template)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"{path} (TSV, tab-separated, UTF-8): 1 rows, no problems"


def test_first_sheet_without_rows_points_to_the_other_sheets(tmp_path: Path) -> None:
    """A notes sheet first: 'no rows', with the other sheets' names for --sheet."""
    path = write_workbook(tmp_path / "c.xlsx", {"Notes": [["read me"]], "Customers": [["id"]]}, {})
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    assert info.value.hint is not None and "--sheet ('Customers')" in info.value.hint
    assert str(info.value).startswith(f"{path}[Notes]:1: the manifest has a header but no rows")
