"""How ``results.csv`` is encoded: its dialect, its cells made inert for spreadsheets, its atomic
write, and reading it back in whatever dialect it was written (``adopt``, the tests).

The dialect (``ResultsDialect``, ``--results-dialect``): by default the file is written like the
manifest, so it opens right where the manifest came from: the same delimiter; UTF-8 (with a
byte-order mark when the manifest had one); UTF-16 with its mark for a UTF-16 manifest (Excel's
"Unicode Text"); for another encoding (``--encoding cp1252``), that encoding when every cell
fits in it, else UTF-8 with a byte-order mark (which Excel reads as UTF-8). A workbook or JSON
manifest gets ``utf8``. ``excel`` is comma-separated UTF-8 with a byte-order mark (Excel's "CSV
UTF-8"), ``excel-eu`` the same with semicolons (Excel where the decimal mark is a comma), and
``utf8`` comma-separated UTF-8 without a mark (for scripts). Lines end with CRLF.

A cell a spreadsheet would run as a formula is prefixed with ``'`` (OWASP's advice against CSV
injection), so opening the file never executes anything: one starting with ``=``, ``+``, ``-``
or ``@`` (or their full-width forms, which some spreadsheets read alike), after leading spaces
too, or with a tab, carriage return or line feed. Header cells too: variable names come from the
manifest. A plain number (``-5``, ``+3.5``, ``-1e-3``) is left as it is: a spreadsheet reads it
as that number and nothing runs, while ``'-5`` would show its quote and no longer sort as a
number. Every cell goes through this, ours included; ours (states, sizes, digests, line
numbers) never start that way, so only values from outside change: manifest values and names,
file names made from them, and what the API answered (job ids, URLs, error messages).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.files import atomic_text
from orchestrator.input.manifest import text_dialect
from orchestrator.input.row import ManifestOptions
from orchestrator.ledger.protocol import LedgerState

_FORMULA_CHARS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CONTROL_STARTS = ("\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def neutralise(cell: str) -> str:
    """Make a cell inert for spreadsheets (CSV injection; see the module docstring)."""
    first = cell[:1]
    if not first or first.isalnum():  # the common case, and never a formula
        return cell
    if first in _CONTROL_STARTS:
        return "'" + cell
    lead = cell.lstrip()
    if lead.startswith(_FORMULA_CHARS) and not _PLAIN_NUMBER.fullmatch(lead.rstrip()):
        return "'" + cell
    return cell


def plain(cell: str) -> str:
    """A cell as it was before ``neutralise`` guarded it (what ``adopt`` reads back)."""
    if cell.startswith("'") and neutralise(cell[1:]) == cell:
        return cell[1:]
    return cell


@dataclass(frozen=True)
class ResultsDialect:
    """How ``results.csv`` is written: its delimiter, its codec, whether it starts with a
    byte-order mark, and what it falls back to when a cell does not fit the codec."""

    delimiter: str = ","
    encoding: str = "utf-8"
    bom: bool = False
    fallback: ResultsDialect | None = None


UTF8 = ResultsDialect()
NAMED_DIALECTS = {
    "excel": ResultsDialect(",", "utf-8", bom=True),
    "excel-eu": ResultsDialect(";", "utf-8", bom=True),
    "utf8": UTF8,
}
"""What ``--results-dialect`` names (``cli.options.RESULTS_DIALECTS`` lists the same names)."""


def results_dialect(choice: str | None, found: tuple[str, str] | None) -> ResultsDialect:
    """The dialect ``choice`` names (``--results-dialect``), else the one that follows the
    manifest's ``found`` delimiter and codec (see the module docstring); ``utf8`` without one."""
    if choice in NAMED_DIALECTS:
        return NAMED_DIALECTS[choice]
    if found is None:
        return UTF8
    delimiter, codec = found
    try:
        name = codecs.lookup(codec).name
    except LookupError:
        return ResultsDialect(delimiter, "utf-8", bom=True)
    if name in ("utf-8", "utf-8-sig"):
        return ResultsDialect(delimiter, "utf-8", bom=name == "utf-8-sig")
    if name.startswith("utf-16"):
        return ResultsDialect(delimiter, "utf-16-le", bom=True)
    return ResultsDialect(delimiter, name, fallback=ResultsDialect(delimiter, "utf-8", bom=True))


def batch_dialect(state: LedgerState, choice: str | None = None) -> ResultsDialect:
    """The dialect of a batch's ``results.csv``: ``choice``, else the one its latest session
    recorded (``ManifestOptions.results_dialect``), else the manifest's as recorded, else as the
    recorded manifest reads now (a batch begun before the manifest's was recorded)."""
    record = state.runs[-1] if state.runs else None
    options = ManifestOptions.from_record(record.manifest_options if record else None)
    choice = choice or options.results_dialect
    found = None
    if options.found_delimiter is not None and options.found_encoding is not None:
        found = (options.found_delimiter, options.found_encoding)
    elif choice is None and record is not None and record.manifest:
        found = text_dialect(Path(record.manifest), options)
    return results_dialect(choice, found)


def write_csv(
    path: Path, columns: list[str], lines: Iterable[list[str]], dialect: ResultsDialect = UTF8
) -> None:
    """``results.csv`` at ``path`` in ``dialect``: a header, then each line, every cell
    neutralised (see ``neutralise``), written to a temporary name, fsynced, and renamed into
    place. A cell ``dialect.encoding`` cannot hold raises ``UnicodeEncodeError`` and leaves
    ``path`` as it was."""
    with atomic_text(path, newline="") as f:
        if dialect.encoding != "utf-8" and isinstance(f, io.TextIOWrapper):
            f.reconfigure(encoding=dialect.encoding, errors="strict")
        if dialect.bom:
            f.write("\ufeff")
        writer = csv.writer(f, delimiter=dialect.delimiter)
        writer.writerow([neutralise(c) for c in columns])
        for cells in lines:
            writer.writerow([neutralise(c) for c in cells])


def read_results(path: Path, encoding: str | None = None) -> list[dict[str, str]]:
    """``results.csv`` as written in any dialect, one dict per line (cells as written): the
    byte-order mark says UTF-8 or UTF-16; without one, UTF-8, else ``encoding`` (the manifest's
    ``--encoding``, which a results file in another encoding was written in), else cp1252. The
    delimiter is the one after ``id`` in the header. Raises ``FileNotFoundError``,
    ``UnicodeDecodeError``, ``csv.Error``."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        text = data[len(codecs.BOM_UTF8) :].decode("utf-8")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode(encoding or "cp1252")
    delimiter = text[2:3] if text.startswith("id") and text[2:3] in ",;\t|" else ","
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
