"""Read a manifest row by row, never holding more than one row in memory.

Formats, chosen by extension: ``.csv`` / ``.tsv`` / ``.txt`` (a header row; the delimiter ``,``
``;`` tab or ``|`` sniffed once from the header line, or forced with ``--delimiter``; UTF-8 with or
without a BOM or UTF-16 with a BOM, else ``--encoding``; CRLF or LF; RFC 4180 quoting so values
may hold delimiters, quotes and newlines), ``.xlsx`` / ``.xlsm`` (an Excel workbook, see
:mod:`orchestrator.manifest_xlsx`), ``.json`` (one array of objects, parsed incrementally) and
``.jsonl`` / ``.ndjson`` (one object per line).

Columns: ``id``, ``template``, ``output`` and ``flow`` are reserved (in CSV and workbooks a header
such as ``ID`` matches one unless ``--strict-headers``, see :mod:`orchestrator.headers`); every
other column is a template variable. Reserved values are stripped and empty means "not given".
JSON numbers and booleans become text (``3``, ``2.5``, ``true``), ``null`` becomes ``""``.

Line numbers: CSV rows carry the physical line where the record starts (a quoted value may span
lines); JSON Lines rows their line; JSON array rows the line of their opening ``{``. Blank lines,
and CSV rows whose cells are all empty (spreadsheets export those), are skipped.

Two kinds of problems:

- *Structural* ones stop the reading with a :class:`ManifestError` (file, line, field, hint): an
  unknown extension, a missing file, an empty file or no rows, a bad or duplicate header, a ragged
  CSV row, broken quoting, bytes that are not UTF-8, JSON that is not an array of objects, a broken
  JSON Lines line, a duplicate key or a nested value in a JSON row.
- *Row* problems (bad id, unsafe output name, missing variables...) are found by
  ``orchestrator.validate.check_row``, which returns them all instead of raising.

Identity and output names: see :mod:`orchestrator.identity`.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from itertools import compress
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.errors import ManifestError, UserError
from orchestrator.headers import match_names
from orchestrator.manifest_json import JsonArray, jsonl_rows
from orchestrator.manifest_row import (
    DEFAULT_OPTIONS,
    RESERVED_COLUMNS,
    ManifestOptions,
    ManifestRow,
    decoded_lines,
    likely_encoding,
)

_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t", "|": "|"}
"""What ``--delimiter`` accepts, and the character each means."""
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_BYTES = 64 * 1024
_QUOTE_HINT = (
    "a value holding a comma, quote or line break must be in double quotes, "
    'with inner quotes doubled ("")'
)


class Manifest:
    """An opened manifest: its rows, pulled once, and how it is being read.

    ``label`` names the file in messages (``FILE[Sheet]`` for a workbook); ``columns`` maps a
    header name to its spreadsheet column letter (workbooks only); ``description`` says how the
    file was read (``CSV, ';'-separated, UTF-16``) once its header has been read."""

    def __init__(self, path: Path, fmt: str, options: ManifestOptions) -> None:
        self.path = path
        self.label = str(path)
        self.columns: dict[str, str] = {}
        self.renamed: dict[str, str] = {}
        """Friendly headers read as reserved columns (``{'ID': 'id'}``)."""
        self.header: list[str] = []
        """The header's names as written in the file."""
        self.skip_ragged = False
        """``validate`` sets it: a row with the wrong number of cells is kept in ``ragged`` and
        skipped, so every such row is listed; otherwise the first one stops the reading."""
        self.ragged: list[ManifestError] = []
        self.description = {"json": "JSON array", "jsonl": "JSON Lines"}.get(fmt, fmt.upper())
        self.sha256: str | None = None
        """The sha256 (hex) of the file's bytes, set once every row has been read: the digest
        comes from the same pass as the rows (a workbook, read out of order, is hashed after)."""
        self.rows: Iterator[ManifestRow] = self._rows(fmt, options)

    def __iter__(self) -> Iterator[ManifestRow]:
        return self.rows

    def __next__(self) -> ManifestRow:
        return next(self.rows)

    def _rows(self, fmt: str, options: ManifestOptions) -> Iterator[ManifestRow]:
        path = self.path
        if fmt == "xlsx":
            from orchestrator.manifest_xlsx import xlsx_rows

            yield from xlsx_rows(self, options)
            self.sha256 = manifest_digest(path)
            return
        try:
            hashing = _HashingReader(path.open("rb", buffering=0))
            with io.BufferedReader(hashing) as f:
                if fmt == "csv":
                    yield from _csv_rows(self, f, options)
                elif fmt == "jsonl":
                    yield from jsonl_rows(path, f)
                else:
                    yield from JsonArray(path, f).rows()
                while f.read(_SNIFF_BYTES):  # whatever follows the last row counts too
                    pass
                self.sha256 = hashing.sha256.hexdigest()
        except OSError as exc:
            raise ManifestError(f"cannot read the manifest: {exc.strerror}", file=path) from exc


def read_manifest(path: Path, options: ManifestOptions = DEFAULT_OPTIONS) -> Manifest:
    """Open a ``.csv``/``.tsv``, ``.xlsx``, ``.json``, ``.jsonl`` or ``.ndjson`` manifest; iterate
    the result for its rows.

    The format, the options and the file's existence are checked now; everything else as rows
    are pulled. Structural problems raise :class:`ManifestError`.
    """
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ManifestError(
            f"unsupported manifest format {path.suffix or '(no extension)'!r}",
            file=path,
            hint="use .csv, .tsv, .xlsx, .json (an array of objects), .jsonl or .ndjson"
            + (
                "; open the file in Excel, LibreOffice or Google Sheets and save it as .xlsx"
                if path.suffix.lower() in (".xls", ".ods", ".numbers")
                else ""
            ),
        )
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "manifest file not found"
        raise ManifestError(what, file=path, hint="check the path")
    check_options(options)
    return Manifest(path, fmt, options)


def check_options(options: ManifestOptions) -> None:
    """Refuse a ``--delimiter`` or ``--encoding`` we cannot use, before anything is read."""
    if options.delimiter is not None and options.delimiter not in DELIMITERS:
        raise UserError(
            f"--delimiter {options.delimiter!r} is not one of: , ; tab |"
            " (quote ';' and '|' in the shell)"
        )
    if options.encoding is not None:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            raise UserError(
                f"--encoding {options.encoding!r} is not an encoding Python knows "
                "(e.g. cp1252, latin-1, utf-16, mac-roman)"
            ) from None


def resolve_template_path(row: ManifestRow, manifest_path: Path) -> Path | None:
    """The row's own template file, relative paths taken from the manifest's folder; else None."""
    if row.template is None:
        return None
    candidate = Path(row.template).expanduser()
    return candidate if candidate.is_absolute() else manifest_path.parent / candidate


class _HashingReader(io.RawIOBase):
    """A raw file whose bytes are hashed as they are read (under a ``BufferedReader``)."""

    def __init__(self, raw: io.FileIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer) or 0
        if n:
            self.sha256.update(memoryview(buffer)[:n])
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def manifest_digest(path: Path) -> str:
    """The sha256 (hex) of the manifest's bytes, read in chunks."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest: {exc.strerror}", file=path) from exc


# --- CSV -----------------------------------------------------------------------------------------


def _csv_rows(manifest: Manifest, f: BinaryIO, options: ManifestOptions) -> Iterator[ManifestRow]:
    path = manifest.path
    lines, encoding = _text_lines(path, f, options.encoding)
    head = f.peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if isinstance(f, io.BufferedReader) else b""
    delimiter = _delimiter(path, head, encoding, options.delimiter)
    manifest.description = (
        f"{'TSV' if delimiter == chr(9) else 'CSV'}, {_DELIMITER_NAMES[delimiter]}-separated, "
        f"{encoding}"
    )
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    records = _csv_records(path, reader)
    header_line, cells = next(records, (0, []))
    header = [cell.strip() for cell in cells]
    if not header:
        raise ManifestError("the manifest is empty", file=path, hint="add a header row and rows")
    check_header(path, header_line, header, delimiter)
    yield from header_rows(manifest, header_line, header, records, options.strict_headers)


def header_rows(
    manifest: Manifest,
    header_line: int,
    header: list[str],
    records: Iterable[tuple[int, list[str]]],
    strict: bool,
) -> Iterator[ManifestRow]:
    """Rows from ``(line, cells)`` records under a checked header (CSV and workbook readers).

    Unless ``strict``, a header such as ``ID`` or ``Output`` is read as the reserved column it
    matches (see :mod:`orchestrator.headers`); ``manifest.renamed`` records it."""
    path = manifest.label
    manifest.header = list(header)
    if not strict:
        for column, name in match_names(RESERVED_COLUMNS, header).items():
            header = [name if cell == column else cell for cell in header]
            manifest.renamed[column] = name
            if column in manifest.columns:
                manifest.columns[name] = manifest.columns[column]
    width = len(header)
    where = {name: i for i, name in enumerate(header)}
    i_id, i_tpl, i_out, i_flow = (where.get(name) for name in RESERVED_COLUMNS)
    is_variable = [name not in RESERVED_COLUMNS for name in header]
    var_names = list(compress(header, is_variable))
    count = 0
    for line, cells in records:
        if len(cells) != width:
            if not manifest.skip_ragged:
                raise _ragged(path, line, header, len(cells))
            manifest.ragged.append(_ragged(path, line, header, len(cells)))
            count += 1
            continue
        count += 1
        yield ManifestRow(
            line=line,
            id=_opt(cells, i_id),
            template=_opt(cells, i_tpl),
            output=_opt(cells, i_out),
            flow=_opt(cells, i_flow),
            variables=dict(zip(var_names, compress(cells, is_variable), strict=True)),
        )
    if count == 0:
        raise ManifestError(
            "the manifest has a header but no rows",
            file=path,
            line=header_line,
            hint="add one row per video under the header",
        )


def _text_lines(path: Path, f: BinaryIO, encoding: str | None) -> tuple[Iterable[str], str]:
    """The file's lines as text, and the encoding's name. UTF-8 (BOM or not) keeps the fast
    byte-line path; a UTF-16 BOM or ``--encoding`` goes through a text wrapper."""
    bom = f.peek(4)[:4] if isinstance(f, io.BufferedReader) else b""
    if encoding is None and bom.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    if encoding is None or codecs.lookup(encoding).name == "utf-8":
        head = f.peek(_SNIFF_BYTES)[:_SNIFF_BYTES] if isinstance(f, io.BufferedReader) else b""
        if b"\x00" in head:
            likely, codec = likely_encoding(head)
            raise ManifestError(
                f"the file holds NUL bytes, so it is not UTF-8 text (it is most likely {likely})",
                file=path,
                line=head.count(b"\n", 0, head.index(b"\x00")) + 1,
                hint=f"read it with --encoding {codec}, or save it as UTF-8",
            )
        if bom.startswith(b"\xef\xbb\xbf"):
            return decoded_lines(path, f), "UTF-8 with BOM"
        return decoded_lines(path, f), "UTF-8"
    name = "UTF-16" if encoding == "utf-16" else encoding
    return _other_encoding_lines(path, f, encoding, name), name


def _other_encoding_lines(path: Path, f: BinaryIO, encoding: str, name: str) -> Iterator[str]:
    """Lines (ending ``\\n`` kept) of a file in ``encoding``, decoded chunk by chunk."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending = ""
    number = 0
    while True:
        data = f.read(_SNIFF_BYTES)
        try:
            pending += decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            at = number + pending.count("\n") + 1
            raise ManifestError(
                f"the file cannot be read as {name} on or after this line ({exc.reason})",
                file=path,
                line=at,
                hint="check the encoding the file was saved with, and pass it with --encoding",
            ) from exc
        *lines, pending = pending.split("\n")
        for line in lines:
            number += 1
            yield (line.removeprefix("\ufeff") if number == 1 else line) + "\n"
        if not data:
            if pending:
                yield pending.removeprefix("\ufeff") if number == 0 else pending
            return


def _delimiter(path: Path, head: bytes, encoding: str, forced: str | None) -> str:
    """The forced delimiter, else the one of ``, ; tab |`` most frequent in the header line,
    outside double quotes (a comma on ties or when none appears; a tab for ``.tsv``)."""
    if forced is not None:
        return DELIMITERS[forced]
    try:
        codec = "utf-16" if encoding == "UTF-16" else "utf-8" if "UTF-8" in encoding else encoding
        text = head.decode(codec, errors="ignore")
    except LookupError:
        text = ""
    first = text.removeprefix("\ufeff").split("\n", 1)[0]
    unquoted = "".join(first.split('"')[::2])
    counts = {d: unquoted.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] == 0 or counts[best] == counts[","]:
        return "\t" if path.suffix.lower() == ".tsv" and counts[","] == 0 else ","
    return best


def _csv_records(path: Path, reader: Any) -> Iterator[tuple[int, list[str]]]:
    """``(start line, cells)`` for every record that is not blank."""
    while True:
        start = reader.line_num + 1
        try:
            cells: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _csv_error(path, start, str(exc)) from exc
        if "".join(cells).strip():
            yield start, cells


def _csv_error(path: Path, line: int, detail: str) -> ManifestError:
    if "field larger than field limit" in detail:
        message = (
            f"a value starting on this line is longer than {csv.field_size_limit()} characters; "
            "usually an opening double quote is never closed"
        )
    elif "unexpected end of data" in detail:
        message = "a double-quoted value starting on this line is never closed"
    else:
        message = f"malformed CSV ({detail})"
    return ManifestError(message, file=path, line=line, hint=_QUOTE_HINT)


def check_header(path: Path | str, line: int, header: list[str], delimiter: str = ",") -> None:
    """Refuse an empty or duplicate header cell (and a forced delimiter that splits nothing)."""
    others = [d for d in _DELIMITER_NAMES if d != delimiter and d in header[0]]
    if len(header) == 1 and others:
        raise ManifestError(
            f"the header has a single column when split on {_DELIMITER_NAMES[delimiter]}s; "
            f"the file looks {_DELIMITER_NAMES[others[0]]}-separated",
            file=path,
            line=line,
            hint=f"drop --delimiter to let it be detected, or pass --delimiter "
            f"{'tab' if others[0] == chr(9) else others[0]!r}",
        )
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        if not name:
            raise ManifestError(
                "this header cell is empty",
                file=path,
                line=line,
                field=f"column {number}",
                hint="name every column, or delete empty columns in the spreadsheet",
            )
        if name in seen:
            raise ManifestError(
                f"column {name!r} appears twice in the header (columns {seen[name]} and {number})",
                file=path,
                line=line,
                field=name,
                hint="rename or remove one of them",
            )
        seen[name] = number


def _ragged(path: Path | str, line: int, header: list[str], found: int) -> ManifestError:
    if found < len(header):
        missing = header[found]
        return ManifestError(
            f"this row has {found} cells but the header has {len(header)} columns; "
            f"{missing!r} and the columns after it have no cell",
            file=path,
            line=line,
            field=missing,
            hint=f"add the missing cells (empty ones too: a comma each); {_QUOTE_HINT}",
        )
    return ManifestError(
        f"this row has {found} cells but the header has {len(header)} columns",
        file=path,
        line=line,
        hint=_QUOTE_HINT,
    )


def _opt(cells: list[str], index: int | None) -> str | None:
    if index is None:
        return None
    return cells[index].strip() or None
