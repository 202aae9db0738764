"""Manifests made to hurt: every reader stops at the row cap, a line, an item or a workbook part
past its bound is refused having read no further, a DTD is refused before any parser sees it,
and a damaged workbook is one located problem. Also: what we write for spreadsheets is inert.

The numbers are in docs/manifest.md#limits; the CLI's side is tests/e2e/test_bad_input.py."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from orchestrator.config import DEFAULT_MAX_ROWS
from orchestrator.errors import ManifestError, UserError
from orchestrator.input import table, xlsx_guard
from orchestrator.input.cell_format import cell_text
from orchestrator.input.json_rows import MAX_JSON_ROW_CHARS
from orchestrator.input.manifest import read_manifest
from orchestrator.input.row import MAX_LINE_BYTES, ManifestOptions, with_row_cap
from orchestrator.input.validate import validate_manifest
from orchestrator.report.results_csv import neutralise, plain, write_csv

SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"


def failure(path: Path, max_rows: int | None = None) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path, ManifestOptions(max_rows=max_rows)))
    return info.value


def workbook(path: Path, rows: list[list[Any]]) -> Path:
    """A real .xlsx, as openpyxl writes it (shared strings, styles)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "People"
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def shared_workbook(folder: Path, rows: int = 2) -> Path:
    """A workbook as Excel lays it out: shared strings, XML declarations, ``id,name,city``."""
    from benchmarks.harness import write_xlsx_batch

    return write_xlsx_batch(folder, rows)[0]


def rewrite(path: Path, changes: dict[str, Callable[[bytes], bytes]]) -> Path:
    """The workbook at ``path`` with some parts changed (each function gets the part's bytes)."""
    out = path.with_name("changed-" + path.name)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item.filename, changes.get(item.filename, lambda d: d)(data))
    return out


def declare_size(path: Path, member: str, size: int) -> None:
    """Make the zip's central directory claim that ``member`` unzips to ``size`` bytes: a zip
    bomb's header, without the bomb."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + name_length] == member.encode():
            data[at + 24 : at + 28] = size.to_bytes(4, "little")
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{member} is not in {path}")


def with_dtd(data: bytes) -> bytes:
    """The part with an entity bomb declared after its XML declaration (and used in a sheet)."""
    head, sep, rest = data.partition(b"?>")
    if not sep:
        head, rest = b"", data
    bomb = b'<!DOCTYPE x [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    return head + sep + bomb + rest.replace(b"<sheetData>", b"<sheetData>&b;", 1)


# --- the row cap -------------------------------------------------------------------------------

BODY = ["id,name", "c1,Ann", "c2,Ben", "c3,Cy"]


def _text_manifests(tmp_path: Path) -> dict[str, Path]:
    rows = [{"id": f"c{i}", "name": n} for i, n in enumerate(["Ann", "Ben", "Cy"], start=1)]
    files = {
        "csv": ("m.csv", "\n".join(BODY) + "\n"),
        "tsv": ("m.tsv", "\n".join(line.replace(",", "\t") for line in BODY) + "\n"),
        "json": ("m.json", "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n"),
        "jsonl": ("m.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n"),
    }
    paths = {}
    for kind, (name, text) in files.items():
        paths[kind] = tmp_path / name
        paths[kind].write_text(text)
    paths["xlsx"] = workbook(tmp_path / "m.xlsx", [line.split(",") for line in BODY])
    return paths


@pytest.mark.parametrize("kind", ["csv", "tsv", "json", "jsonl", "xlsx"])
def test_every_reader_stops_at_the_row_past_the_cap(kind: str, tmp_path: Path) -> None:
    """Three rows under a cap of 2: refused at the third row's line, naming the file, the cap and
    how to raise it. Under a cap of 3 they all read."""
    path = _text_manifests(tmp_path)[kind]
    exc = failure(path, max_rows=2)
    line = {"csv": 4, "tsv": 4, "json": 4, "jsonl": 3, "xlsx": 4}[kind]
    assert (exc.file or "").startswith(str(path)) and exc.line == line
    assert "holds more than 2 rows" in exc.message and "this is row 3" in exc.message
    assert exc.hint is not None and "--max-rows N, or [input] max_rows" in exc.hint
    assert len(list(read_manifest(path, ManifestOptions(max_rows=3)))) == 3


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("m.csv", b"id\nc1\nc2\nc3\n\xff\xfe broken\n"),
        ("m.jsonl", b'{"id": "c1"}\n{"id": "c2"}\n{"id": "c3"}\n{broken\n'),
        ("m.json", b'[{"id": "c1"}, {"id": "c2"}, {"id": "c3"}, {broken'),
    ],
)
def test_the_cap_stops_the_reading_before_what_follows(
    name: str, body: bytes, tmp_path: Path
) -> None:
    """What lies past the cap is never parsed: the damage after the row past the cap goes
    unseen, the cap is the problem."""
    path = tmp_path / name
    path.write_bytes(body)
    assert "holds more than 2 rows" in failure(path, max_rows=2).message


def test_a_workbook_stops_at_the_cap_before_its_damaged_end(tmp_path: Path) -> None:
    """A workbook of 2,000 rows whose XML breaks after them, capped at 200: the cap is the
    problem, at row 202 (the 201st under the header), so the damage was never read."""
    path = workbook(tmp_path / "m.xlsx", [["id"], *[[f"c{i}"] for i in range(2000)]])
    broken = rewrite(path, {SHEET: lambda d: d.replace(b"</sheetData>", b"<row><c></sheetData>")})
    assert "cannot read the workbook" in failure(broken).message  # the damage is real
    exc = failure(broken, max_rows=200)
    assert "holds more than 200 rows" in exc.message and exc.line == 202


def test_ragged_rows_count_towards_the_cap_and_only_a_thousand_wait_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate lists ragged rows without stopping; a run of them keeps at most
    ``MAX_PENDING_RAGGED`` problems in memory and counts the rest; the cap counts them all."""
    monkeypatch.setattr(table, "MAX_PENDING_RAGGED", 5)
    path = tmp_path / "m.csv"
    path.write_text("id,name\n" + "only-one-cell\n" * 20)
    report = validate_manifest(path, None)
    assert (report.rows, report.problem_count, len(report.problems)) == (20, 20, 5)
    capped = validate_manifest(path, None, options=ManifestOptions(max_rows=12))
    assert capped.fatal and "holds more than 12 rows" in capped.problems[-1].message


def test_the_cap_comes_from_the_flag_then_the_run_then_the_config(tmp_path: Path) -> None:
    """``--max-rows`` wins; a cap recorded with the run is kept on resume; else ``[input]
    max_rows`` when it differs from the default, which stays unrecorded."""
    config = tmp_path / "c.toml"
    config.write_text("[input]\nmax_rows = 5000\n")
    default = tmp_path / "d.toml"
    default.write_text(f"[input]\nmax_rows = {DEFAULT_MAX_ROWS}\n")
    recorded = ManifestOptions(max_rows=7)
    assert with_row_cap(ManifestOptions(), 9, config).max_rows == 9
    assert with_row_cap(recorded, None, config).max_rows == 7
    assert with_row_cap(ManifestOptions(), None, config).max_rows == 5000
    assert with_row_cap(ManifestOptions(), None, default).recorded() == {}
    assert with_row_cap(ManifestOptions(), None, None).row_cap == DEFAULT_MAX_ROWS
    assert ManifestOptions(max_rows=5000).recorded() == {"max_rows": 5000}


def test_a_cap_below_one_row_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id\nc1\n")
    with pytest.raises(UserError, match="--max-rows 0: the cap must be at least 1 row"):
        read_manifest(path, ManifestOptions(max_rows=0))


# --- lines and items ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoding"), [("m.csv", "utf-8"), ("m.jsonl", "utf-8"), ("m.csv", "utf-16")]
)
def test_a_line_past_the_bound_is_refused_with_its_number(
    name: str, encoding: str, tmp_path: Path
) -> None:
    """A line longer than ``MAX_LINE_BYTES`` (a file that is not a manifest) is refused at its
    number, read no further than the bound; one just within it reads."""
    path = tmp_path / name
    long_value = "x" * (MAX_LINE_BYTES + 10)
    first = "id" if name.endswith(".csv") else '{"id": "a"}'
    path.write_bytes(f"{first}\n{long_value}\n".encode(encoding))
    exc = failure(path)
    assert exc.line == 2 and f"longer than {MAX_LINE_BYTES:,}" in exc.message


def test_a_line_just_within_the_bound_reads(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    row = json.dumps({"id": "b", "note": "y" * (MAX_LINE_BYTES - 30)})
    path.write_text(f'{{"id": "a"}}\n{row}\n')
    assert len(row) < MAX_LINE_BYTES and len(list(read_manifest(path))) == 2


def test_a_json_array_item_past_the_bound_is_refused_naming_it(tmp_path: Path) -> None:
    """An item longer than ``MAX_JSON_ROW_CHARS`` is refused as such, at its line: not as
    broken JSON, and whether or not it would close."""
    for closed in (True, False):
        path = tmp_path / f"m-{closed}.json"
        big = json.dumps({"id": "b", "note": "z" * MAX_JSON_ROW_CHARS})
        path.write_text('[{"id": "a"},\n' + (big + "]" if closed else big[:-2]))
        exc = failure(path)
        assert exc.line == 2
        assert f"array item 2 is longer than {MAX_JSON_ROW_CHARS:,}" in exc.message


# --- workbooks -----------------------------------------------------------------------------------


def test_a_sheet_declaring_gigabytes_is_refused_before_a_byte_is_unzipped(tmp_path: Path) -> None:
    """A zip bomb's sheet (declared 2.6 GB) is refused from the zip's directory alone, naming
    the part, its size, the budget of the row cap and how to raise it."""
    path = workbook(tmp_path / "m.xlsx", [["id"], ["c1"]])
    declare_size(path, SHEET, 2_600_000_000)
    exc = failure(path)
    assert exc.message.startswith("cannot read the workbook safely: xl/worksheets/sheet1.xml")
    assert "2,600,000,000 bytes, past the 1,024,000,000 bytes allowed for 1,000,000 rows" in (
        exc.message
    )
    assert exc.hint is not None and "--max-rows N" in exc.hint
    assert "1,024,000 bytes allowed for 1,000 rows" in failure(path, max_rows=1000).message


@pytest.mark.parametrize("part", [STRINGS, "xl/styles.xml", "xl/workbook.xml"])
def test_every_part_is_read_within_its_budget(part: str, tmp_path: Path) -> None:
    """The shared strings follow the row cap like the sheet; a part openpyxl reads whole
    (styles, the workbook) may hold at most ``MAX_PART_BYTES``."""
    path = shared_workbook(tmp_path)
    declare_size(path, part, 2_000_000_000)
    exc = failure(path)
    assert f"safely: {part} unzips to 2,000,000,000 bytes" in exc.message


def test_a_zip_entry_holding_more_than_it_declares_is_read_no_further(tmp_path: Path) -> None:
    """A zip that under-declares its sheet is unzipped only as far as it declared: the rest is
    never read, and the checksum names the lie."""
    path = workbook(tmp_path / "m.xlsx", [["id"], *[[f"c{i}"] for i in range(500)]])
    with zipfile.ZipFile(path) as archive:
        size = archive.getinfo(SHEET).file_size
    declare_size(path, SHEET, size // 2)
    exc = failure(path)
    assert "cannot read the workbook" in exc.message and "CRC" in exc.message


def test_a_zip_of_countless_parts_is_refused_before_its_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zipfile makes an object of every entry: a directory past ``MAX_DIRECTORY_BYTES`` (here
    200 bytes) is refused from the zip's end record alone."""
    path = shared_workbook(tmp_path)
    monkeypatch.setattr(xlsx_guard, "MAX_DIRECTORY_BYTES", 200)
    exc = failure(path)
    assert exc.message.startswith("cannot read the workbook safely: its zip's directory")
    assert "past the 200 a workbook's may" in exc.message


def test_the_directory_size_of_a_64_bit_zip_is_the_one_checked(tmp_path: Path) -> None:
    """A zip's 64-bit end record, which zipfile believes over the 32-bit one, is read too: one
    claiming a 5 GB directory is refused before zipfile reads it."""
    path = shared_workbook(tmp_path)
    data = path.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    entries = int.from_bytes(data[end + 10 : end + 12], "little")
    offset = int.from_bytes(data[end + 16 : end + 20], "little")
    record = (
        b"PK\x06\x06"
        + (44).to_bytes(8, "little")
        + (45).to_bytes(2, "little") * 2
        + bytes(8)
        + entries.to_bytes(8, "little") * 2
        + (5_000_000_000).to_bytes(8, "little")
        + offset.to_bytes(8, "little")
    )
    locator = b"PK\x06\x07" + bytes(4) + end.to_bytes(8, "little") + (1).to_bytes(4, "little")
    path.write_bytes(data[:end] + record + locator + data[end:])
    assert "directory of parts takes 5,000,000,000 bytes" in failure(path).message


def test_an_encrypted_part_is_refused_without_a_password_prompt(tmp_path: Path) -> None:
    """A zip entry flagged encrypted would make zipfile ask for a password: refused by name."""
    path = shared_workbook(tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")  # the central directory's first entry
    data[at + 8] |= 0x1
    path.write_bytes(bytes(data))
    exc = failure(path)
    assert exc.message.startswith("cannot read the workbook: ") and "is encrypted" in exc.message


def test_a_part_streaming_past_its_budget_is_stopped_while_counted() -> None:
    """Counting while streaming, whatever the zip declared: past the budget, or past
    ``MAX_ELEMENT_BYTES`` without an element ending, the part is refused."""
    prolog = b'<?xml version="1.0"?><sst>'
    part = xlsx_guard.CountedPart(io.BytesIO(prolog + b"<si/>" * 400), "x.xml", 1000, 1)
    with pytest.raises(xlsx_guard.UnreadableWorkbook, match="past the 1,000 bytes allowed"):
        while part.read(100):
            part.element_ended()
    runaway = io.BytesIO(prolog + b"<si><t>" + b"w" * (xlsx_guard.MAX_ELEMENT_BYTES + 10))
    part = xlsx_guard.CountedPart(runaway, "x.xml", 10**9, 1)
    with pytest.raises(xlsx_guard.UnreadableWorkbook, match="without ending a row or a string"):
        while part.read(1 << 20):
            pass


def test_one_row_past_the_element_bound_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser holds a row whole until it ends: a row of more XML than the bound (here 16
    KiB) is refused, naming the rows read before it."""
    monkeypatch.setattr(xlsx_guard, "MAX_ELEMENT_BYTES", 16 * 1024)
    path = workbook(tmp_path / "m.xlsx", [["id", "note"], ["c1", "short"], ["c2", "n" * 30_000]])
    exc = failure(path)
    assert "sheet1.xml runs more than 16,384 bytes after its element 2" in exc.message


@pytest.mark.parametrize("part", [SHEET, STRINGS, "xl/workbook.xml", "xl/styles.xml"])
def test_a_dtd_in_any_part_is_refused_naming_the_part(part: str, tmp_path: Path) -> None:
    """Entity bombs and external entities need a DTD, which no workbook holds (ECMA-376 Part 2,
    M1.18): a part declaring one is refused before it is parsed, whatever parser openpyxl
    picked."""
    path = shared_workbook(tmp_path)
    exc = failure(rewrite(path, {part: with_dtd}))
    assert exc.message == (
        f"cannot read the workbook safely: {part} declares XML entities, which a spreadsheet "
        "never holds: it is how entity-expansion bombs and reads of other files are built"
    )


@pytest.mark.parametrize(
    ("head", "refused"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>', True),
        (b'<?xml version="1.0"?>\n<!-- a note -->\n<?pi x?>\n<!DOCTYPE x><x/>', True),
        (b'\xef\xbb\xbf<!DOCTYPE x [<!ENTITY e "e">]><x/>', True),
        ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><x/>'.encode("utf-16"), True),
        ("<!DOCTYPE x><x/>".encode("utf-16-be"), True),
        ("\n <!DOCTYPE x><x/>".encode("utf-16-le"), True),  # no mark: a NUL second, as expat reads
        (b'<?xml version="1.0" encoding="koi8-r"?><!DOCTYPE x><x/>', True),
        (b'<?xml version="1.0"?><!-- <!DOCTYPE x> in a comment --><x/>', False),
        (b'<?xml version="1.0"?><x><![CDATA[<!DOCTYPE x>]]></x>', False),
        (b"not xml at all", False),
    ],
)
def test_a_dtd_is_found_in_any_prolog_and_only_there(head: bytes, refused: bool) -> None:
    """Comments, processing instructions, byte-order marks and UTF-16 hide no DTD; a DTD-like
    text after the first element is content, not a DTD."""
    if refused:
        with pytest.raises(xlsx_guard.UnreadableWorkbook, match="declares"):
            xlsx_guard.check_prolog("p.xml", head, final=True)
    else:
        assert xlsx_guard.check_prolog("p.xml", head, final=True)


def test_a_dtd_split_across_reads_is_still_found() -> None:
    """The prolog is read on until its first element: a DTD after a long comment is found."""
    head = b'<?xml version="1.0"?><!--' + b"c" * 20_000 + b"--><!DOCTYPE x><x/>"
    with pytest.raises(xlsx_guard.UnreadableWorkbook, match="document type"):
        xlsx_guard.CountedPart(io.BytesIO(head), "x.xml", 10**6, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            b'<c r="B2" t="s"><v>99999</v></c>',
            "it names shared string 99999; the workbook holds 1004",
        ),
        (b'<c r="B2" t="b"><v>yes</v></c>', "invalid literal for int()"),
        (b'<c r="B2" s="77"><v>1</v></c>', "has style 77, which the workbook's styles do not"),
    ],
)
def test_a_cell_openpyxl_cannot_read_is_one_problem_at_its_row(
    change: bytes, message: str, tmp_path: Path
) -> None:
    path = shared_workbook(tmp_path)

    def damage(data: bytes) -> bytes:
        start = data.index(b'<c r="B2"')
        return data[:start] + change + data[data.index(b"</c>", start) + 4 :]

    changed = rewrite(path, {SHEET: damage})
    exc = failure(changed)
    assert (exc.file, exc.line) == (f"{changed}[Customers]", 2)
    assert message in exc.message


@pytest.mark.parametrize("number", [float("inf"), -1e308, 10**400])
def test_numbers_no_format_can_show_fall_back_to_general(number: float) -> None:
    """An infinite number, a double at its limit or an integer past one: shown, never raised."""
    for fmt in ("0.00%", "#,##0.00", "0.00E+00", "0"):
        assert cell_text(number, fmt)


def test_a_format_asks_for_at_most_thirty_decimals() -> None:
    """Excel's limit: a hostile format of a million zeros cannot make each cell that long."""
    assert cell_text(1.5, "0." + "0" * 1_000_000) == "1." + "5" + "0" * 29


# --- what we write -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1", "'  =1"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("-", "'-"),
        ("-5", "-5"),
        ("+3.5", "+3.5"),
        ("-1.5e-3", "-1.5e-3"),
        ("Ann", "Ann"),
        ("5-3", "5-3"),
        ("", ""),
    ],
)
def test_formula_looking_cells_are_neutralised_and_numbers_kept(cell: str, written: str) -> None:
    """OWASP's leading quote on cells a spreadsheet would run; a plain number stays a number;
    ``plain`` (what ``adopt`` reads back) gives the cell as it was."""
    assert neutralise(cell) == written
    assert plain(written) == cell


def test_results_csv_neutralises_manifest_names_values_and_api_messages(tmp_path: Path) -> None:
    """Header cells (variable names from the manifest) and every line's cells are inert."""
    path = tmp_path / "results.csv"
    write_csv(path, ["id", "=name"], [["c1", "=cmd()"], ["c2", "-7"]])
    with path.open(newline="") as f:
        assert list(csv.reader(f)) == [["id", "'=name"], ["c1", "'=cmd()"], ["c2", "-7"]]
