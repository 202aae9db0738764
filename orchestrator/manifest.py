"""Read a manifest row by row, never holding more than one row in memory.

Formats, chosen by extension: ``.csv`` (a header row, comma-separated, UTF-8 with or without a
BOM, CRLF or LF, RFC 4180 quoting so values may hold commas, quotes and newlines), ``.json`` (one
array of objects, parsed incrementally) and ``.jsonl`` / ``.ndjson`` (one object per line).

Columns: ``id``, ``template``, ``output`` and ``flow`` are reserved (exact, lower-case names); every
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

import csv
import hashlib
from collections.abc import Iterator
from itertools import compress
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.errors import ManifestError
from orchestrator.manifest_json import JsonArray, jsonl_rows
from orchestrator.manifest_row import RESERVED_COLUMNS, ManifestRow, decoded_lines

_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_QUOTE_HINT = (
    "a value holding a comma, quote or line break must be in double quotes, "
    'with inner quotes doubled ("")'
)


def read_manifest(path: Path) -> Iterator[ManifestRow]:
    """Stream the rows of a ``.csv``, ``.json``, ``.jsonl`` or ``.ndjson`` manifest.

    The format and the file's existence are checked now; everything else as rows are pulled.
    Structural problems raise :class:`ManifestError`.
    """
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ManifestError(
            f"unsupported manifest format {path.suffix or '(no extension)'!r}",
            file=path,
            hint="use .csv, .json (an array of objects), .jsonl or .ndjson; from a spreadsheet, "
            "export 'CSV UTF-8'",
        )
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "manifest file not found"
        raise ManifestError(what, file=path, hint="check the path")
    return _rows(path, fmt)


def _rows(path: Path, fmt: str) -> Iterator[ManifestRow]:
    try:
        with path.open("rb") as f:
            if fmt == "csv":
                yield from _csv_rows(path, f)
            elif fmt == "jsonl":
                yield from jsonl_rows(path, f)
            else:
                yield from JsonArray(path, f).rows()
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest: {exc.strerror}", file=path) from exc


def resolve_template_path(row: ManifestRow, manifest_path: Path) -> Path | None:
    """The row's own template file, relative paths taken from the manifest's folder; else None."""
    if row.template is None:
        return None
    candidate = Path(row.template).expanduser()
    return candidate if candidate.is_absolute() else manifest_path.parent / candidate


def manifest_digest(path: Path) -> str:
    """The sha256 (hex) of the manifest's bytes, read in chunks."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest: {exc.strerror}", file=path) from exc


# --- CSV -----------------------------------------------------------------------------------------


def _csv_rows(path: Path, f: BinaryIO) -> Iterator[ManifestRow]:
    reader = csv.reader(decoded_lines(path, f), strict=True)
    records = _csv_records(path, reader)
    header_line, cells = next(records, (0, []))
    header = [cell.strip() for cell in cells]
    if not header:
        raise ManifestError("the manifest is empty", file=path, hint="add a header row and rows")
    _check_header(path, header_line, header)
    width = len(header)
    where = {name: i for i, name in enumerate(header)}
    i_id, i_tpl, i_out, i_flow = (where.get(name) for name in RESERVED_COLUMNS)
    is_variable = [name not in RESERVED_COLUMNS for name in header]
    var_names = list(compress(header, is_variable))
    count = 0
    for line, cells in records:
        if len(cells) != width:
            raise _ragged(path, line, header, len(cells))
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


def _check_header(path: Path, line: int, header: list[str]) -> None:
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        raise ManifestError(
            "the header has a single column; the file looks separated by ';' or tabs",
            file=path,
            line=line,
            hint="export as comma-separated 'CSV UTF-8'",
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


def _ragged(path: Path, line: int, header: list[str], found: int) -> ManifestError:
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
