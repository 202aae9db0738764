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
"""

from __future__ import annotations

import importlib
import os
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from typing import IO, Any, overload

from openpyxl.styles.numbers import BUILTIN_FORMATS, BUILTIN_FORMATS_MAX_SIZE
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from orchestrator.input.cell_format import cell_text

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
        end = self._ends[index]
        start = self._ends[index - 1] if index > 0 else 0
        if self._file is None:
            return self._data[start:end].decode("utf-8")
        return os.pread(self._file.fileno(), end - start, start).decode("utf-8")


def read_shared_strings(source: IO[bytes]) -> SharedStrings:
    """Parse ``sharedStrings.xml`` element by element, dropping each once read."""
    strings = SharedStrings()
    events = iterparse(source, events=("start", "end"))
    root: Any = None
    for event, node in events:
        if root is None:
            root = node
        if event == "end" and node.tag == _SI:
            strings.append(_si_text(node).replace("x005F_", ""))
            root.clear()  # keep no parsed element behind: the table may hold millions
    return strings.finish()


def _si_text(node: Any) -> str:
    """Plain text of an ``<si>``: its ``<t>``, or its rich-text runs; phonetic hints skipped."""
    plain = node.find(_T)
    if plain is not None:
        return plain.text or ""
    return "".join(run.findtext(_T) or "" for run in node.iterfind(_R))


class _Sheet(_read_only.ReadOnlyWorksheet):  # type: ignore[misc]
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
                            fmt = formats[style] = _number_format(workbook, style)
                        value = cell_text(value, fmt)
                    column = cell["column"]
                    if column > len(texts) + 1:
                        texts.extend([""] * (column - len(texts) - 1))
                    texts.append(value)
                yield number, texts


def _number_format(workbook: Any, style_id: int) -> str:
    fmt_id = workbook._cell_styles[style_id].numFmtId
    if fmt_id < BUILTIN_FORMATS_MAX_SIZE:
        return str(BUILTIN_FORMATS.get(fmt_id, "General"))
    return str(workbook._number_formats[fmt_id - BUILTIN_FORMATS_MAX_SIZE])


class _RowParser(_reader.WorkSheetParser):  # type: ignore[misc]
    """openpyxl's sheet parser, reading only rows and dropping each once parsed (its own
    ``parse`` leaves every row element in the tree, about 85 bytes a row)."""

    def rows(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        sheet_data: Any = None
        number = 0
        for event, element in iterparse(self.source, events=("start", "end")):
            if event == "start":
                if element.tag == _SHEET_DATA:
                    sheet_data = element
                continue
            if element.tag != _ROW:
                continue
            r = element.get("r")
            number = int(float(r)) if r else number + 1
            self.row_counter, self.col_counter = number, 0
            cells = [self.parse_cell(child) for child in element]
            if sheet_data is not None:
                sheet_data.clear()
            yield number, cells


class StreamingExcelReader(_excel.ExcelReader):  # type: ignore[misc]
    """openpyxl's read-only reader, changed for large sheets: shared strings go into a
    :class:`SharedStrings`, and sheets are neither parsed when opened nor kept while read."""

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
            with self.archive.open(part.PartName[1:]) as source:
                self.shared_strings = read_shared_strings(source)
