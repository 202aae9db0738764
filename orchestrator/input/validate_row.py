"""The problems of one manifest row on its own (``check_row``): a field its flow needs, an unsafe
``id``, no template, a variable missing or empty, a column the template does not use, a value too
long or holding a literal ``{{...}}``, an unsafe output name. Problems across rows (duplicates)
and per column are ``validate``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from orchestrator.input import flows
from orchestrator.input.headers import friendly_twin
from orchestrator.input.identity import id_problem, output_name
from orchestrator.input.local_files import LocalFiles
from orchestrator.input.problems import Problem
from orchestrator.input.row import RESERVED_COLUMNS, ManifestRow
from orchestrator.input.template import Template, unresolved_placeholders

MAX_VALUE_CHARS = 5000
"""A longer value is almost always a pasted document or a broken quote, not scene text."""

_Add = Callable[[str | None, str, str | None, str], None]
"""``check_row``'s local reporter: field, message, hint, kind."""


def check_row(
    row: ManifestRow,
    template: Template | None,
    manifest_path: Path,
    flow: str = "template",
    files: LocalFiles | None = None,
    extras: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every problem of one row on its own (duplicates across rows are validate's job).

    For a template row, ``row.variables`` should already be ``flows.template_variables``, and
    ``extras`` the extra columns split off it (``extra_columns.split``): a missing variable's
    hint names them (a misspelt header is one of them)."""
    problems: list[Problem] = []

    def add(name: str | None, message: str, hint: str | None, kind: str) -> None:
        problems.append(Problem(str(manifest_path), row.line, name, message, hint, kind))

    template_vars = template.variables if template is not None else frozenset()
    fields = flows.check_fields(flow, row.variables, manifest_path, template_vars, files)
    for field_problem in fields:
        add(*field_problem)
    with_template = flows.uses_template(flow)
    if not with_template:
        template = None
    id_issue = id_problem(row.id) if row.id is not None else None
    if id_issue is not None:
        add("id", id_issue, "ids name files and ledger entries; use e.g. 'cust-0042'", "id")
    if template is None and with_template:
        add(
            "template",
            "this row has no template",
            "pass --template, or fill the 'template' column with a .pictai path",
            "template",
        )
    elif template is not None:
        _check_variables(row, template, add, extras or {})
    joined = "".join(row.variables.values())  # one C-level look at all values: the common case
    for name, value in (
        row.variables.items() if len(joined) > MAX_VALUE_CHARS or "{{" in joined else ()
    ):
        if len(value) > MAX_VALUE_CHARS:
            add(
                name,
                f"the value is {len(value)} characters; the limit is {MAX_VALUE_CHARS}",
                "shorten it; a value this long usually means a missing closing quote",
                "too-long",
            )
        if "{{" in value and (literal := unresolved_placeholders(value)):
            add(
                name,
                f"the value holds {literal[0]!r}, which would appear literally in the video",
                "replace it with the text you want shown",
                "placeholder",
            )
    if row.output is not None or (row.id is not None and id_issue is None):
        _, output_issue = output_name(row, row.id or "")
        if output_issue is not None:
            add("output" if row.output is not None else "id", output_issue, None, "output")
    return problems


def _check_variables(
    row: ManifestRow, template: Template, add: _Add, extras: Mapping[str, str]
) -> None:
    needed = template.variables
    variables = row.variables
    blank = [name for name in needed if not variables.get(name, "").strip()]
    for name in sorted(blank) if blank else ():
        value = variables.get(name)
        if value is None:
            near = friendly_twin(name, {**variables, **extras})
            unused = ", ".join(repr(n) for n in extras)
            hint = (
                f"the manifest has {near!r}; rename that header to {name!r}, or drop "
                "--strict-headers to match it"
                if near
                else f"add a {name!r} column (key) with a value for every row"
                + (f"; the template does not use the manifest's {unused}" if unused else "")
            )
            add(
                name, f"missing variable {name!r} used by template {template.name}", hint, "missing"
            )
        elif not value.strip():
            add(
                name,
                f"variable {name!r} is empty; the video would show a blank there",
                "fill it in, or remove the row",
                "empty",
            )
    if not needed or needed.issuperset(variables):
        return
    for name in variables:
        if name not in needed:
            if name.lower() in RESERVED_COLUMNS:
                hint = f"reserved columns are lower-case: did you mean {name.lower()!r}?"
            elif near := friendly_twin(name, needed):
                hint = f"did you mean {near!r}?"
            else:
                hint = (
                    f"remove the column, or add {{{{ {name} }}}} to the template; without "
                    "--strict-columns it is carried through to the results"
                )
            add(
                name,
                f"column {name!r} is not a variable of template {template.name} (it uses: "
                f"{', '.join(sorted(needed))})",
                hint,
                "unknown",
            )
