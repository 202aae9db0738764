"""Column-level results of ``validate``: problems of a column once each, and notes on headers.

A problem of a column (a variable the template uses that the manifest lacks, a column the template
does not use) is one problem per template and column, naming how many rows it affects and the
first ``MAX_LINES_NAMED`` of them. An empty cell in a variable the template uses is one problem
per template and variable too, naming *every* row to fill in (``EVERY_LINE_KINDS``; runs of
consecutive lines as ``4-9``). Row-level problems stay per row (:mod:`.validate_row`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.input.headers import HeaderMatcher
from orchestrator.input.manifest import Manifest
from orchestrator.input.template import Template

if TYPE_CHECKING:
    from orchestrator.input.problems import Problem, ValidationReport

MAX_LINES_NAMED = 5
"""A column problem names this many of the rows it affects."""
EVERY_LINE_KINDS = frozenset({"empty"})
"""Column problems that name every row they affect: each is a cell to fill in."""


class ColumnProblems:
    """Column problems, one per (template, kind, column), counting the rows they affect."""

    def __init__(self) -> None:
        self._first: dict[tuple[Path | None, str, str], Problem] = {}
        self._count: dict[tuple[Path | None, str, str], int] = {}
        self._lines: dict[tuple[Path | None, str, str], list[int]] = {}
        """The first lines of each, or for ``EVERY_LINE_KINDS`` every line as runs: ``[first,
        last, first, last...]``."""

    def add(self, template: Template | None, problem: Problem) -> None:
        key = (template.path if template is not None else None, problem.kind, problem.field or "")
        if key not in self._first:
            self._first[key] = problem
            self._count[key] = 0
            self._lines[key] = []
        self._count[key] += 1
        lines = self._lines[key]
        if problem.line is None:
            return
        if problem.kind in EVERY_LINE_KINDS:
            if lines and lines[-1] == problem.line - 1:
                lines[-1] = problem.line
            else:
                lines += (problem.line, problem.line)
        elif len(lines) < MAX_LINES_NAMED:
            lines.append(problem.line)

    def problems(self, workbook: bool) -> list[Problem]:
        unit = "row" if workbook else "line"
        out = []
        for key, first in self._first.items():
            count, lines = self._count[key], self._lines[key]
            if first.kind in EVERY_LINE_KINDS:
                named = ", ".join(_run(a, b) for a, b in zip(lines[::2], lines[1::2], strict=True))
            else:
                named = ", ".join(map(str, lines)) + (", …" if count > len(lines) else "")
            rows = f"{count} row{'s' if count != 1 else ''}"
            message = f"{first.message}; affects {rows} ({unit}{'s' if count != 1 else ''} {named})"
            out.append(replace(first, message=message))
        return out


def _run(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def column_of(manifest: Manifest, matcher: HeaderMatcher, name: str | None) -> str | None:
    """The workbook column letter of a field, through a friendly header when it was mapped."""
    if name is None:
        return None
    header = next((h for h, v in matcher.mapped.items() if v == name), name)
    return manifest.columns.get(header)


def add_notes(report: ValidationReport, manifest: Manifest, matcher: HeaderMatcher) -> None:
    report.read_as = f"{manifest.label} ({manifest.description})"
    renamed = {**manifest.renamed, **matcher.mapped}
    order = {name: i for i, name in enumerate(manifest.header)}
    for column, name in sorted(renamed.items(), key=lambda item: order.get(item[0], 0)):
        where = manifest.columns.get(column)
        report.notes.append(
            f"{manifest.label}: header {column!r}"
            + (f" (column {where})" if where else "")
            + f" is read as {name!r} (pass --strict-headers to refuse near matches)"
        )
