"""Read a manifest row by row, never holding more than one row in memory.

Formats, chosen by extension: ``.csv`` / ``.tsv`` / ``.txt`` (a header row; the delimiter ``,``
``;`` tab or ``|`` sniffed once from the header line, or forced with ``--delimiter``; UTF-8 with or
without a BOM or UTF-16 with a BOM, else ``--encoding``; CRLF or LF; RFC 4180 quoting so values
may hold delimiters, quotes and newlines), ``.xlsx`` / ``.xlsm`` (an Excel workbook, see
:mod:`orchestrator.input.xlsx`), ``.json`` (one array of objects, parsed incrementally) and
``.jsonl`` / ``.ndjson`` (one object per line).

Columns: ``id``, ``template``, ``output`` and ``flow`` are reserved (in CSV and workbooks a header
such as ``ID`` matches one unless ``--strict-headers``, see :mod:`.headers`); every
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
  ``orchestrator.input.validate_row.check_row``, which returns them all instead of raising.

Limits (docs/manifest.md#limits): at most ``ManifestOptions.row_cap`` rows, refused at the
first row past it without reading on; a line of at most ``MAX_LINE_BYTES``; a JSON array item of
at most ``MAX_JSON_ROW_CHARS``; a workbook's XML as :mod:`.xlsx_guard` bounds it.

Identity and output names: see :mod:`orchestrator.input.identity`.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.errors import ManifestError, UserError
from orchestrator.input.json_rows import JsonArray, jsonl_rows
from orchestrator.input.reading import Reading
from orchestrator.input.row import (
    DEFAULT_OPTIONS,
    MAX_LINE_BYTES,
    ManifestOptions,
    ManifestRow,
    decoded_lines,
    likely_encoding,
    line_too_long,
)
from orchestrator.input.table import DELIMITER_NAMES, QUOTE_HINT, check_header, header_rows

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
_SNIFF_BYTES = 64 * 1024


class Manifest(Reading):
    """An opened manifest: its rows, pulled once, and how it is being read (``Reading``)."""

    def __init__(self, path: Path, fmt: str, options: ManifestOptions) -> None:
        super().__init__(path, fmt, options)
        self.rows: Iterator[ManifestRow] = self._rows(fmt, options)

    def __iter__(self) -> Iterator[ManifestRow]:
        return self.rows

    def __next__(self) -> ManifestRow:
        return next(self.rows)

    def _rows(self, fmt: str, options: ManifestOptions) -> Iterator[ManifestRow]:
        path = self.path
        if fmt == "xlsx":
            from orchestrator.input.xlsx import xlsx_rows

            yield from xlsx_rows(self, options)
            self.sha256 = manifest_digest(path)
            return
        try:
            hashing = _HashingReader(path.open("rb", buffering=0))
            with io.BufferedReader(hashing) as f:
                if fmt == "csv":
                    yield from _csv_rows(self, f, options)
                elif fmt == "jsonl":
                    yield from jsonl_rows(path, f, self.max_rows)
                else:
                    yield from JsonArray(path, f, self.max_rows).rows()
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
    """Refuse a ``--delimiter``, ``--encoding`` or ``--max-rows`` we cannot use, before anything
    is read."""
    if options.max_rows is not None and options.max_rows < 1:
        raise UserError(f"--max-rows {options.max_rows}: the cap must be at least 1 row")
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


def text_dialect(path: Path, options: ManifestOptions = DEFAULT_OPTIONS) -> tuple[str, str] | None:
    """``(delimiter, codec)`` a CSV/TSV manifest is read with, found as the reader finds them
    (``utf-8-sig`` for UTF-8 with a BOM); None for other formats, and for a file that cannot be
    read (``validate`` says why). Reads the first 64 KiB at most."""
    if _FORMATS.get(path.suffix.lower()) != "csv":
        return None
    try:
        check_options(options)
        with path.open("rb") as f:
            _, name = _text_lines(path, f, options.encoding)
            delimiter = _delimiter(
                path, f.peek(_SNIFF_BYTES)[:_SNIFF_BYTES], name, options.delimiter
            )
    except (OSError, UserError):
        return None
    codec = {"UTF-8": "utf-8", "UTF-8 with BOM": "utf-8-sig", "UTF-16": "utf-16"}.get(name)
    return delimiter, codec or codecs.lookup(name).name


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
        f"{'TSV' if delimiter == chr(9) else 'CSV'}, {DELIMITER_NAMES[delimiter]}-separated, "
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
            if len(line) > MAX_LINE_BYTES:
                raise line_too_long(path, number, "characters")
            yield (line.removeprefix("\ufeff") if number == 1 else line) + "\n"
        if len(pending) > MAX_LINE_BYTES:
            raise line_too_long(path, number + 1, "characters")
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
    return ManifestError(message, file=path, line=line, hint=QUOTE_HINT)
