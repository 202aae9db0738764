"""Columns a template does not use: carried through to the results, never sent.

A CRM export holds columns no template uses (notes, owner, segment). A template row's cells are
split in two (:func:`split`):

- its *variables*: the cells whose column is one of its template's ``{{variables}}`` (after
  friendly headers are matched, :mod:`.headers`). Only they are sent to Pictory, make the row's
  identity and tell an edited row (``identity``).
- its *extra columns*: every other cell. They ride along into ``results.csv`` and
  ``report.html`` (after our columns, in the manifest's order) and go nowhere else, so adding,
  filling or editing one never changes what is rendered, nor which rows are already done. An
  empty cell in one is fine.

``validate`` names the extra columns in one warning, and on the run's first line.

Not extra, and refused by ``validate`` as before: every unused column with ``--strict-columns``;
a column spelling a reserved name in another case (``ID`` beside ``--strict-headers``); a filled
cell of a column another flow owns (``text`` on a template row: "mixes flows"). A template
without any ``{{ }}`` keeps every column as a variable, as it always did (its rows' identities
are digests of those columns, and it warns that they change nothing). Rows of other flows keep
every column: a flow owns its fields, and a filled cell it does not use is refused.
"""

from __future__ import annotations

import dataclasses

from orchestrator.input import flows
from orchestrator.input.row import RESERVED_COLUMNS, ManifestRow


def split(row: ManifestRow, used: frozenset[str]) -> tuple[ManifestRow, dict[str, str]]:
    """``(row with its variables only, its extra columns)`` for a template row whose template
    uses ``used``; the row itself and ``{}`` when it has no extra column (the common case: one
    set comparison)."""
    variables = row.variables
    if not used or variables.keys() <= used:
        return row, {}
    owned = flows.owned_fields()
    extras = {
        name: value
        for name, value in variables.items()
        if name not in used and name not in owned and name.lower() not in RESERVED_COLUMNS
    }
    if not extras:
        return row, {}
    kept = {name: value for name, value in variables.items() if name not in extras}
    return dataclasses.replace(row, variables=kept), extras


def warning(names: list[str]) -> tuple[str, str]:
    """``(message, hint)`` of the one warning naming a manifest's extra columns."""
    listed = ", ".join(repr(n) for n in names)
    columns = f"column{'s' if len(names) > 1 else ''} {listed}"
    return (
        f"{columns} {'are' if len(names) > 1 else 'is'} not used by the template: carried "
        "through to results.csv and report.html, never sent to Pictory",
        "--strict-columns refuses a column the template does not use",
    )
