"""A header and the rows of cells under it: what the CSV and workbook readers share (checking
the header, matching reserved columns, refusing or collecting ragged rows)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import compress
from pathlib import Path

from orchestrator.errors import ManifestError
from orchestrator.input.headers import match_names
from orchestrator.input.reading import Reading
from orchestrator.input.row import RESERVED_COLUMNS, ManifestRow, too_many_rows

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
QUOTE_HINT = (
    "a value holding a comma, quote or line break must be in double quotes, "
    'with inner quotes doubled ("")'
)
MAX_PENDING_RAGGED = 1000
"""Ragged rows kept between two good rows (``validate`` lists at most 1000 problems); more in a
row are only counted, so a file of ragged lines cannot fill the memory."""


def header_rows(
    manifest: Reading,
    header_line: int,
    header: list[str],
    records: Iterable[tuple[int, list[str]]],
    strict: bool,
) -> Iterator[ManifestRow]:
    """Rows from ``(line, cells)`` records under a checked header (CSV and workbook readers).

    Unless ``strict``, a header such as ``ID`` or ``Output`` is read as the reserved column it
    matches (see :mod:`.headers`); ``manifest.renamed`` records it. Rows, ragged ones included,
    are counted: the first past ``manifest.max_rows`` stops the reading."""
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
    cap = manifest.max_rows
    for line, cells in records:
        count += 1
        if count > cap:
            raise too_many_rows(path, line, cap)
        if len(cells) != width:
            if not manifest.skip_ragged:
                raise _ragged(path, line, header, len(cells))
            if len(manifest.ragged) < MAX_PENDING_RAGGED:
                manifest.ragged.append(_ragged(path, line, header, len(cells)))
            else:
                manifest.ragged_unlisted += 1
            continue
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


def check_header(path: Path | str, line: int, header: list[str], delimiter: str = ",") -> None:
    """Refuse an empty or duplicate header cell (and a forced delimiter that splits nothing)."""
    others = [d for d in DELIMITER_NAMES if d != delimiter and d in header[0]]
    if len(header) == 1 and others:
        raise ManifestError(
            f"the header has a single column when split on {DELIMITER_NAMES[delimiter]}s; "
            f"the file looks {DELIMITER_NAMES[others[0]]}-separated",
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
            hint=f"add the missing cells (empty ones too: a comma each); {QUOTE_HINT}",
        )
    return ManifestError(
        f"this row has {found} cells but the header has {len(header)} columns",
        file=path,
        line=line,
        hint=QUOTE_HINT,
    )


def _opt(cells: list[str], index: int | None) -> str | None:
    if index is None:
        return None
    return cells[index].strip() or None
