"""What every manifest reader shares: the row it yields, the reading options, and UTF-8 lines
with located errors.

The readers themselves are :mod:`orchestrator.input.manifest` (CSV/TSV, and the entry point),
:mod:`orchestrator.input.json_rows` (JSON and JSON Lines) and :mod:`orchestrator.input.xlsx`
(Excel workbooks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.errors import ManifestError

RESERVED_COLUMNS = ("id", "template", "output", "flow")
DEFAULT_MAX_ROWS = 1_000_000
"""The rows a manifest may hold unless raised: ``[input] max_rows``'s default (``config``
repeats it: this wing is read without loading pydantic; tests/test_startup_imports.py checks that
the two agree)."""
MAX_LINE_BYTES = 1024 * 1024
"""One line of a CSV/TSV or JSON Lines manifest holds at most this many bytes (characters, when
read in another encoding than UTF-8). A row is a few hundred bytes; a longer line is a file that
is not a manifest, and reading it whole would take its size in memory."""
RAISE_THE_CAP = "--max-rows N, or [input] max_rows in the config"
_RESAVE_UTF8 = (
    "save the file as UTF-8 (Excel: Save As > 'CSV UTF-8'; LibreOffice: character set "
    "'Unicode (UTF-8)')"
)


@dataclass(frozen=True)
class ManifestOptions:
    """How to read a manifest: ``--sheet``, ``--delimiter``, ``--encoding``, ``--strict-headers``,
    ``--strict-columns``; and what a batch makes of it: its video names, how ``results.csv`` is
    written. Recorded with the run (``recorded``), so ``resume``, ``report`` and ``status`` read
    and write alike.

    None means "find out": the first sheet, the delimiter sniffed from the header, UTF-8 or
    UTF-16 by byte-order mark."""

    sheet: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    strict_headers: bool = False
    allow_paths: tuple[str, ...] = ()
    """``--allow-path``: folders besides the manifest's own that its file cells may name."""
    max_rows: int | None = None
    """``--max-rows`` or ``[input] max_rows``: the most rows the manifest may hold; None is
    ``DEFAULT_MAX_ROWS``. Recorded with the run, so a resume reads as many."""
    strict_columns: bool = False
    """``--strict-columns``: a column the template does not use is a problem, as it was before
    extra columns were carried through to the results (see ``extra_columns``)."""
    readable_names: bool = False
    """A row without ``id`` or ``output`` names its video ``LINE-SLUG-TAG.mp4``
    (``identity.readable_name``) instead of by its identity. The CLI sets it for a new batch; a
    batch whose record lacks it (begun by an older version) keeps the names it began with."""
    name_pattern: str | None = None
    """``--name PATTERN`` or ``[run] name_pattern``: rows without ``output`` name their video
    from this pattern (``input.names``), instead of by ``id`` or readable name. A batch choice:
    recorded, and a resume keeps it."""
    results_dialect: str | None = None
    """``--results-dialect``: ``excel``, ``excel-eu`` or ``utf8``; None writes ``results.csv``
    like the manifest (``found_delimiter``, ``found_encoding``; see ``report.results_csv``)."""
    found_delimiter: str | None = None
    found_encoding: str | None = None
    """The delimiter and the codec a CSV/TSV manifest was found to be in (None for other
    formats): recorded, so ``results.csv`` follows the manifest also where the manifest is not
    at hand (a shared batch's report, another machine's worker)."""

    @property
    def row_cap(self) -> int:
        return self.max_rows if self.max_rows is not None else DEFAULT_MAX_ROWS

    def recorded(self) -> dict[str, Any]:
        """The options that differ from the defaults, for the ledger's run record."""
        return {k: v for k, v in asdict(self).items() if v not in (None, False, ())}

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> ManifestOptions:
        """The options a run record holds (an option a newer version recorded is left out:
        its default is what this version reads by)."""
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in (record or {}).items() if k in known}
        if "allow_paths" in fields:
            fields["allow_paths"] = tuple(fields["allow_paths"])
        return cls(**fields)


DEFAULT_OPTIONS = ManifestOptions()


def with_row_cap(
    options: ManifestOptions, max_rows: int | None, config_file: Path | None
) -> ManifestOptions:
    """``options`` with the row cap a command was given: ``--max-rows``, else the one recorded
    with the run (already in ``options``), else ``[input] max_rows`` of ``--config FILE`` when
    it differs from the default (so a default cap is not recorded)."""
    if max_rows is not None:
        return replace(options, max_rows=max_rows)
    if options.max_rows is None and config_file is not None:
        from orchestrator.config import load_config  # pydantic: only when a config is given

        configured = load_config(config_file).input.max_rows
        if configured != DEFAULT_MAX_ROWS:
            return replace(options, max_rows=configured)
    return options


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestRow:
    """One manifest row: where it is, its reserved columns, and its template variables. Made by
    the readers from text cells (a plain dataclass: no validation a row at a time)."""

    line: int
    id: str | None = None
    template: str | None = None
    output: str | None = None
    flow: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


def decoded_lines(path: Path, f: BinaryIO) -> Iterator[str]:
    """Physical lines as text (line ends kept, BOM dropped), failing on the first non-UTF-8 line
    and on a line longer than ``MAX_LINE_BYTES`` (read no further than that)."""
    for number, raw in enumerate(iter(partial(f.readline, MAX_LINE_BYTES + 1), b""), start=1):
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise line_too_long(path, number, "bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8(path, number, raw, exc.start) from exc
        yield text.removeprefix("\ufeff") if number == 1 else text


def line_too_long(path: Path, line: int, unit: str) -> ManifestError:
    return ManifestError(
        f"this line is longer than {MAX_LINE_BYTES:,} {unit}, the most one line may hold",
        file=path,
        line=line,
        hint="a manifest holds one row a line, a few hundred bytes each: check that this is the "
        "manifest you meant",
    )


def too_many_rows(file: Path | str, line: int, cap: int) -> ManifestError:
    """The row past the cap: the reading stops there (see ``ManifestOptions.max_rows``)."""
    return ManifestError(
        f"the manifest holds more than {cap:,} rows, the most it may hold; this is row {cap + 1:,}",
        file=file,
        line=line,
        hint=f"split it into smaller manifests, or raise the cap: {RAISE_THE_CAP}",
    )


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
