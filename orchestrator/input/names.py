"""Video file names from a pattern: ``--name "{first_name}-{id}"`` (or ``[run] name_pattern``).

A pattern is text with ``{COLUMN}`` fields: any manifest column (a template variable, a flow's
field or an extra column, by the name the run reads it as), and ``{id}``, the row's identity (its
``id`` cell, else ``r-`` and 16 hex digits). ``{{`` and ``}}`` are literal braces. A pattern is
checked before any row is read (:func:`parse_pattern`): a field with a conversion, a format spec,
an index or an attribute, and a ``/`` or ``\\`` in its text, are refused, and ``.mp4`` at its end
is dropped (the extension is ours).

Each row's name (:func:`pattern_name`) is made safe, never refused for its characters: it is a
plain file name inside the run's folder, and the same text is the object key under a delivery
prefix and a path in a URL. So:

- Unicode is normalised (NFKD) and written in ASCII: accents dropped, a few letters spelled out
  (``ß`` ``ss``, ``ø`` ``o``; ``identity.slug``'s table); case is kept;
- every run of other characters (spaces, separators ``/`` ``\\``, control characters, ``<>:"|?*``,
  ``%``, ``#``, letters of other scripts) becomes one ``-``; dots never come two in a row, so
  ``..`` cannot climb out; leading and trailing ``.``, ``-`` and ``_`` are dropped (a leading dot
  hides a file; Windows drops trailing dots);
- a Windows device name (``CON``, ``NUL``, ``COM1``...) before the first dot gets a leading
  ``_``;
- the stem is cut to ``MAX_PATTERN_STEM_CHARS``, which leaves room for a version suffix
  (``.v2``, see ``run.triage.versioned_name``) and ``.mp4`` within
  ``identity.MAX_OUTPUT_NAME_CHARS``.

A row whose field is empty, or holds nothing that survives (a name written only in another
script), gets a problem naming the row and the column: validate lists it, ``run`` sends nothing.
A field naming a column the manifest lacks is one problem naming it and the columns known.
Names are compared without case (Windows and macOS): two rows that make the same name are
validate's duplicates, each listed with both lines.

A row's ``output`` cell, when it has one, names its video as before (checked, not repaired:
``identity.output_name``); the pattern names the others.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.errors import UserError
from orchestrator.input.identity import _SPELLED, _WINDOWS_NAMES, MAX_OUTPUT_NAME_CHARS
from orchestrator.input.row import ManifestRow

ID_FIELD = "id"
MAX_PATTERN_STEM_CHARS = MAX_OUTPUT_NAME_CHARS - len(".v9999.mp4")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
_DASHES = re.compile(r"-{2,}")
_EDGES = "._-"
_MP4 = re.compile(r"\.mp4$", re.IGNORECASE)
_LITERAL_SEPARATOR = re.compile(r"[/\\]")


@dataclass(frozen=True)
class NameProblem:
    """Why a row gets no name from the pattern: the column, what is wrong, what to do."""

    field: str | None
    message: str
    hint: str
    kind: str = "name"
    """``name`` (this row's cell), or ``name-column`` (the pattern's column is not there: a
    property of the header, listed once)."""


@dataclass(frozen=True)
class NamePattern:
    """A parsed ``--name`` pattern: literal text and fields, in order."""

    text: str
    parts: tuple[tuple[str, str | None], ...]
    """``(literal, field)`` pairs as ``string.Formatter.parse`` gives them (field None: none)."""

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for _, f in self.parts if f is not None))

    def unknown(self, known: Iterable[str]) -> NameProblem | None:
        """The first field that is neither ``{id}`` nor one of ``known`` (a row's columns)."""
        columns = list(dict.fromkeys(known))
        missing = [f for f in self.fields if f != ID_FIELD and f not in columns]
        if not missing:
            return None
        listed = ", ".join(["id", *columns]) if columns else "id"
        return NameProblem(
            missing[0],
            f"--name {self.text!r} uses {{{missing[0]}}}, which is not a column of the manifest "
            f"(known: {listed})",
            "spell it as the manifest's header reads (validate's notes show friendly headers "
            "read as variable names), or use {id}",
            "name-column",
        )


def parse_pattern(text: str, option: str = "--name") -> NamePattern:
    """Check ``text`` as a name pattern (see the module docstring). Raises ``UserError``."""
    stripped = _MP4.sub("", text.strip())
    where = f"{option} {text!r}"
    try:
        parsed = list(string.Formatter().parse(stripped))
    except ValueError as exc:
        raise UserError(
            f"{where}: {exc}; write fields as {{column}} and a literal brace as {{{{ or }}}}"
        ) from None
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        separator = _LITERAL_SEPARATOR.search(literal)
        if separator is not None:
            raise UserError(
                f"{where}: a name pattern makes a file name, not a path; remove the "
                f"'{separator.group()}' (videos go into the run's folder, or under the delivery "
                "prefix)"
            )
        if field is not None:
            name = field.strip()
            if not name:
                raise UserError(f"{where}: '{{}}' names no column; write e.g. {{first_name}}")
            if spec or conversion or any(c in name for c in ".[]"):
                raise UserError(
                    f"{where}: {{{field}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}} is not a plain column; write {{column}} only "
                    "(no '.', '[', '!' or ':')"
                )
            field = name
        parts.append((literal, field))
    if not any(field is not None for _, field in parts):
        raise UserError(
            f"{where}: the pattern has no {{column}}, so every row would get the same name; "
            'add one, e.g. "{first_name}-{id}"'
        )
    return NamePattern(text=text, parts=tuple(parts))


def pattern_name(
    pattern: NamePattern,
    row: ManifestRow,
    identity: str,
    extras: Mapping[str, str] | None = None,
) -> tuple[str, NameProblem | None]:
    """``(name, problem)``: the row's file name (``STEM.mp4``) made from ``pattern``, or ``("",
    problem)`` when a field is empty or leaves nothing (see the module docstring). ``extras``:
    the row's extra columns (split off ``row.variables``)."""
    out: list[str] = []
    for literal, field in pattern.parts:
        out.append(safe_text(literal))
        if field is None:
            continue
        value = identity if field == ID_FIELD else _cell(row, extras, field)
        if value is None:
            return "", pattern.unknown([*row.variables, *(extras or {})])
        if not value.strip():
            return "", NameProblem(
                field,
                f"{{{field}}} of --name {pattern.text!r} is empty in this row, so the row would "
                "have no name of its own",
                "fill the cell in, or add {id} to the pattern",
            )
        safe = safe_text(value)
        if not safe.strip(_EDGES):
            return "", NameProblem(
                field,
                f"{{{field}}} of --name {pattern.text!r} is {value.strip()!r}, which leaves "
                "nothing for a file name (names keep ASCII letters, digits, '.', '_' and '-'; "
                "accents are dropped)",
                "add {id} or another column to the pattern",
            )
        out.append(safe)
    stem = safe_stem("".join(out))
    if not stem:
        return "", NameProblem(
            None,
            f"--name {pattern.text!r} leaves nothing for a file name in this row",
            "add {id} or another column to the pattern",
        )
    return f"{stem}.mp4", None


def safe_text(text: str) -> str:
    """``text`` in the characters a name keeps: ASCII letters, digits, ``.``, ``_``, ``-``."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_SPELLED))
        text = "".join(c for c in text if not unicodedata.combining(c))
    return _UNSAFE_RUN.sub("-", text)


def safe_stem(text: str) -> str:
    """A joined name made plain: no ``..``, no ``--``, no leading or trailing ``._-``, no
    ``.mp4`` of its own, no Windows device name, at most ``MAX_PATTERN_STEM_CHARS``."""
    stem = _DASHES.sub("-", _DOTS.sub(".", safe_text(text))).strip(_EDGES)
    stem = _MP4.sub("", stem).strip(_EDGES)
    if len(stem) > MAX_PATTERN_STEM_CHARS:
        stem = stem[:MAX_PATTERN_STEM_CHARS].rstrip(_EDGES)
    if stem.split(".")[0].upper() in _WINDOWS_NAMES:
        stem = f"_{stem}"
    return stem


def _cell(row: ManifestRow, extras: Mapping[str, str] | None, field: str) -> str | None:
    value = row.variables.get(field)
    if value is None and extras:
        value = extras.get(field)
    return value
