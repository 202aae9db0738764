"""The workbook reader fed anything: rows (no more than the cap) or one located ``ManifestError``,
never another exception, a warning or a hang.

Workbooks are built part by part, as a hostile or broken writer could: cells of every type with
values that do not fit it, references and row numbers that are not ones, shared-string indexes
and style ids that point nowhere, date formats on numbers out of range, a DTD in any part, parts
missing, parts with bytes overwritten, and raw bytes that are no zip at all."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as defused
from defusedxml import DTDForbidden
from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator.errors import ManifestError
from orchestrator.input.manifest import read_manifest
from orchestrator.input.row import ManifestOptions
from orchestrator.input.xlsx_guard import CountedPart, UnreadableWorkbook, check_prolog

from .strategies import raw_bytes

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="'
    f'application/xml"/><Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"'
    f'/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="{CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{CT}.styles+xml"/></Types>'
)
ROOT_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL_NS}"><Relationship '
    f'Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="{REL_NS}"><sheets>'
    '<sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL_NS}">'
    f'<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
    f'<Relationship Id="rId3" Type="{REL_NS}/styles" Target="styles.xml"/></Relationships>'
)


def _styles(formats: list[int]) -> str:
    """A stylesheet whose cell style ``i`` shows number format ``formats[i]`` (14 is a date,
    164 the custom one defined here)."""
    xfs = "".join(
        f'<xf numFmtId="{n}" fontId="0" fillId="0" borderId="0" xfId="0"/>' for n in formats
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="{NS}"><numFmts count="1">'
        '<numFmt numFmtId="164" formatCode="0.00%;[Red]-0.00%"/></numFmts><fonts count="1">'
        '<font><sz val="11"/></font></fonts><fills count="1"><fill><patternFill '
        'patternType="none"/></fill></fills><borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        f'</cellStyleXfs><cellXfs count="{len(formats)}">{xfs}</cellXfs></styleSheet>'
    )


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12).map(
    lambda t: "".join(c for c in t if c in "\t\n\r" or 0x20 <= ord(c) < 0xFFFE)  # XML's
)
numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=False).map(repr),
    st.sampled_from(["1e308", "-1e400", "2958466", "-1", "0", "1.5", "45000"]),
)
wild_values = st.one_of(numbers, texts, st.sampled_from(["", "abc", "TRUE", "1A", "-"]))
good_references = st.builds(
    lambda c, n: f"{c}{n}",
    st.sampled_from(["A", "B", "C", "D", "AA", "XFD"]),
    st.integers(min_value=1, max_value=9),
)
good_styles = st.one_of(st.none(), st.integers(min_value=0, max_value=3).map(str))


def _typed(kind: str | None, values: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A cell as a writer makes it: its type, a value of that type, a style the sheet has."""
    return st.fixed_dictionaries(
        {"t": st.just(kind), "r": st.none(), "s": good_styles, "v": values}
    )


cells = st.one_of(
    _typed("s", st.integers(min_value=0, max_value=2).map(str)),
    _typed(None, numbers),
    _typed("inlineStr", texts),
    _typed("str", texts),
    _typed("b", st.sampled_from(["0", "1"])),
    _typed("d", st.sampled_from(["2026-03-01T10:00:00", "2026-03-01", "10:30:00"])),
    _typed("e", st.sampled_from(["#N/A", "#DIV/0!"])),
)
wild_cells = st.fixed_dictionaries(  # anything at all: types, values, references, styles
    {
        "t": st.sampled_from([None, "s", "n", "b", "str", "inlineStr", "d", "e", "zz"]),
        "r": st.one_of(
            st.none(), good_references, st.sampled_from(["", "1A", "A0", "ZZZZ1", "é1"])
        ),
        "s": st.one_of(good_styles, st.sampled_from(["9", "x", "-1"])),
        "v": st.one_of(st.none(), wild_values),
    }
)
rows = st.lists(cells, min_size=1, max_size=4).map(lambda c: {"r": None, "cells": c})
wild_rows = st.fixed_dictionaries(
    {
        "r": st.one_of(
            st.none(),
            st.integers(min_value=1, max_value=20).map(str),
            st.sampled_from(["7.0", "inf", "nan", "-3", "x", "1e3", ""]),
        ),
        "cells": st.lists(wild_cells, min_size=1, max_size=4),
    }
)


def _cell(cell: dict[str, Any]) -> str:
    attrs = "".join(
        f" {name}={quoteattr(cell[name])}" for name in ("r", "s", "t") if cell[name] is not None
    )
    if cell["t"] == "inlineStr":
        body = f"<is><t>{escape(cell['v'] or '')}</t></is>"
    else:
        body = f"<v>{escape(cell['v'])}</v>" if cell["v"] is not None else ""
    return f"<c{attrs}>{body}</c>"


def _sheet(header: list[str], body: list[dict[str, Any]]) -> str:
    head = "".join(f'<c t="inlineStr"><is><t>{escape(name)}</t></is></c>' for name in header)
    lines = "".join(
        f"<row{'' if row['r'] is None else ' r=' + quoteattr(row['r'])}>"
        + "".join(_cell(c) for c in row["cells"])
        + "</row>"
        for row in body
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><sheetData>'
        f'<row>{head}</row>{lines}</sheetData><mergeCells count="0"/></worksheet>'
    )


def _strings(values: list[str]) -> str:
    items = "".join(f"<si><t>{escape(v)}</t></si>" for v in values)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}">{items}</sst>'


DTD = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
PART_NAMES = [
    "[Content_Types].xml",
    "_rels/.rels",
    "xl/workbook.xml",
    "xl/_rels/workbook.xml.rels",
    "xl/styles.xml",
    "xl/sharedStrings.xml",
    "xl/worksheets/sheet1.xml",
]
damage = st.one_of(
    st.none(),  # half the workbooks are whole
    st.one_of(
        st.tuples(st.just("wild row"), wild_rows),
        st.tuples(st.just("dtd"), st.sampled_from(PART_NAMES)),
        st.tuples(st.just("drop"), st.sampled_from(PART_NAMES)),
        st.tuples(
            st.just("overwrite"),
            st.sampled_from(PART_NAMES),
            st.integers(min_value=0, max_value=400),
            st.binary(min_size=1, max_size=8),
        ),
        st.tuples(st.just("truncate"), st.sampled_from(PART_NAMES), st.integers(0, 300)),
        st.tuples(  # the zip itself: headers, sizes, flags, compressed bytes
            st.just("zip"),
            st.integers(min_value=0, max_value=5000),
            st.binary(min_size=1, max_size=8),
        ),
    ),
)


@st.composite
def workbooks(draw: st.DrawFn) -> bytes:
    """The bytes of an .xlsx assembled from generated parts, maybe damaged in one of them or in
    the zip around them."""
    names = st.sampled_from(["id", "name", "city", "Name", "e-mail", "first name", "note"])
    header = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    parts = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "xl/workbook.xml": WORKBOOK,
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
        "xl/styles.xml": _styles(draw(st.lists(st.sampled_from([0, 14, 9, 164, 46, 400]),
                                               min_size=4, max_size=4))),
        "xl/sharedStrings.xml": _strings(draw(st.lists(texts, min_size=3, max_size=4))),
    }  # fmt: skip
    body = draw(st.lists(rows, min_size=1, max_size=5))
    hit = draw(damage)
    if hit is not None and hit[0] == "wild row":
        body.insert(draw(st.integers(min_value=0, max_value=len(body))), hit[1])
    parts["xl/worksheets/sheet1.xml"] = _sheet(header, body)
    data = {name: text.encode() for name, text in parts.items()}
    if hit is not None and hit[0] not in ("wild row", "zip"):
        kind, name = hit[0], hit[1]
        if kind == "dtd":
            head, sep, rest = data[name].partition(b"?>")
            data[name] = head + sep + DTD.encode() + rest
        elif kind == "drop":
            del data[name]
        elif kind == "overwrite":
            at, junk = hit[2] % max(1, len(data[name])), hit[3]
            data[name] = data[name][:at] + junk + data[name][at + len(junk) :]
        else:
            data[name] = data[name][: hit[2]]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in data.items():
            archive.writestr(name, body)
    if hit is not None and hit[0] == "zip":
        zipped = out.getvalue()
        at, junk = hit[1] % len(zipped), hit[2]
        return zipped[:at] + junk + zipped[at + len(junk) :]
    return out.getvalue()


def _drain(content: bytes, max_rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        path = Path(folder) / "input.xlsx"
        path.write_bytes(content)
        try:
            got = list(read_manifest(path, ManifestOptions(max_rows=max_rows)))
        except ManifestError as exc:
            assert exc.file is not None and exc.file.startswith(str(path))
        else:
            assert len(got) <= max_rows
            assert all(isinstance(v, str) for row in got for v in row.variables.values())


@given(st.one_of(workbooks(), raw_bytes), st.integers(min_value=1, max_value=4))
@example(b"PK\x05\x06" + b"\x00" * 18, 3)  # an empty zip
def test_workbooks_read_or_fail_located(content: bytes, max_rows: int) -> None:
    _drain(content, max_rows)


class _Trickle(io.BytesIO):
    """A stream giving at most 3 bytes a read: a prolog split anywhere."""

    def read(self, size: int | None = -1) -> bytes:
        return super().read(3)


prolog_pieces = st.sampled_from(
    [
        '<?xml version="1.0"?>',
        '<?xml version="1.0" encoding="koi8-r"?>',
        "<!-- a note -->",
        "<?pi data?>",
        " ",
        "\n",
        "<!DOCTYPE r>",
        '<!DOCTYPE r SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE r [<!ENTITY a "b">]>',
        "<r/>",
        "<r>",
        "</r>",
        "&a;",
        "text",
        "<!--",
        "-->",
        "<![CDATA[<!DOCTYPE r>]]>",
    ]
)


@given(
    st.lists(prolog_pieces, min_size=1, max_size=8).map("".join),
    st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "koi8-r", "cp037"]),
)
def test_every_dtd_the_xml_parser_would_read_is_refused_first(text: str, encoding: str) -> None:
    """Whatever precedes it, in any encoding Python's XML parser reads (a single-byte one
    declared, UTF-16 with or without its mark; not EBCDIC, which it refuses): when defusedxml
    (refusing DTDs) finds a DTD, the prolog check has refused the part already, as a whole part
    and as a stream read in small pieces."""
    data = text.encode(encoding)
    try:
        defused.fromstring(data, forbid_dtd=True)
    except DTDForbidden:
        has_dtd = True
    except Exception:  # any other verdict of the parser (not well-formed...): no DTD read
        has_dtd = False
    else:
        has_dtd = False
    try:
        check_prolog("part.xml", data, final=True)
        CountedPart(_Trickle(data), "part.xml", 10**6, 1)
    except UnreadableWorkbook:
        return  # refused: never parsed
    assert not has_dtd
