"""A workbook's zip, opened so that a hostile ``.xlsx`` costs neither memory nor time.

An ``.xlsx`` is a zip of XML parts, and four tricks make a small one expensive. Each is refused
with :class:`UnreadableWorkbook`, naming the part and the cause:

- **A zip bomb**: parts that unzip to far more than the file holds (10 MB of zip, 2.6 GB of sheet
  XML). Each part is checked against its budget by the size the zip declares, before a byte is
  unzipped, and counted while it streams, since a zip can lie. The sheet and its shared strings
  may each unzip to ``XML_BYTES_PER_ROW`` per allowed row (1 KiB: about 1 GB at the default cap
  of a million rows); every other part openpyxl reads whole (workbook, relationships, styles,
  theme, properties) to ``MAX_PART_BYTES``.
- **A zip of countless parts**: zipfile reads the zip's directory whole and makes an object of
  each entry (about 1 KB each, with openpyxl's list of names), so 90 MB of empty entries would
  take a gigabyte; a directory larger than ``MAX_DIRECTORY_BYTES`` is refused before it is read.
- **A runaway element**: the XML parser holds an element whole until it ends, so one row of the
  sheet, or one shared string, may take at most ``MAX_ELEMENT_BYTES`` of XML.
- **A DTD**: entity bombs ("billion laughs") and external entities (reading a file or a URL) are
  declared in a ``<!DOCTYPE>``. The packaging standard forbids DTDs in a workbook (ECMA-376
  Part 2, rule M1.18), and well-formed XML can hold one only before its first element, so each
  part's prolog is read first (in the encoding the parser would read it in) and one declaring a
  DTD is refused before any parser sees it: what defusedxml's ``forbid_dtd`` does, at the speed
  of Python's C parser (defusedxml swaps in the pure-Python one, which parses a sheet about 1.5
  times slower). tests/fuzz/test_fuzz_workbooks.py checks the two agree.

openpyxl's own parsers sit behind the same checks whichever it picked: with ``defusedxml``
installed (a dependency) it parses with it unless ``OPENPYXL_DEFUSEDXML=False``; with ``lxml``
installed its ``fromstring`` is lxml's, with ``resolve_entities=False``.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from orchestrator.input.row import RAISE_THE_CAP

XML_BYTES_PER_ROW = 1024
"""What the sheet, and its shared strings, may each unzip to per allowed row. A row of ten
shared-string cells is about 500 bytes of sheet XML, as Excel writes it."""
MAX_PART_BYTES = 16 * 1024 * 1024
"""Any other part, read whole by openpyxl. Excel's limit of 64,000 cell formats keeps a genuine
``styles.xml`` near 10 MB; the other parts are a few kilobytes."""
MAX_DIRECTORY_BYTES = 4 * 1024 * 1024
"""The zip's directory: about 40,000 parts (a workbook has tens, a few thousand with images)."""
MAX_ELEMENT_BYTES = 8 * 1024 * 1024
"""One row of the sheet, or one shared string (Excel's cells hold at most 32,767 characters)."""
_RESAVE = "open it in Excel or LibreOffice and save it again as .xlsx"
_ENCRYPTED = 0x1
"""The zip flag of an encrypted entry (zipfile would ask for a password)."""
_PROLOG_CHUNK = 4096
_TAIL_BYTES = 22 + 0xFFFF + 20
"""A zip's end record, the longest comment it may carry, and the 64-bit locator before it."""


class UnreadableWorkbook(Exception):
    """A workbook refused: too large or declaring a DTD (``unsafe``), or damaged. ``cause`` and
    ``hint`` are for people; ``row`` is the sheet's row where there is one. ``xlsx.xlsx_rows``
    turns it into a :class:`~orchestrator.errors.ManifestError`."""

    def __init__(
        self, cause: str, hint: str = _RESAVE, *, row: int | None = None, unsafe: bool = False
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.hint = hint
        self.row = row
        self.unsafe = unsafe


def too_large(part: str, size: int | None, budget: int, max_rows: int | None) -> UnreadableWorkbook:
    """``part`` unzips to ``size`` bytes (None: to more than ``budget``, and more than the zip
    declared); ``max_rows`` is the row cap its budget follows (None: a fixed budget)."""
    amount = f"{size:,} bytes" if size is not None else "more than its zip entry declares"
    if max_rows is None:
        return UnreadableWorkbook(
            f"{part} unzips to {amount}, past the {budget:,} bytes a part of a workbook may hold",
            f"this is not a manifest Excel saves; {_RESAVE}",
            unsafe=True,
        )
    return UnreadableWorkbook(
        f"{part} unzips to {amount}, past the {budget:,} bytes allowed for {max_rows:,} rows "
        f"({XML_BYTES_PER_ROW:,} bytes a row)",
        f"a workbook this large is not a manifest; if it really is one, raise the row cap: "
        f"{RAISE_THE_CAP}",
        unsafe=True,
    )


def check_directory(path: Path) -> None:
    """Refuse a zip whose directory is larger than ``MAX_DIRECTORY_BYTES``, reading only its
    end record, where zipfile finds the directory's size (its 64-bit one too); a file without
    one is left for zipfile to refuse."""
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        f.seek(max(0, end - _TAIL_BYTES))
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return
        size = int.from_bytes(tail[at + 12 : at + 16], "little")
        locator = at - 20
        if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            f.seek(int.from_bytes(tail[locator + 8 : locator + 16], "little"))
            record = f.read(56)
            if len(record) == 56 and record[:4] == b"PK\x06\x06":
                size = int.from_bytes(record[40:48], "little")
    if size > MAX_DIRECTORY_BYTES:
        raise UnreadableWorkbook(
            f"its zip's directory of parts takes {size:,} bytes, past the "
            f"{MAX_DIRECTORY_BYTES:,} a workbook's may (tens of thousands of parts)",
            f"this is not a manifest Excel saves; {_RESAVE}",
            unsafe=True,
        )


class GuardedZip(zipfile.ZipFile):
    """A workbook's zip whose parts are opened within their budgets, DTDs refused.

    ``open`` (what openpyxl calls) gives a part read whole, at most ``MAX_PART_BYTES``;
    ``open_stream`` (the sheet, the shared strings) a :class:`CountedPart`."""

    def __init__(self, file: Path, *, max_rows: int) -> None:
        check_directory(file)
        super().__init__(file)
        self.max_rows = max_rows
        self.stream_max_bytes = max_rows * XML_BYTES_PER_ROW

    def open(
        self,
        name: str | zipfile.ZipInfo,
        mode: Literal["r", "w"] = "r",
        pwd: bytes | None = None,
        *,
        force_zip64: bool = False,
    ) -> IO[bytes]:
        if mode != "r":
            raise ValueError("a workbook is only read here")
        info = self._info(name)
        if info.file_size > MAX_PART_BYTES:
            raise too_large(info.filename, info.file_size, MAX_PART_BYTES, None)
        with super().open(info, pwd=pwd) as raw:
            data = raw.read(MAX_PART_BYTES + 1)
        if len(data) > MAX_PART_BYTES:  # more than it declared
            raise too_large(info.filename, None, MAX_PART_BYTES, None)
        check_prolog(info.filename, data, final=True)
        return io.BytesIO(data)

    def open_stream(self, name: str) -> CountedPart:
        """A part too large to read whole, streamed within ``stream_max_bytes``."""
        info = self._info(name)
        if info.file_size > self.stream_max_bytes:
            raise too_large(info.filename, info.file_size, self.stream_max_bytes, self.max_rows)
        raw = super().open(info)
        try:
            return CountedPart(raw, info.filename, self.stream_max_bytes, self.max_rows)
        except BaseException:
            raw.close()  # a refused prolog: the zip's file is closed with the zip
            raise

    def _info(self, name: str | zipfile.ZipInfo) -> zipfile.ZipInfo:
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        if info.flag_bits & _ENCRYPTED:
            raise UnreadableWorkbook(
                f"{info.filename} is encrypted in the zip",
                "save the workbook again without a password",
            )
        return info


class CountedPart:
    """A part as its parser reads it: counted against its budget, and against
    ``MAX_ELEMENT_BYTES`` since the parser last ended an element (``element_ended``). Its
    prolog is checked (``check_prolog``) before the first byte is handed on."""

    def __init__(self, raw: IO[bytes], name: str, max_bytes: int, max_rows: int) -> None:
        self._raw = raw
        self.name = name
        self._max_bytes = max_bytes
        self._max_rows = max_rows
        self.count = 0
        self._mark = 0
        self.elements = 0
        """Elements ended so far (rows of a sheet, strings of the table): for messages."""
        self._head = self._read_prolog()

    def _read_prolog(self) -> bytes:
        head = b""
        while True:  # each read as long as all before it: a long prolog is scanned a few times
            data = self._raw.read(max(_PROLOG_CHUNK, len(head)))
            head += data
            if len(head) > MAX_ELEMENT_BYTES:
                raise UnreadableWorkbook(
                    f"{self.name} holds no element in its first {MAX_ELEMENT_BYTES:,} bytes",
                    unsafe=True,
                )
            if check_prolog(self.name, head, final=not data):
                return head

    def read(self, size: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
        else:
            data = self._raw.read(size)
        self.count += len(data)
        if self.count > self._max_bytes:  # the zip declared less: zipfile stops there, we too
            raise too_large(self.name, None, self._max_bytes, self._max_rows)
        if self.count - self._mark > MAX_ELEMENT_BYTES:
            after = f"after its element {self.elements:,}" if self.elements else "from its start"
            raise UnreadableWorkbook(
                f"{self.name} runs more than {MAX_ELEMENT_BYTES:,} bytes {after} without "
                "ending a row or a string",
                f"a cell holds at most 32,767 characters in Excel; {_RESAVE}",
                unsafe=True,
            )
        return data

    def element_ended(self) -> None:
        """The parser has ended a row (or a string): the next may take ``MAX_ELEMENT_BYTES``."""
        self._mark = self.count
        self.elements += 1

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> CountedPart:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_prolog(name: str, head: bytes, *, final: bool) -> bool:
    """Refuse a part whose prolog (what comes before its first element) declares a DTD. True
    once the first element is reached (or the bytes are not XML at all: the parser says so);
    False when ``head`` ends before that and is not ``final``."""
    text = _decoded(head)
    i, end = 0, len(text)
    while True:
        while i < end and text[i] in " \t\r\n":
            i += 1
        if end - i < 4 and not final:  # "<!--" and "<!DO" cannot be told apart yet
            return False
        if text.startswith("<?", i) or text.startswith("<!--", i):
            opener, terminator = ("<?", "?>") if text[i + 1] == "?" else ("<!--", "-->")
            close = text.find(terminator, i + len(opener))
            if close < 0:
                return final
            i = close + len(terminator)
        elif text.startswith("<!", i):
            entities = "<!ENTITY" in text[i:]
            raise UnreadableWorkbook(
                f"{name} declares "
                + ("XML entities" if entities else "a document type (<!DOCTYPE>)")
                + ", which a spreadsheet never holds: it is how entity-expansion bombs and "
                "reads of other files are built",
                unsafe=True,
            )
        else:
            return True


def _decoded(head: bytes) -> str:
    """The start of a part as text, enough to read its markup, told apart as the XML parser
    (expat) does: a byte-order mark, else a NUL first (UTF-16 big-endian) or second (little-
    endian), else ASCII-compatible (UTF-8, Latin-1...: markup is ASCII in all of them)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return head[3:].decode("latin-1")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec, body = ("utf-16-le" if head[0] == 0xFF else "utf-16-be"), head[2:]
    elif head[:1] == b"\x00":
        codec, body = "utf-16-be", head
    elif head[1:2] == b"\x00":
        codec, body = "utf-16-le", head
    else:
        return head.decode("latin-1")
    return body[: len(body) // 2 * 2].decode(codec, errors="replace")
