"""Reading manifests: streamed rows with exact line numbers, structural errors located."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from orchestrator.errors import ManifestError
from orchestrator.input import json_rows as manifest_json
from orchestrator.input.identity import row_identity, safe_output_name
from orchestrator.input.json_rows import JSON_CHUNK_BYTES
from orchestrator.input.manifest import manifest_digest, read_manifest, resolve_template_path
from orchestrator.input.row import ManifestOptions, ManifestRow

DATA = Path(__file__).parent / "data"
SHA = "ab" * 32


def rows(name: str) -> list[ManifestRow]:
    return list(read_manifest(DATA / name))


def failure(path: Path) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path))
    return info.value


def where(exc: ManifestError) -> tuple[str | None, int | None, str | None]:
    return exc.file, exc.line, exc.field


# --- CSV -------------------------------------------------------------------------------------


def test_csv_reserved_columns_are_split_from_variables() -> None:
    """``id``, ``output`` and ``flow`` land on the row; other columns become variables."""
    flows = rows("flows.csv")
    assert flows[0] == ManifestRow(
        line=2, id="c1", flow="template", variables={"first_name": "Ann", "company": "Acme"}
    )
    assert flows[3].flow is None  # empty reserved cell means "not given"


def test_csv_with_bom_and_crlf_reads_clean_names_and_values() -> None:
    """A UTF-8 BOM does not leak into the first column name; CRLF does not leak into values."""
    got = rows("bom-crlf.csv")
    assert [r.id for r in got] == ["c1", "c2"]
    assert got[1].variables == {"first_name": "Ben", "company": "Acme, Inc."}
    assert [r.line for r in got] == [2, 3]


def test_csv_line_is_the_physical_line_where_a_multiline_record_starts() -> None:
    """Quoted commas, newlines and doubled quotes are values; lines count physical lines."""
    got = rows("quoted-newlines.csv")
    assert [r.line for r in got] == [2, 4, 7]
    assert got[0].variables["company"] == "Acme,\nInc."
    assert got[1].variables["company"] == "Line one\r\nline two\r\nline three"
    assert got[2].variables["company"] == 'She said "hi"'


def test_csv_blank_lines_and_all_empty_rows_are_skipped_but_counted() -> None:
    """Blank lines and ``,,`` rows are not rows; the lines after keep their real numbers."""
    assert [r.line for r in rows("blank-lines.csv")] == [3, 6]


def test_empty_csv_is_a_structural_error() -> None:
    """An empty file has no header: file named, no line."""
    exc = failure(DATA / "empty.csv")
    assert where(exc) == (str(DATA / "empty.csv"), None, None)
    assert "empty" in exc.message


def test_header_only_csv_says_no_rows_at_the_header_line() -> None:
    """A header with nothing under it is an error on line 1."""
    exc = failure(DATA / "header-only.csv")
    assert where(exc) == (str(DATA / "header-only.csv"), 1, None)
    assert "no rows" in exc.message


def test_short_row_names_the_first_column_without_a_cell() -> None:
    """A row with fewer cells than the header is located on its line and first missing field."""
    exc = failure(DATA / "ragged-short.csv")
    assert where(exc) == (str(DATA / "ragged-short.csv"), 3, "company")
    assert "2 cells" in exc.message and "3 columns" in exc.message


def test_long_row_is_located_and_hints_at_quoting() -> None:
    """An unquoted comma makes an extra cell: the line is named and the hint says to quote."""
    exc = failure(DATA / "ragged-long.csv")
    assert where(exc) == (str(DATA / "ragged-long.csv"), 3, None)
    assert exc.hint is not None and "double quotes" in exc.hint


def test_non_utf8_csv_names_the_line_and_byte() -> None:
    """A Latin-1 byte is reported on its physical line with a re-save hint."""
    exc = failure(DATA / "not-utf8.csv")
    assert where(exc) == (str(DATA / "not-utf8.csv"), 3, None)
    assert "0xe9" in exc.message
    assert exc.hint is not None and "UTF-8" in exc.hint


def test_duplicate_header_names_the_column() -> None:
    """Two columns with one name are refused on the header line, naming the column."""
    exc = failure(DATA / "duplicate-header.csv")
    assert where(exc) == (str(DATA / "duplicate-header.csv"), 1, "first_name")
    assert "columns 2 and 4" in exc.message


def test_empty_header_cell_names_its_position() -> None:
    """A nameless column is refused as ``column 3``."""
    exc = failure(DATA / "empty-header-cell.csv")
    assert where(exc) == (str(DATA / "empty-header-cell.csv"), 1, "column 3")


def test_semicolon_file_forced_to_commas_names_the_delimiter_it_looks_like() -> None:
    """``--delimiter ,`` on a ';' file gives a one-column header: refused, naming semicolons."""
    with pytest.raises(ManifestError) as info:
        list(read_manifest(DATA / "semicolon.csv", ManifestOptions(delimiter=",")))
    assert where(info.value) == (str(DATA / "semicolon.csv"), 1, None)
    assert "semicolon-separated" in info.value.message


def test_unclosed_quote_is_reported_where_the_record_starts() -> None:
    """A quote that never closes swallows the file; the error names the line it opened on."""
    exc = failure(DATA / "unclosed-quote.csv")
    assert where(exc) == (str(DATA / "unclosed-quote.csv"), 3, None)
    assert "never closed" in exc.message


def test_stray_quote_inside_a_value_is_malformed_csv() -> None:
    """``"Acme" Inc`` is not valid quoting; the line is named."""
    exc = failure(DATA / "stray-quote.csv")
    assert where(exc) == (str(DATA / "stray-quote.csv"), 2, None)


def test_very_long_field_from_a_runaway_quote_stops_early(tmp_path: Path) -> None:
    """A quote left open over many lines hits the field limit instead of eating memory."""
    path = tmp_path / "runaway.csv"
    path.write_text('id,name\nc1,Ann\nc2,"Ben\n' + "x,y\n" * 40_000)
    exc = failure(path)
    assert (exc.line, exc.field) == (3, None)
    assert "never closed" in exc.message


def test_unknown_extension_is_refused_before_reading(tmp_path: Path) -> None:
    """Only .csv, .tsv, .xlsx, .json, .jsonl and .ndjson are read; others say what to use."""
    path = tmp_path / "rows.xls"
    path.write_bytes(b"PK")
    with pytest.raises(ManifestError, match=r"unsupported manifest format '\.xls'") as info:
        read_manifest(path)
    assert where(info.value) == (str(path), None, None)


def test_missing_manifest_is_reported_when_reading_starts() -> None:
    """A path that does not exist raises at once, not at the first row."""
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(DATA / "absent.csv")


# --- JSON and JSON Lines ---------------------------------------------------------------------


def test_json_array_rows_carry_the_line_of_their_opening_brace() -> None:
    """Numbers and booleans become text, null becomes empty; the line is where ``{`` is."""
    got = rows("rows.json")
    assert [r.line for r in got] == [2, 3]
    assert got[1].variables == {
        "first_name": "Ben",
        "company": "Beta",
        "age": "42",
        "vip": "true",
        "score": "2.5",
        "note": "",
    }


def test_json_object_instead_of_array_is_refused_with_a_hint() -> None:
    """A single object is not a manifest; the hint says wrap it or use .jsonl."""
    exc = failure(DATA / "not-array.json")
    assert where(exc) == (str(DATA / "not-array.json"), 1, None)
    assert exc.hint is not None and ".jsonl" in exc.hint


def test_json_array_item_that_is_not_an_object_is_located() -> None:
    """A string among the objects is reported as array item 2 on its line."""
    exc = failure(DATA / "array-of-strings.json")
    assert where(exc) == (str(DATA / "array-of-strings.json"), 3, None)
    assert "item 2" in exc.message


def test_nested_json_value_names_the_field() -> None:
    """An object as a value is refused, naming the key and the row's line."""
    exc = failure(DATA / "nested-value.json")
    assert where(exc) == (str(DATA / "nested-value.json"), 3, "company")


def test_broken_json_names_the_line_of_the_syntax_error() -> None:
    """A missing comma inside the second object is located on line 3."""
    exc = failure(DATA / "broken.json")
    assert where(exc) == (str(DATA / "broken.json"), 3, None)
    assert "Expecting ',' delimiter" in exc.message


def test_json_trailing_comma_is_refused() -> None:
    """``[{...},]`` is not JSON; the message says to drop the comma."""
    exc = failure(DATA / "trailing-comma.json")
    assert (exc.line, "trailing comma" in exc.message) == (3, True)


def test_empty_json_array_has_no_rows() -> None:
    """``[]`` is valid JSON but an empty manifest."""
    exc = failure(DATA / "empty-array.json")
    assert where(exc) == (str(DATA / "empty-array.json"), 1, None)
    assert "no rows" in exc.message


def test_duplicate_json_key_names_the_key() -> None:
    """A key given twice in one object would silently drop a value; it is refused."""
    exc = failure(DATA / "duplicate-key.json")
    assert where(exc) == (str(DATA / "duplicate-key.json"), 2, "first_name")


def test_json_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 in a .json manifest are reported on their line."""
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[\n {"id": "c1", "name": "Ann"},\n {"id": "c2", "name": "Ren\xe9e"}\n]\n')
    exc = failure(path)
    assert (exc.line, "0xe9" in exc.message) == (3, True)


def test_json_lines_skip_blank_lines_and_keep_line_numbers() -> None:
    """Each JSONL row carries its own line; blank lines and CRLF are fine."""
    assert [(r.line, r.id) for r in rows("rows.jsonl")] == [(1, "c1"), (3, "c2")]


def test_json_lines_broken_line_is_located() -> None:
    """A line that is not complete JSON is reported on that line."""
    exc = failure(DATA / "broken-line.jsonl")
    assert where(exc) == (str(DATA / "broken-line.jsonl"), 3, None)


def test_json_lines_line_that_is_not_an_object_is_refused() -> None:
    """An array on a JSONL line is not a row."""
    exc = failure(DATA / "not-object-line.jsonl")
    assert where(exc) == (str(DATA / "not-object-line.jsonl"), 2, None)
    assert "array" in exc.message


def test_ndjson_extension_reads_as_json_lines(tmp_path: Path) -> None:
    """``.ndjson`` is the same format as ``.jsonl``."""
    path = tmp_path / "rows.ndjson"
    path.write_text('{"id": "a", "x": 1}\n')
    assert [r.variables for r in read_manifest(path)] == [{"x": "1"}]


# --- laziness --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["broken-line.jsonl", "ragged-short.csv", "broken.json"])
def test_rows_are_yielded_before_a_later_broken_line_is_reached(name: str) -> None:
    """Reading is lazy: the first row arrives before the structural error further down."""
    stream = read_manifest(DATA / name)
    assert next(stream).id == "c1"
    with pytest.raises(ManifestError):
        list(stream)


def test_json_array_streams_across_chunks(tmp_path: Path) -> None:
    """An array bigger than one read chunk yields its first row before the rest is read."""
    item = {"id": "c0", "note": "x" * 200}
    count = 3 * JSON_CHUNK_BYTES // 200
    path = tmp_path / "big.json"
    path.write_text(
        "[\n" + ",\n".join(json.dumps(item | {"id": f"c{i}"}) for i in range(count)) + "\n]\n"
    )
    with path.open("a") as f:
        f.write("garbage")
    stream = read_manifest(path)
    first = next(stream)
    assert (first.id, first.line) == ("c0", 2)
    with pytest.raises(ManifestError, match="after the closing") as info:
        for _ in stream:
            pass
    assert info.value.line == count + 3


@pytest.mark.parametrize("chunk_bytes", [1, 3, 7, 64])
def test_json_array_lines_do_not_depend_on_chunk_size(
    chunk_bytes: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Rows, error lines and byte columns are the same when objects straddle read chunks."""
    monkeypatch.setattr(manifest_json, "JSON_CHUNK_BYTES", chunk_bytes)
    assert [(r.line, r.id) for r in rows("rows.json")] == [(2, "c1"), (3, "c2")]
    assert failure(DATA / "broken.json").line == 3
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'[\n {"id": "c1", "n": "Zo\xc3\xab"},\n\n {"id": "c2", "n": "Ren\xe9e"}\n]\n')
    exc = failure(bad)
    assert (exc.line, "column 24" in exc.message) == (4, True)


# --- paths, identity, output names -----------------------------------------------------------


def test_template_path_resolves_against_the_manifest_folder(tmp_path: Path) -> None:
    """A relative ``template`` is taken from the manifest's folder; absolute stays; none is None."""
    manifest = tmp_path / "jobs" / "m.csv"
    assert resolve_template_path(ManifestRow(line=2, template="t.pictai"), manifest) == (
        tmp_path / "jobs" / "t.pictai"
    )
    assert resolve_template_path(ManifestRow(line=2, template="/x/t.pictai"), manifest) == Path(
        "/x/t.pictai"
    )
    assert resolve_template_path(ManifestRow(line=2), manifest) is None


def test_identity_is_the_id_when_given() -> None:
    """A safe ``id`` is the identity as-is."""
    assert row_identity(ManifestRow(line=2, id="cust-0001"), SHA) == "cust-0001"


def test_generated_identity_ignores_order_whitespace_and_normal_form() -> None:
    """Same template and variables give the same id whatever the line, key order or NFC form."""
    a = ManifestRow(line=2, variables={"name": "Zoe\u0308", "co": "Acme"})
    b = ManifestRow(line=90, variables={"co": " Acme ", "name": "Zoë"})
    assert row_identity(a, SHA) == row_identity(b, SHA)
    assert row_identity(a, SHA).startswith("r-") and len(row_identity(a, SHA)) == 18


def test_generated_identity_changes_with_the_template_or_a_value() -> None:
    """Another template hash or another value is another video, hence another identity."""
    row = ManifestRow(line=2, variables={"name": "Ann"})
    assert row_identity(row, SHA) != row_identity(row, "cd" * 32)
    assert row_identity(row, SHA) != row_identity(
        ManifestRow(line=2, variables={"name": "Anne"}), SHA
    )


def test_unsafe_id_raises_on_the_id_field(tmp_path: Path) -> None:
    """An id with spaces cannot name files or ledger entries."""
    with pytest.raises(ManifestError, match="must start with a letter or digit") as info:
        row_identity(ManifestRow(line=7, id="has space"), SHA, manifest_path=tmp_path / "m.csv")
    assert where(info.value) == (str(tmp_path / "m.csv"), 7, "id")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (None, "cust-1.mp4"),
        ("anna", "anna.mp4"),
        ("anna.MP4", "anna.MP4"),
        ("anna.mov", "anna.mov.mp4"),
        ("Zoe\u0308 video", "Zoë video.mp4"),
    ],
)
def test_safe_output_name_appends_mp4_and_falls_back_to_identity(
    output: str | None, expected: str
) -> None:
    """The output value (NFC) or the identity, with ``.mp4`` added when missing."""
    assert safe_output_name(ManifestRow(line=2, output=output), "cust-1") == expected


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("../escape", "climbs out"),
        ("/etc/passwd", "absolute path"),
        ("C:\\videos\\x", "absolute path"),
        ("sub/dir", "path separator"),
        ("tab\there", r"control character U\+0009"),
        ("what?", "Windows does not allow"),
        ("con", "reserved device name"),
        ("LPT1.txt", "reserved device name"),
        (".hidden", "starts with '.'"),
        ("n" * 147, "the limit is 150"),
    ],
)
def test_unsafe_output_names_are_refused(output: str, message: str) -> None:
    """Anything but a plain file name inside the output folder raises on the ``output`` field."""
    with pytest.raises(ManifestError, match=message) as info:
        safe_output_name(ManifestRow(line=4, output=output), "cust-1")
    assert (info.value.line, info.value.field) == (4, "output")


def test_manifest_digest_is_the_sha256_of_the_bytes() -> None:
    """The digest is computed over the raw file, BOM and CRLF included."""
    raw = (DATA / "bom-crlf.csv").read_bytes()
    assert manifest_digest(DATA / "bom-crlf.csv") == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("name", ["bom-crlf.csv", "rows.jsonl", "rows.json", "semicolon.csv"])
def test_reading_every_row_hashes_the_manifest_in_the_same_pass(name: str) -> None:
    """The run record's digest comes from validation's own read of the file, trailing bytes
    after the last row included."""
    manifest = read_manifest(DATA / name)
    assert manifest.sha256 is None
    rows = list(manifest)
    assert rows and manifest.sha256 == hashlib.sha256((DATA / name).read_bytes()).hexdigest()
