"""``RUN_DIR/results.xlsx``: the results in the input's form, for a workbook manifest.

A batch read from an ``.xlsx`` (or ``.xlsm``) manifest gets its results back as a workbook as
well as ``results.csv``: the user's columns first, in their order (under the names the sheet's
header gives them), then ours (``results.FIXED_COLUMNS``, the same as ``results.csv``'s, with
``status`` per row), so the sheet they sent comes back with its answers beside it. Links are
clickable: the web links (``video_url``, ``share_url``, ``email_url``…) and the local files
(``file``, ``poster``, ``preview_gif``, relative to the workbook, which sits in the run
directory). Our counts (``bytes``, ``attempts``, ``line``, ``duration_s``, ``ai_credits``) are
numbers; every other cell is text, as ``results.csv`` shows it: a cell is never a formula,
whatever it starts with (a string typed as text cannot run), and characters XML cannot hold are
dropped.

Memory stays flat whatever the batch's size: openpyxl's write-only mode streams the rows to
disk, and the hyperlinks, which openpyxl would hold in memory until the end (a few hundred
bytes each, several per row), are spooled to a temporary file and written into the sheet and
its relationships afterwards, streaming, as the workbook is copied into place
(``_add_hyperlinks``). Written to a temporary name and renamed, like every result file.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from orchestrator.errors import UserError
from orchestrator.files import move_into_place, private_opener, writing
from orchestrator.input.headers import header_key
from orchestrator.input.manifest import read_manifest
from orchestrator.input.row import ManifestOptions
from orchestrator.ledger.protocol import LedgerState

if TYPE_CHECKING:  # openpyxl loads when a workbook is written, not at start-up
    from openpyxl.cell.cell import Cell
    from openpyxl.styles import Font
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

RESULTS_XLSX_NAME = "results.xlsx"
SHEET_TITLE = "results"
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
LINK_COLUMNS = frozenset(
    (
        "file",
        "poster",
        "preview_gif",
        "video_url",
        "thumbnail_url",
        "share_url",
        "srt_url",
        "vtt_url",
        "txt_url",
        "email_url",
        "delivered_url",
    )
)
"""Our columns whose cells are links (web links, or files relative to the run directory)."""
NUMBER_COLUMNS = frozenset(("bytes", "attempts", "line", "duration_s", "ai_credits"))
MAX_CELL_CHARS = 32767
"""Excel's most characters in a cell."""
_SHEET_PART = "xl/worksheets/sheet1.xml"
_RELS_PART = "xl/worksheets/_rels/sheet1.xml.rels"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_HYPERLINK_TYPE = f"{_REL_NS}/hyperlink"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CHUNK = 1 << 16


def link_target(value: str) -> str | None:
    """Where a link cell points: an http(s) URL as it is, a relative path percent-encoded;
    None for anything else (another scheme, an absolute path, a blank or control character)."""
    if not value or _CONTROL.search(value):
        return None
    if value.startswith(("https://", "http://")):
        return None if " " in value else value
    if ":" in value or value.startswith(("/", "\\")) or "\\" in value:
        return None
    return quote(value, safe="/")


def write_results_xlsx(
    path: Path, user_columns: list[str], our_columns: Iterable[str], lines: Iterable[list[str]]
) -> None:
    """Write the workbook at ``path``: a header of ``user_columns`` then ``our_columns``, and
    each of ``lines`` (cells in the same order, as ``results.csv`` holds them)."""
    ours = list(our_columns)
    first_ours = len(user_columns)
    kinds = [""] * first_ours + [
        "link" if c in LINK_COLUMNS else "number" if c in NUMBER_COLUMNS else "" for c in ours
    ]
    stamp = f"{os.getpid()}.{secrets.token_hex(4)}"
    sheet_tmp = path.with_name(f".{path.name}.{stamp}.sheet")
    final_tmp = path.with_name(f".{path.name}.{stamp}.tmp")
    try:
        with writing(path), tempfile.TemporaryFile("w+", encoding="utf-8") as links:
            _write_sheet(sheet_tmp, [*user_columns, *ours], kinds, lines, links)
            links.seek(0)
            with open(final_tmp, "wb", opener=private_opener) as out:
                _add_hyperlinks(sheet_tmp, out, links)
                out.flush()
                os.fsync(out.fileno())
            move_into_place(final_tmp, path)
    finally:
        for tmp in (sheet_tmp, final_tmp):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _write_sheet(
    path: Path, header: list[str], kinds: list[str], lines: Iterable[list[str]], links: IO[str]
) -> None:
    """The workbook without its hyperlinks (spooled to ``links`` as ``REF<TAB>TARGET`` lines)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(SHEET_TITLE)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    text_cell = _text_cells(sheet)
    sheet.append([text_cell(name, bold) for name in header])
    letters = [_column_letter(i + 1) for i in range(len(kinds))]
    for number, cells in enumerate(lines, start=2):
        row: list[object] = []
        for i, value in enumerate(cells):
            kind = kinds[i] if i < len(kinds) else ""
            if kind == "number" and value:
                try:
                    row.append(float(value) if "." in value else int(value))
                    continue
                except ValueError:
                    pass
            cell = text_cell(value)
            target = link_target(value) if kind == "link" else None
            if target is not None:
                cell.style = "Hyperlink"
                links.write(f"{letters[i]}{number}\t{target}\n")
            row.append(cell)
        sheet.append(row)
    workbook.save(path)


def _text_cells(sheet: WriteOnlyWorksheet) -> Callable[..., Cell]:
    """``text_cell(value, font=None)``: a cell of ``sheet`` holding ``value`` as text (never a
    formula), XML-safe, at most Excel's length."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def text_cell(value: str, font: Font | None = None) -> Cell:
        cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value)[:MAX_CELL_CHARS])
        cell.data_type = "s"
        if font is not None:
            cell.font = font
        return cell

    return text_cell


def _column_letter(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _add_hyperlinks(source: Path, out: IO[bytes], links: IO[str]) -> None:
    """Copy the workbook at ``source`` into ``out``, its sheet given a ``<hyperlinks>`` element
    after its rows and a relationship per link (both streamed from ``links``)."""
    has_links = bool(links.readline())
    links.seek(0)
    with (
        zipfile.ZipFile(source) as zin,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout,
    ):
        for info in zin.infolist():
            if info.filename == _SHEET_PART and has_links:
                with zin.open(info) as src, zout.open(_SHEET_PART, "w", force_zip64=True) as dst:
                    _copy_sheet(src, dst, links)
                links.seek(0)
            elif info.filename == _RELS_PART:  # openpyxl writes none for a write-only sheet
                raise ValueError(f"{_RELS_PART}: unexpected in a write-only workbook")
            else:
                with zin.open(info) as src, zout.open(info.filename, "w") as dst:
                    while chunk := src.read(_CHUNK):
                        dst.write(chunk)
        if has_links:
            with zout.open(_RELS_PART, "w", force_zip64=True) as dst:
                dst.write(
                    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                    b'relationships">'
                )
                for n, line in enumerate(links, start=1):
                    target = line.rstrip("\n").split("\t", 1)[1]
                    dst.write(
                        f'<Relationship Id="rId{n}" Type="{_HYPERLINK_TYPE}" '
                        f'Target={quoteattr(target)} TargetMode="External"/>'.encode()
                    )
                dst.write(b"</Relationships>")


def _copy_sheet(src: IO[bytes], dst: IO[bytes], links: IO[str]) -> None:
    """The sheet's XML with the relationships namespace declared on its root and the
    ``<hyperlinks>`` element right after ``</sheetData>`` (where the schema puts it)."""
    end = b"</sheetData>"
    carry = b""
    first = True
    while True:
        chunk = src.read(_CHUNK)
        data = carry + chunk
        if first:
            data = data.replace(b"<worksheet ", f'<worksheet xmlns:r="{_REL_NS}" '.encode(), 1)
            first = False
        at = data.find(end)
        if at >= 0:
            dst.write(data[: at + len(end)])
            dst.write(b"<hyperlinks>")
            for n, line in enumerate(links, start=1):
                ref = line.split("\t", 1)[0]
                dst.write(f'<hyperlink ref="{ref}" r:id="rId{n}"/>'.encode())
            dst.write(b"</hyperlinks>")
            dst.write(data[at + len(end) :])
            while rest := src.read(_CHUNK):
                dst.write(rest)
            return
        if not chunk:
            raise ValueError(f"{_SHEET_PART}: no </sheetData>")
        keep = len(end) - 1
        dst.write(data[:-keep])
        carry = data[-keep:]


def workbook_manifest(state: LedgerState) -> tuple[Path, ManifestOptions] | None:
    """The batch's manifest and its options when it is a workbook (its latest session's
    record), else None."""
    record = state.runs[-1] if state.runs else None
    if record is None or not record.manifest:
        return None
    path = Path(record.manifest)
    if path.suffix.lower() not in WORKBOOK_SUFFIXES:
        return None
    return path, ManifestOptions.from_record(record.manifest_options)


def sheet_headers(manifest: Path, options: ManifestOptions, names: list[str]) -> list[str]:
    """``names`` (the row's columns as ``results.csv`` names them: a friendly header read as
    its variable) spelled as the sheet's header spells them (``First Name``), from its first
    row; as they are when the workbook cannot be read now."""
    try:
        first = next(iter(read_manifest(manifest, options)), None)
    except (UserError, OSError):
        return names
    spelled = list(first.variables) if first is not None else []
    by_key = {header_key(h): h for h in spelled}
    return [n if n in spelled else by_key.get(header_key(n), n) for n in names]


def write_workbook_results(
    out_dir: Path,
    state: LedgerState,
    names: list[str],
    ours: Sequence[str],
    lines: Callable[[], Iterable[list[str]]],
) -> Path | None:
    """``OUT_DIR/results.xlsx`` when the batch's manifest is a workbook (else nothing; None):
    ``lines()`` gives ``results.csv``'s lines (``ours``, then the row's ``names``), each
    written with the row's columns first. A column of the row named like one of ours is
    ``NAME (manifest)``, as in ``results.csv``."""
    workbook = workbook_manifest(state)
    if workbook is None:
        return None
    spelled = sheet_headers(*workbook, names)
    header = [f"{h} (manifest)" if n in ours else h for n, h in zip(names, spelled, strict=True)]
    path = out_dir / RESULTS_XLSX_NAME
    first = len(ours)
    write_results_xlsx(path, header, ours, ([*ln[first:], *ln[:first]] for ln in lines()))
    return path
