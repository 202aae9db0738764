"""Read an Excel workbook (``.xlsx``, ``.xlsm``; Excel and Google Sheets exports) as a manifest.

The first sheet unless ``--sheet NAME``. The first non-empty row is the header; rows whose cells
are all empty (a trailing formatted row, a gap) are skipped, as in CSV. Empty columns at the right
of the header are ignored; a value under no header is an error. Cells are read as the user sees
them: numbers, percentages and dates through their number format (:mod:`.cell_format`);
formulas give their last computed value (as Excel saved it).

Memory: openpyxl in read-only mode streams the sheet's XML, so one row is held at a time whatever
the sheet's size; its table of shared strings is kept compact (:mod:`.xlsx_stream`).
Dimensions recorded in the file are not trusted (some writers record ``A1``).

Hostile files: every part is read within a budget (the sheet and shared strings, 1 KiB of XML per
allowed row; see :mod:`.xlsx_guard`) and a part declaring a DTD is refused, as are the rows past
the cap; damaged zips, XML and cells are refused too. Each is one :class:`ManifestError` naming
the cause, never a traceback.

Problems are located as ``FILE[Sheet]:ROW:COLUMN`` (``customers.xlsx[Customers]:7:C``).
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from orchestrator.errors import ManifestError
from orchestrator.input.reading import Reading
from orchestrator.input.row import ManifestOptions, ManifestRow
from orchestrator.input.table import check_header, header_rows
from orchestrator.input.xlsx_guard import UnreadableWorkbook
from orchestrator.input.xlsx_stream import SharedStrings, StreamingExcelReader

_RESAVE = "open it in Excel or LibreOffice and save it again as .xlsx"
_DAMAGED_ZIP = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)
"""What zipfile raises on a damaged, truncated or oddly compressed entry (an encrypted one is
refused before: ``xlsx_guard``)."""
_DAMAGED_PARTS = (ValueError, TypeError, KeyError, IndexError, AttributeError, InvalidFileException)
"""What openpyxl raises on parts (workbook, relationships, styles) it cannot make sense of."""


def xlsx_rows(manifest: Reading, options: ManifestOptions) -> Iterator[ManifestRow]:
    """The workbook's rows. A workbook too large for the row cap, declaring a DTD, or damaged
    (its zip, its XML or a cell) is one problem naming the cause (and the row, for a cell)."""
    try:
        yield from _rows(manifest, options)
    except UnreadableWorkbook as exc:
        raise ManifestError(
            f"cannot read the workbook{' safely' if exc.unsafe else ''}: {exc.cause}",
            file=manifest.label,
            line=exc.row,
            hint=exc.hint,
        ) from None
    except ElementTree.ParseError as exc:
        raise ManifestError(
            f"cannot read the workbook: its XML is damaged ({exc})",
            file=manifest.label,
            hint=_RESAVE,
        ) from None
    except _DAMAGED_ZIP as exc:
        raise ManifestError(
            f"cannot read the workbook: it is damaged ({exc})", file=manifest.label, hint=_RESAVE
        ) from None


def _rows(manifest: Reading, options: ManifestOptions) -> Iterator[ManifestRow]:
    path = manifest.path
    try:
        reader = StreamingExcelReader(path, max_rows=manifest.max_rows)
    except (zipfile.BadZipFile, InvalidFileException, OSError) as exc:
        raise _cannot_open(path, exc) from exc
    cells_by_row: Any = None
    try:
        try:
            with warnings.catch_warnings():  # openpyxl's notes about styles it defaults: not ours
                warnings.simplefilter("ignore", UserWarning)
                reader.read()
        except _DAMAGED_PARTS as exc:
            raise _cannot_open(path, exc.__cause__ or exc) from exc
        workbook: Any = reader.wb
        names = workbook.sheetnames
        if not workbook.worksheets:
            raise ManifestError("the workbook has no worksheet", file=path, hint=_RESAVE)
        if options.sheet is None:
            sheet = workbook.worksheets[0]
        elif options.sheet in names:
            sheet = workbook[options.sheet]
        else:
            raise ManifestError(
                f"the workbook has no sheet {options.sheet!r}; it has: "
                + ", ".join(repr(n) for n in names),
                file=path,
                hint="pass one of those names to --sheet",
            )
        label = f"{path}[{sheet.title}]"
        manifest.label = label
        manifest.description = "Excel workbook"
        cells_by_row = sheet.text_rows()
        records = ((number, cells) for number, cells in cells_by_row if "".join(cells).strip())
        header_line, cells = next(records, (0, []))
        while cells and not cells[-1].strip():
            cells.pop()
        header = [cell.strip() for cell in cells]
        others = [repr(n) for n in names if n != sheet.title]
        pick = f"; or pick another sheet with --sheet ({', '.join(others)})" if others else ""
        if not header:
            raise ManifestError("the sheet is empty", file=label, hint=f"add a header row{pick}")
        manifest.columns = {name: get_column_letter(i) for i, name in enumerate(header, start=1)}
        for number, name in enumerate(header, start=1):
            if not name:
                raise ManifestError(
                    "this header cell is empty",
                    file=label,
                    line=header_line,
                    column=get_column_letter(number),
                    hint="name every column, or delete the empty column",
                )
        check_header(label, header_line, header)
        fitted = _fitted(label, records, len(header))
        rows = header_rows(manifest, header_line, header, fitted, options.strict_headers)
        try:
            yield from rows
        except ManifestError as exc:
            if pick and exc.line == header_line and "no rows" in exc.message:
                exc.hint = f"{exc.hint}{pick}"
                exc.args = (exc.render(),)
            raise
    finally:
        if cells_by_row is not None:
            cells_by_row.close()  # the sheet's XML stream, when a problem stops the reading
        reader.archive.close()
        if isinstance(reader.shared_strings, SharedStrings):
            reader.shared_strings.close()


def _cannot_open(path: object, exc: BaseException) -> ManifestError:
    return ManifestError(
        f"cannot open the workbook ({exc})",
        file=str(path),
        hint="save it from Excel or Google Sheets as an .xlsx workbook (an .xls file from "
        "older Excel versions must be re-saved as .xlsx)",
    )


def _fitted(
    label: str, records: Iterator[tuple[int, list[str]]], width: int
) -> Iterator[tuple[int, list[str]]]:
    """Rows cut or padded to the header's width; a value right of the header is refused."""
    for number, cells in records:
        if len(cells) > width:
            extra = next((i for i in range(width, len(cells)) if cells[i].strip()), None)
            if extra is not None:
                raise ManifestError(
                    f"this cell holds {cells[extra][:40]!r} but its column has no header",
                    file=label,
                    line=number,
                    column=get_column_letter(extra + 1),
                    hint="name the column in the header row, or clear the cell",
                )
            del cells[width:]
        elif len(cells) < width:
            cells.extend([""] * (width - len(cells)))
        yield number, cells
