"""What every manifest reader shares: the row it yields, the reading options, and UTF-8 lines
with located errors.

The readers themselves are :mod:`orchestrator.input.manifest` (CSV/TSV, and the entry point),
:mod:`orchestrator.input.json_rows` (JSON and JSON Lines) and :mod:`orchestrator.input.xlsx`
(Excel workbooks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import ManifestError

RESERVED_COLUMNS = ("id", "template", "output", "flow")
_RESAVE_UTF8 = (
    "save the file as UTF-8 (Excel: Save As > 'CSV UTF-8'; LibreOffice: character set "
    "'Unicode (UTF-8)')"
)


@dataclass(frozen=True)
class ManifestOptions:
    """How to read a manifest: ``--sheet``, ``--delimiter``, ``--encoding``, ``--strict-headers``.

    None means "find out": the first sheet, the delimiter sniffed from the header, UTF-8 or
    UTF-16 by byte-order mark."""

    sheet: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    strict_headers: bool = False
    allow_paths: tuple[str, ...] = ()
    """``--allow-path``: folders besides the manifest's own that its file cells may name."""

    def recorded(self) -> dict[str, Any]:
        """The options that differ from the defaults, for the ledger's run record."""
        return {k: v for k, v in asdict(self).items() if v not in (None, False, ())}

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> ManifestOptions:
        fields = dict(record or {})
        if "allow_paths" in fields:
            fields["allow_paths"] = tuple(fields["allow_paths"])
        return cls(**fields)


DEFAULT_OPTIONS = ManifestOptions()


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
    likely, codec = likely_encoding(raw)
    return ManifestError(
        f"byte 0x{raw[at]:02x} at column {column} is not UTF-8 (the file is most likely {likely})",
        file=path,
        line=line,
        hint=f"{_RESAVE_UTF8}, or read it as it is with --encoding {codec}",
    )


def likely_encoding(raw: bytes) -> tuple[str, str]:
    """``(name for people, codec for --encoding)`` of bytes that are not UTF-8."""
    if raw.count(b"\x00") * 4 > len(raw):
        return "UTF-16 without a byte-order mark", "utf-16-le"
    if any(0x80 <= b <= 0x9F for b in raw):
        return "Windows-1252", "cp1252"  # these bytes are printable only in Windows-1252
    return "Windows-1252 or Latin-1 (ISO-8859-1)", "cp1252"
