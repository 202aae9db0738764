"""Reading a large workbook in little memory: openpyxl's read-only reader, with three fixes.

openpyxl does the unzipping, the XML of each cell (types, shared strings, dates from serial
numbers, the styles and their number formats); we change what makes its memory grow with rows:

- Opening a read-only sheet looks for its recorded dimensions; when a writer recorded none
  (openpyxl's own write-only mode, some exporters) openpyxl parses the whole sheet to find out,
  keeping every parsed element. We skip that: rows are read until they end.
- Reading a read-only sheet leaves each parsed (cleared) row element in the XML tree, about 85
  bytes a row: 85 MB for a million rows. :class:`_RowParser` drops each row once parsed, and skips
  building openpyxl's cell objects (the values come straight from its cell parser).
- The shared strings:

An ``.xlsx`` stores each distinct text once, in ``xl/sharedStrings.xml``, and cells refer to it by
index; openpyxl reads the whole table into a list of ``str`` even in read-only mode. For a
million-row sheet of names and ids that is two million strings, about 85 MB: more than half the
memory ``validate`` may use. :class:`SharedStrings` keeps the table as UTF-8 bytes instead, with a
4-byte end offset per string; past ``IN_MEMORY_MAX_BYTES`` the bytes go to an anonymous temporary
file (deleted when closed) and each lookup is one ``pread``. :class:`StreamingExcelReader` is
openpyxl's own reader with only that table swapped in.

Hostile workbooks: the reader opens the zip through :class:`~.xlsx_guard.GuardedZip`, so every
part is read within its budget and none declaring a DTD is parsed; the sheet and the shared
strings are parsed by Python's C parser (see :mod:`.xlsx_guard`), the sheet only to the end of
its rows. A cell openpyxl cannot read is an :class:`~.xlsx_guard.UnreadableWorkbook` naming
its row.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, overload
from xml.etree.ElementTree import iterparse

from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE
from openpyxl.utils.exceptions import CellCoordinatesException
from openpyxl.xml.constants import SHEET_MAIN_NS

from orchestrator.input.cell_format import cell_text
from orchestrator.input.xlsx_guard import (
    CountedPart,
    GuardedZip,
    UnreadableWorkbook,
    check_directory,
)

# openpyxl's reader internals are not in its type stubs; they are Any here, and only here.
_excel: Any = importlib.import_module("openpyxl.reader.excel")
_read_only: Any = importlib.import_module("openpyxl.worksheet._read_only")
_reader: Any = importlib.import_module("openpyxl.worksheet._reader")

IN_MEMORY_MAX_BYTES = 8 * 1024 * 1024
_FLUSH_BYTES = 1024 * 1024
_SI = f"{{{SHEET_MAIN_NS}}}si"
_T = f"{{{SHEET_MAIN_NS}}}t"
_R = f"{{{SHEET_MAIN_NS}}}r"
_ROW = f"{{{SHEET_MAIN_NS}}}row"
_SHEET_DATA = f"{{{SHEET_MAIN_NS}}}sheetData"
_CELL_ERRORS = (
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    CellCoordinatesException,
)
"""What openpyxl's cell parser raises on a cell it cannot read (a shared string that is not in
the table, a number that is not one, a malformed reference...)."""


class SharedStrings(Sequence[str]):
    """Strings by index, stored as UTF-8 in memory or in a temporary file."""

    def __init__(self) -> None:
        self._ends = array("I")
        self._buffer = bytearray()
        self._size = 0
        self._file: IO[bytes] | None = None
        self._data = b""

    def append(self, text: str) -> None:
        data = text.encode("utf-8")
        self._buffer += data
        self._size += len(data)
        self._ends.append(self._size)
        if len(self._buffer) >= _FLUSH_BYTES and (self._file or self._size > IN_MEMORY_MAX_BYTES):
            self._spill()

    def _spill(self) -> None:
        if self._file is None:  # closed by close(), after the sheet is read
            self._file = tempfile.TemporaryFile(prefix="orchestrator-strings-")  # noqa: SIM115
        self._file.write(self._buffer)
        self._buffer = bytearray()

    def finish(self) -> SharedStrings:
        if self._file is not None:
            self._spill()
            self._file.flush()
        else:
            self._data = bytes(self._buffer)
            self._buffer = bytearray()
        return self

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self._ends):
            raise IndexError(f"it names shared string {index}; the workbook holds {len(self)}")
        end = self._ends[index]
        start = self._ends[index - 1] if index > 0 else 0
        if self._file is None:
            return self._data[start:end].decode("utf-8")
        return os.pread(self._file.fileno(), end - start, start).decode("utf-8")


def read_shared_strings(source: CountedPart) -> SharedStrings:
    """Parse ``sharedStrings.xml`` element by element, dropping each once read."""
    strings = SharedStrings()
    try:
        events = iterparse(source, events=("start", "end"))
        root: Any = None
        for event, node in events:
            if root is None:
                root = node
            if event == "end" and node.tag == _SI:
                strings.append(_si_text(node).replace("x005F_", ""))
                root.clear()  # keep no parsed element behind: the table may hold millions
                source.element_ended()
        return strings.finish()
    except BaseException:
        strings.close()  # its temporary file, when a problem stops the reading
        raise


def _si_text(node: Any) -> str:
    """Plain text of an ``<si>``: its ``<t>``, or its rich-text runs; phonetic hints skipped."""
    plain = node.find(_T)
    if plain is not None:
        return plain.text or ""
    return "".join(run.findtext(_T) or "" for run in node.iterfind(_R))


class _Sheet(_read_only.ReadOnlyWorksheet):  # type: ignore[misc]
    def _get_source(self) -> CountedPart:
        archive: GuardedZip = self.parent._archive
        return archive.open_stream(self._worksheet_path)

    def _get_size(self) -> None:
        """Skip reading the recorded dimensions: they are not trusted anyway, and for a sheet that
        records none openpyxl would parse the whole sheet once, keeping every element of it."""

    def text_rows(self) -> Iterator[tuple[int, list[str]]]:
        """``(row number, cell texts)`` for each row the sheet records, cells by column (gaps
        filled with ``""``), each shown through its number format."""
        workbook = self.parent
        formats: dict[int, str] = {}
        with self._get_source() as source:
            parser = _RowParser(
                source,
                self._shared_strings,
                data_only=True,
                epoch=workbook.epoch,
                date_formats=workbook._date_formats,
                timedelta_formats=workbook._timedelta_formats,
            )
            for number, cells in parser.rows():
                texts: list[str] = []
                for cell in cells:
                    value = cell["value"]
                    if type(value) is not str:
                        style = cell["style_id"] or 0
                        fmt = formats.get(style)
                        if fmt is None:
                            fmt = formats[style] = _number_format(workbook, style, number)
                        value = cell_text(value, fmt)
                    column = cell["column"]
                    if column > len(texts) + 1:
                        texts.extend([""] * (column - len(texts) - 1))
                    texts.append(value)
                yield number, texts


def _number_format(workbook: Any, style_id: int, row: int) -> str:
    try:
        fmt_id = workbook._cell_styles[style_id].numFmtId
        if fmt_id < BUILTIN_FORMATS_MAX_SIZE:
            return str(BUILTIN_FORMATS.get(fmt_id, "General"))
        return str(workbook._number_formats[fmt_id - BUILTIN_FORMATS_MAX_SIZE])
    except IndexError:
        raise UnreadableWorkbook(
            f"a cell of this row has style {style_id}, which the workbook's styles do not hold",
            row=row,
        ) from None


class _RowParser(_reader.WorkSheetParser):  # type: ignore[misc]
    """openpyxl's sheet parser, reading only rows and dropping each once parsed (its own
    ``parse`` leaves every row element in the tree, about 85 bytes a row), and stopping at the
    end of the rows (what follows them, merged cells or validations, is not ours to read)."""

    def rows(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        source: CountedPart = self.source
        sheet_data: Any = None
        number = 0
        quiet = bool(self.date_formats)  # openpyxl warns of a date cell out of range
        for event, element in iterparse(source, events=("start", "end")):
            if event == "start":
                if element.tag == _SHEET_DATA:
                    sheet_data = element
                continue
            if element.tag == _SHEET_DATA:
                return
            if element.tag != _ROW:
                continue
            number = _row_number(element.get("r"), number)
            self.row_counter, self.col_counter = number, 0
            try:
                if quiet:
                    with warnings.catch_warnings():  # it shows as #VALUE!, as Excel shows ####
                        warnings.simplefilter("ignore", UserWarning)
                        cells = [self.parse_cell(child) for child in element]
                else:
                    cells = [self.parse_cell(child) for child in element]
            except _CELL_ERRORS as exc:
                raise UnreadableWorkbook(
                    f"a cell of this row cannot be read ({exc or type(exc).__name__})", row=number
                ) from None
            if sheet_data is not None:
                sheet_data.clear()
            source.element_ended()
            yield number, cells


def _row_number(r: str | None, previous: int) -> int:
    """A row's number: its ``r`` attribute (Excel writes one), else the one after ``previous``."""
    if not r:
        return previous + 1
    try:
        return int(r)
    except ValueError:
        pass
    try:
        return int(float(r))  # some writers put "7.0"
    except (ValueError, OverflowError):
        raise UnreadableWorkbook(
            f"the row after row {previous} is numbered {r[:20]!r}, which is not a number"
        ) from None


class StreamingExcelReader(_excel.ExcelReader):  # type: ignore[misc]
    """openpyxl's read-only reader, changed for large sheets: shared strings go into a
    :class:`SharedStrings`, and sheets are neither parsed when opened nor kept while read; its
    zip is a :class:`GuardedZip` allowing ``max_rows`` rows."""

    def __init__(self, path: Path, *, max_rows: int) -> None:
        check_directory(path)  # before openpyxl's own zip reads the directory
        super().__init__(path, read_only=True, data_only=True, keep_links=False)
        self.archive.close()  # openpyxl's own, unguarded
        self.archive: GuardedZip = GuardedZip(path, max_rows=max_rows)
        self.valid_files = self.archive.namelist()

    def read_worksheets(self) -> None:
        for sheet, rel in self.parser.find_sheets():
            if rel.target not in self.valid_files or "chartsheet" in rel.Type:
                continue
            worksheet = _Sheet(self.wb, sheet.name, rel.target, self.shared_strings)
            worksheet.sheet_state = sheet.state
            self.wb._sheets.append(worksheet)

    def read_strings(self) -> None:
        part = self.package.find(_excel.SHARED_STRINGS)
        if part is not None:
            with self.archive.open_stream(part.PartName[1:]) as source:
                self.shared_strings = read_shared_strings(source)
