"""What every manifest reader shares: the row it yields, and UTF-8 lines with located errors.

The readers themselves are :mod:`orchestrator.manifest` (CSV, and the entry point) and
:mod:`orchestrator.manifest_json` (JSON and JSON Lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ManifestError

RESERVED_COLUMNS = ("id", "template", "output", "flow")
_RESAVE_UTF8 = (
    "save the file as UTF-8 (Excel: Save As > 'CSV UTF-8'; LibreOffice: character set "
    "'Unicode (UTF-8)')"
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


def decoded_lines(path: Path, f: BinaryIO) -> Iterator[str]:
    """Physical lines as text (line ends kept, BOM dropped), failing on the first non-UTF-8 line."""
    for number, raw in enumerate(f, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8(path, number, raw, exc.start) from exc
        yield text.removeprefix("\ufeff") if number == 1 else text


def not_utf8(path: Path, line: int, raw: bytes, at: int, column_base: int = 0) -> ManifestError:
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
