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

Identity: a row's ``id`` when given (a safe token: a letter or digit, then letters, digits,
``-``, ``_``, ``.``; at most 128 characters); otherwise ``r-`` and the first 16 hex digits of
sha256(template sha256 + canonical JSON of the variables, keys and values NFC-normalised and
stripped, keys sorted). Reordering, adding or editing *other* rows never changes a row's identity.

Output names (:func:`safe_output_name`): the ``output`` value, else the identity. The result must
be a plain file name inside the output folder, so it is rejected (never silently repaired) when it
is an absolute path, contains ``..`` as a path part, a ``/`` or ``\\``, a control character, one of
``< > : " | ? *``, starts with ``.`` (hidden; our partial downloads use that prefix), or is a
Windows device name (``CON``, ``NUL``, ``COM1``...). ``.mp4`` is appended unless the name already
ends with ``.mp4`` (any case). The final name is at most 150 characters. Two names that differ only
in case or Unicode normalisation are the same file on Windows and macOS: validate treats them as
duplicates.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from itertools import compress
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ManifestError

RESERVED_COLUMNS = ("id", "template", "output", "flow")
MAX_ID_CHARS = 128
MAX_OUTPUT_NAME_CHARS = 150
JSON_CHUNK_BYTES = 256 * 1024
MAX_JSON_ROW_CHARS = 1024 * 1024
"""A JSON array item larger than this is treated as broken rather than read on and on."""

_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_WS = re.compile(r"[ \t\r\n]*")
_WINDOWS_CHARS = '<>:"|?*'
_BAD_CHAR = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*]')  # control characters (Unicode Cc) too
_PLAIN_NAME = re.compile(r"(?!(?i:con|prn|aux|nul|com\d|lpt\d)(?:[ .]|$))[A-Za-z0-9][\w .-]*")
"""Fast path: names that obviously pass every rule below (no separators, dots only inside)."""
_json_str = json.encoder.encode_basestring
"""JSON string literal, as ``json.dumps(ensure_ascii=False)`` writes it (C speed)."""
_WINDOWS_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)]
)
_RESAVE_UTF8 = (
    "save the file as UTF-8 (Excel: Save As > 'CSV UTF-8'; LibreOffice: character set "
    "'Unicode (UTF-8)')"
)
_QUOTE_HINT = (
    "a value holding a comma, quote or line break must be in double quotes, "
    'with inner quotes doubled ("")'
)


class ManifestRow(BaseModel):
    """One manifest row: where it is, its reserved columns, and its template variables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line: int
    id: str | None = None
    template: str | None = None
    output: str | None = None
    flow: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)


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
                yield from _jsonl_rows(path, f)
            else:
                yield from _JsonArray(path, f).rows()
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


# --- identity and output names -------------------------------------------------------------------


def id_problem(row_id: str) -> str | None:
    """Why ``row_id`` is not a safe token, or None when it is."""
    if len(row_id) > MAX_ID_CHARS:
        return f"id is {len(row_id)} characters; the limit is {MAX_ID_CHARS}"
    if not _SAFE_ID.fullmatch(row_id):
        return (
            f"id {row_id!r} must start with a letter or digit and hold only letters, digits, "
            "'-', '_' and '.'"
        )
    return None


def row_identity(
    row: ManifestRow, template_sha256: str, *, manifest_path: Path | None = None
) -> str:
    """The row's stable identity (see the module docstring). Raises on an unsafe ``id``."""
    if row.id is not None:
        problem = id_problem(row.id)
        if problem is not None:
            raise ManifestError(problem, file=manifest_path, line=row.line, field="id")
        return row.id
    pairs = sorted([(k.strip(), v.strip()) for k, v in row.variables.items()])
    canonical = "{" + ",".join([_json_str(k) + ":" + _json_str(v) for k, v in pairs]) + "}"
    if not canonical.isascii():  # ASCII is already NFC; only other text needs normalising
        pairs = sorted([(_nfc(k), _nfc(v)) for k, v in pairs])
        canonical = "{" + ",".join([_json_str(k) + ":" + _json_str(v) for k, v in pairs]) + "}"
    digest = hashlib.sha256((template_sha256 + canonical).encode("utf-8")).hexdigest()
    return "r-" + digest[:16]


def output_name(row: ManifestRow, identity: str) -> tuple[str, str | None]:
    """``(name, problem)``: the file name for the row's video and why it is unsafe (or None)."""
    name = (row.output if row.output is not None else identity).strip()
    if not name.isascii():
        name = _nfc(name)
    problem = None if _PLAIN_NAME.fullmatch(name) else _output_problem(name)
    if not name.lower().endswith(".mp4"):
        name += ".mp4"
    if problem is None and len(name) > MAX_OUTPUT_NAME_CHARS:
        problem = f"file name is {len(name)} characters; the limit is {MAX_OUTPUT_NAME_CHARS}"
    return name, problem


def safe_output_name(row: ManifestRow, identity: str, *, manifest_path: Path | None = None) -> str:
    """The plain file name (ending ``.mp4``) the row's video is saved under. Raises when unsafe."""
    name, problem = output_name(row, identity)
    if problem is not None:
        field = "output" if row.output is not None else "id"
        raise ManifestError(problem, file=manifest_path, line=row.line, field=field)
    return name


def _output_problem(name: str) -> str | None:
    plain = (
        "give a plain file name such as 'anna-smith.mp4'; videos always go into the run's folder"
    )
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return f"{name!r} is an absolute path; {plain}"
    if ".." in re.split(r"[/\\]", name):
        return f"{name!r} climbs out of the output folder with '..'; {plain}"
    if "/" in name or "\\" in name:
        return f"{name!r} contains a path separator; {plain}"
    bad = _BAD_CHAR.search(name)
    if bad and bad.group() not in _WINDOWS_CHARS:
        return f"the name contains the control character U+{ord(bad.group()):04X}; remove it"
    if bad:
        return f"the name contains {bad.group()!r}, which Windows does not allow in file names"
    if name.startswith("."):
        return f"{name!r} starts with '.', which hides the file; remove the leading dot"
    if name.split(".")[0].strip().upper() in _WINDOWS_NAMES:
        return f"{name.split('.')[0]!r} is a reserved device name on Windows; choose another name"
    return None


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --- CSV -----------------------------------------------------------------------------------------


def _decoded_lines(path: Path, f: BinaryIO) -> Iterator[str]:
    """Physical lines as text (line ends kept, BOM dropped), failing on the first non-UTF-8 line."""
    for number, raw in enumerate(f, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, number, raw, exc.start) from exc
        yield text.removeprefix("\ufeff") if number == 1 else text


def _not_utf8(path: Path, line: int, raw: bytes, at: int, column_base: int = 0) -> ManifestError:
    """``raw[at]`` is the bad byte; ``column_base`` counts bytes of its line read before ``raw``."""
    start = raw.rfind(b"\n", 0, at) + 1
    column = at - start + 1 + (column_base if start == 0 else 0)
    return ManifestError(
        f"byte 0x{raw[at]:02x} at column {column} is not UTF-8 (the file looks like it was "
        "saved as Windows-1252 or Latin-1)",
        file=path,
        line=line,
        hint=_RESAVE_UTF8,
    )


def _csv_rows(path: Path, f: BinaryIO) -> Iterator[ManifestRow]:
    reader = csv.reader(_decoded_lines(path, f), strict=True)
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


# --- JSON ----------------------------------------------------------------------------------------


class _Pairs(list[tuple[str, Any]]):
    """A JSON object kept as its key/value pairs, so duplicate keys can be reported."""


def _row_from_pairs(path: Path, line: int, pairs: _Pairs) -> ManifestRow:
    reserved: dict[str, str | None] = {}
    variables: dict[str, str] = {}
    for key, value in pairs:
        name = key.strip()
        if not name:
            raise ManifestError(
                "a key is empty", file=path, line=line, field=key, hint="give every value a name"
            )
        if name in reserved or name in variables:
            raise ManifestError(
                f"key {name!r} appears twice in this object",
                file=path,
                line=line,
                field=name,
                hint="keep one of them",
            )
        text = _scalar_text(path, line, name, value)
        if name in RESERVED_COLUMNS:
            reserved[name] = text.strip() or None
        else:
            variables[name] = text
    return ManifestRow(
        line=line,
        id=reserved.get("id"),
        template=reserved.get("template"),
        output=reserved.get("output"),
        flow=reserved.get("flow"),
        variables=variables,
    )


def _scalar_text(path: Path, line: int, name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    kind = "an object" if isinstance(value, _Pairs) else "an array"
    raise ManifestError(
        f"the value is {kind}; manifest values must be text, numbers, true/false or null",
        file=path,
        line=line,
        field=name,
        hint="flatten it into separate keys, or write it as one string",
    )


def _jsonl_rows(path: Path, f: BinaryIO) -> Iterator[ManifestRow]:
    decoder = json.JSONDecoder(object_pairs_hook=_Pairs)
    count = 0
    for number, text in enumerate(_decoded_lines(path, f), start=1):
        if not text.strip():
            continue
        try:
            value = decoder.decode(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"this line is not valid JSON: {exc.msg} at column {exc.colno}",
                file=path,
                line=number,
                hint="each line of a JSON Lines file is one complete object on a single line",
            ) from exc
        if not isinstance(value, _Pairs):
            raise ManifestError(
                f"this line holds a JSON {_json_kind(value)}; each line must be one object",
                file=path,
                line=number,
                hint='write one {"column": "value", ...} per line',
            )
        count += 1
        yield _row_from_pairs(path, number, value)
    if count == 0:
        raise ManifestError(
            "the manifest has no rows", file=path, hint="write one JSON object per line"
        )


def _json_kind(value: Any) -> str:
    if isinstance(value, _Pairs):
        return "object"
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


class _JsonArray:
    """An incremental reader for ``[ {...}, {...} ]``: holds one chunk and one object at a time."""

    def __init__(self, path: Path, f: BinaryIO) -> None:
        self._path = path
        self._f = f
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._decoder = json.JSONDecoder(object_pairs_hook=_Pairs)
        self._buf = ""
        self._pos = 0
        self._line = 1  # the line number at self._pos
        self._raw_newlines = 0
        self._raw_line_bytes = 0  # bytes read since the last newline
        self._eof = False
        self._started = False

    def rows(self) -> Iterator[ManifestRow]:
        first = self._peek()
        if first != "[":
            raise self._not_array(first)
        self._pos += 1
        count = 0
        while True:
            char = self._peek()
            if char == "]" and count == 0:
                raise self._error(
                    "the array is empty: the manifest has no rows", "add one object per video"
                )
            if char == "]":
                raise self._error("a trailing comma before ']'", "remove the last comma")
            if char == "":
                raise self._error("the array is never closed", "end it with ']'")
            line = self._line
            value = self._value()
            if not isinstance(value, _Pairs):
                raise ManifestError(
                    f"array item {count + 1} is a JSON {_json_kind(value)}, not an object",
                    file=self._path,
                    line=line,
                    hint='each item is {"column": "value", ...}',
                )
            count += 1
            yield _row_from_pairs(self._path, line, value)
            char = self._peek()
            self._pos += 1
            if char == "]":
                break
            if char != ",":
                raise self._error(
                    f"expected ',' or ']' after item {count}, found "
                    f"{char or 'the end of the file'!r}",
                    "separate items with ','",
                )
        if self._peek() != "":
            raise self._error("unexpected content after the closing ']'", "remove it")

    def _fill(self) -> bool:
        """Append the next chunk (dropping what was consumed). False once the file is exhausted."""
        if self._eof:
            return False
        data = self._f.read(JSON_CHUNK_BYTES)
        try:
            text = self._utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            seen: bytes = exc.object  # up to 3 bytes held back from the last chunk, then data
            line = self._raw_newlines + seen.count(b"\n", 0, exc.start) + 1
            base = self._raw_line_bytes - (len(seen) - len(data))
            raise _not_utf8(self._path, line, seen, exc.start, base) from exc
        self._raw_newlines += data.count(b"\n")
        last_newline = data.rfind(b"\n")
        if last_newline >= 0:
            self._raw_line_bytes = len(data) - last_newline - 1
        else:
            self._raw_line_bytes += len(data)
        self._eof = not data
        if not self._started:
            text = text.removeprefix("\ufeff")
            self._started = bool(text)
        self._buf = self._buf[self._pos :] + text
        self._pos = 0
        return not self._eof

    def _peek(self) -> str:
        """Skip whitespace; the next character, or '' at the end of the file."""
        while True:
            match = _WS.match(self._buf, self._pos)
            end = match.end() if match else self._pos
            self._line += self._buf.count("\n", self._pos, end)
            self._pos = end
            if end < len(self._buf):
                return self._buf[end]
            if not self._fill() and self._pos >= len(self._buf):
                return ""

    def _value(self) -> Any:
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._eof or len(self._buf) - self._pos > MAX_JSON_ROW_CHARS:
                    raise self._error(
                        f"not valid JSON: {exc.msg}", "fix the JSON syntax here", at=exc.pos
                    ) from exc
                self._fill()
                continue
            if end == len(self._buf) and not self._eof and not isinstance(value, _Pairs | list):
                self._fill()  # a bare number may continue in the next chunk
                continue
            self._line += self._buf.count("\n", self._pos, end)
            self._pos = end
            return value

    def _error(self, message: str, hint: str, *, at: int | None = None) -> ManifestError:
        line = self._line
        if at is not None:
            line += self._buf.count("\n", self._pos, at)
        return ManifestError(message, file=self._path, line=line, hint=hint)

    def _not_array(self, first: str) -> ManifestError:
        if first == "":
            return ManifestError(
                "the manifest is empty",
                file=self._path,
                hint="write a JSON array of objects: [{...}, {...}]",
            )
        found = {"{": "a single object"}.get(first, "not an array")
        return self._error(
            f"a .json manifest must be an array of objects; this file is {found}",
            "wrap the objects in [ ... ] separated by commas, "
            "or save one object per line as .jsonl",
        )
