"""Friendly headers: ``First Name`` read as the template variable ``first_name``.

Spreadsheet headers are written for people. A header that differs from a name we need only by
case, spaces, hyphens or underscores is matched to it: ``First Name``, ``first-name`` and
``FIRST_NAME`` all mean ``first_name``; ``ID`` means the reserved ``id`` column (done by the
CSV/workbook reader, which owns the reserved columns). A header is matched only when the exact
name is absent and exactly one header matches. ``validate`` lists each mapping once;
``--strict-headers`` turns matching off, so such headers are reported instead.

Cost: a row whose columns already hold every variable its template uses (the common case) is
returned as it is after one set comparison; a mapping is worked out once per template and header.
"""

from __future__ import annotations

import dataclasses
import re

from orchestrator.input.row import ManifestRow

_SEPARATORS = re.compile(r"[\s_-]+")


def header_key(name: str) -> str:
    """What two names must share to match: case, spaces, hyphens and underscores ignored."""
    return _SEPARATORS.sub("", name).casefold()


def friendly_twin(name: str, candidates: frozenset[str] | dict[str, str]) -> str | None:
    """A candidate other than ``name`` that matches it ignoring case, spaces, '-' and '_'."""
    key = header_key(name)
    return next((c for c in candidates if c != name and header_key(c) == key), None)


def match_names(needed: frozenset[str] | tuple[str, ...], columns: list[str]) -> dict[str, str]:
    """``{column: name}`` for each needed name absent from ``columns`` that exactly one column
    matches (and that column is not itself a needed name)."""
    present = set(columns)
    mapping: dict[str, str] = {}
    for name in needed:
        if name in present:
            continue
        key = header_key(name)
        found = [c for c in columns if c not in needed and header_key(c) == key]
        if len(found) == 1 and found[0] not in mapping:
            mapping[found[0]] = name
    return mapping


class HeaderMatcher:
    """Renames a row's friendly headers to its template's variables (unless ``strict``)."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.mapped: dict[str, str] = {}
        """Every ``{column: variable}`` applied so far, for validate's notes."""
        self._cache: dict[tuple[frozenset[str], tuple[str, ...]], dict[str, str]] = {}

    def apply(self, row: ManifestRow, needed: frozenset[str]) -> ManifestRow:
        variables = row.variables
        if self.strict or variables.keys() >= needed:
            return row
        key = (needed, tuple(variables))
        mapping = self._cache.get(key)
        if mapping is None:
            mapping = self._cache[key] = match_names(needed, list(variables))
            self.mapped.update(mapping)
        if not mapping:
            return row
        renamed = {mapping.get(k, k): v for k, v in variables.items()}
        return dataclasses.replace(row, variables=renamed)
