"""Read ``.json`` manifests (one array of objects, parsed incrementally) and JSON Lines ones.

JSON Lines files end in ``.jsonl`` or ``.ndjson``: one object per line.

Formats, line numbers and which problems stop the reading: see :mod:`orchestrator.input.manifest`.

Bounds, so a hostile file costs neither memory nor time: an array item holds at most
``MAX_JSON_ROW_CHARS`` characters and a JSON Lines line at most ``row.MAX_LINE_BYTES`` bytes (the
reading stops there, having held no more); the rows are capped (``ManifestOptions.max_rows``).
Depth needs no bound of its own: a row is one flat object, so any nested value is refused, and
nesting deeper than Python's JSON reader goes (its recursion limit, 1,000 levels by default) is
refused as ``TOO_DEEP`` once the reader gives up, within the item's size bound.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.errors import ManifestError
from orchestrator.input.row import (
    RESERVED_COLUMNS,
    ManifestRow,
    decoded_lines,
    not_utf8,
    too_many_rows,
)

JSON_CHUNK_BYTES = 256 * 1024
MAX_JSON_ROW_CHARS = 1024 * 1024
"""A JSON array item holds at most this many characters (a row is a few hundred); a longer one
is refused rather than read on and on."""
_NEAR_END_CHARS = 16
"""A syntax error this close to the end of what has been read may be a token cut by the chunk
(``tru`` of ``true``): read on before calling it an error."""
_WS = re.compile(r"[ \t\r\n]*")


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


TOO_DEEP = "a value here is nested too deeply to read (arrays or objects inside each other)"
TOO_DEEP_HINT = "a manifest row is one flat object whose values are text, numbers or booleans"


def jsonl_rows(path: Path, f: BinaryIO, max_rows: int) -> Iterator[ManifestRow]:
    decoder = json.JSONDecoder(object_pairs_hook=_Pairs)
    count = 0
    for number, text in enumerate(decoded_lines(path, f), start=1):
        if not text.strip():
            continue
        if count == max_rows:
            raise too_many_rows(path, number, max_rows)
        try:
            value = decoder.decode(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(
                f"this line is not valid JSON: {exc.msg} at column {exc.colno}",
                file=path,
                line=number,
                hint="each line of a JSON Lines file is one complete object on a single line",
            ) from exc
        except RecursionError:
            raise ManifestError(TOO_DEEP, file=path, line=number, hint=TOO_DEEP_HINT) from None
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


class JsonArray:
    """An incremental reader for ``[ {...}, {...} ]``: holds one chunk and one object at a time."""

    def __init__(self, path: Path, f: BinaryIO, max_rows: int) -> None:
        self._path = path
        self._f = f
        self._max_rows = max_rows
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
            if count == self._max_rows:
                raise too_many_rows(self._path, line, self._max_rows)
            value = self._value(count + 1)
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
            raise not_utf8(self._path, line, seen, exc.start, base) from exc
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

    def _value(self, item: int) -> Any:
        """Array item number ``item``: decoded once it is all read, refused once it is longer
        than ``MAX_JSON_ROW_CHARS`` (read no further than that)."""
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except RecursionError:
                raise self._error(TOO_DEEP, TOO_DEEP_HINT) from None
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or (
                    exc.pos >= len(self._buf) - _NEAR_END_CHARS
                )
                if self._eof or not cut:
                    raise self._error(
                        f"not valid JSON: {exc.msg}", "fix the JSON syntax here", at=exc.pos
                    ) from exc
                if len(self._buf) - self._pos > MAX_JSON_ROW_CHARS:
                    raise self._too_long(item) from None
                self._fill()
                continue
            if end == len(self._buf) and not self._eof and not isinstance(value, _Pairs | list):
                self._fill()  # a bare number may continue in the next chunk
                continue
            if end - self._pos > MAX_JSON_ROW_CHARS:
                raise self._too_long(item)
            self._line += self._buf.count("\n", self._pos, end)
            self._pos = end
            return value

    def _too_long(self, item: int) -> ManifestError:
        return self._error(
            f"array item {item} is longer than {MAX_JSON_ROW_CHARS:,} characters, the most one "
            "row may hold",
            "a row is one flat object of short values; a string or bracket that is never "
            "closed makes an item run on",
        )

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
