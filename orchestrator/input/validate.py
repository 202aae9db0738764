"""Check a manifest against its templates before anything is sent: one streamed pass, no network.

``validate_manifest`` reports *every* problem it finds (the first ``MAX_STORED_PROBLEMS`` are
kept, all are counted: :mod:`.problems`). The ``validate`` command prints them; ``run`` calls the
same function as its pre-flight, so nothing reaches Pictory from a manifest that would fail
half-way.

Per row (:mod:`.validate_row`'s ``check_row``): a ``flow`` other than ``template``; an unsafe
``id``; no template (neither ``--template`` nor a ``template`` column) or one that cannot be
loaded; a variable the template uses that is missing or empty; a value longer than
``MAX_VALUE_CHARS`` or holding a literal ``{{...}}``; an unsafe output name; with ``--name``, a
pattern field that is empty or missing (:mod:`.names`; a missing column once). Across rows:
duplicate identities and duplicate output files, each naming both lines.

Column problems (a variable the template uses that the manifest lacks, or leaves empty; with
``strict_columns``, a column the template does not use) are reported once per template and column,
with the count of rows affected and their line numbers (every one for an empty variable, the first
few for the others): they are properties of the header, not of each row. Without
``strict_columns`` a column the template does not use is an *extra column* (:mod:`.extra_columns`):
carried through to the results, never sent, named once in ``warnings`` and in ``read_as``. Friendly
headers (``First Name`` for ``first_name``, see :mod:`.headers`) are matched unless
``strict_headers``; each match is listed once in ``notes``. A template without any ``{{ }}`` is a
warning, not a problem, when the manifest has variable columns: every row would get the same video.

A structural error from the reader (``ManifestError``) becomes one problem, sets ``fatal`` and ends
the scan: nothing after it can be located reliably. A broken default template does the same.

Memory: duplicates are found with two open-addressing tables of 64-bit string hashes in flat
arrays (12 bytes a slot), about 50 MB for a million rows where Python sets of ints would take ~160.
Two different names sharing a 64-bit digest (odds ~1e-8 at a million rows) would be reported as a
duplicate by mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import astuple, replace
from pathlib import Path

from orchestrator.errors import ManifestError, TemplateError
from orchestrator.input import extra_columns, flows
from orchestrator.input.headers import HeaderMatcher
from orchestrator.input.identity import id_problem, output_name, row_identity
from orchestrator.input.local_files import LocalFiles
from orchestrator.input.manifest import Manifest, read_manifest, resolve_template_path
from orchestrator.input.names import parse_pattern, pattern_name
from orchestrator.input.problems import Problem, ValidationReport
from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions, ManifestRow
from orchestrator.input.seen_digests import SeenDigests, digest64
from orchestrator.input.template import Template, load_template
from orchestrator.input.validate_columns import ColumnProblems, add_notes, column_of
from orchestrator.input.validate_row import check_row

__all__ = ["ValidationReport", "validate_manifest"]
"""``ValidationReport`` is ``problems``'; named here too, as what ``validate_manifest``
answers."""

_COLUMN_KINDS = ("missing", "unknown", "empty")
"""Problem kinds reported once per template and column (``validate_columns``), not per row."""


def validate_manifest(
    manifest_path: Path,
    template_path: Path | None,
    default_flow: str = "template",
    options: ManifestOptions = DEFAULT_OPTIONS,
) -> ValidationReport:
    """Stream every row of ``manifest_path`` and check it against its template. No network."""
    report = ValidationReport(manifest=manifest_path)
    columns = ColumnProblems()
    matcher = HeaderMatcher(strict=options.strict_headers)
    manifest: Manifest | None = None
    templates = _TemplateCache(manifest_path, report)
    default: Template | None = None
    if template_path is not None:
        try:
            default = templates.load(template_path)
        except TemplateError as exc:
            report.add(Problem.from_error(exc, "template"))
            report.fatal = True
            return report
    identities, outputs = SeenDigests(), SeenDigests()
    pattern = parse_pattern(options.name_pattern) if options.name_pattern else None
    unknown: set[str | None] = set()  # the pattern's missing columns, each listed once
    extra_names: dict[str, None] = {}
    """The extra columns met, in the manifest's order."""
    file = str(manifest_path)
    files = LocalFiles.for_manifest(manifest_path, options.allow_paths)
    templates.files = files
    try:
        manifest = read_manifest(manifest_path, options)
        manifest.skip_ragged = True  # list every ragged row, not only the first
        for raw_row in _with_ragged(manifest, report):
            if report.rows == 0:
                file = manifest.label
            report.rows += 1
            flow = flows.row_flow(raw_row.flow, default_flow)
            with_template = flows.uses_template(flow)
            row = flows.template_row(raw_row) if with_template else raw_row
            template = default if with_template else None
            if row.template is not None and with_template:
                try:
                    template = templates.for_row(row)
                except TemplateError as exc:
                    where = f"{exc.file}:{exc.line}" if exc.line else exc.file
                    report.add(
                        Problem(
                            file,
                            row.line,
                            "template",
                            f"{where}: {exc.message}",
                            exc.hint,
                            "template",
                        )
                    )
                    continue
            extras: dict[str, str] = {}
            if template is not None:
                row = matcher.apply(row, template.variables)
                if not options.strict_columns:
                    row, extras = extra_columns.split(row, template.variables)
                    extra_names.update(dict.fromkeys(extras))
            for problem in check_row(row, template, manifest_path, flow, files, extras):
                if manifest.columns:
                    column = column_of(manifest, matcher, problem.field)
                    problem = replace(problem, file=file, column=column)
                if problem.kind in _COLUMN_KINDS and template is not None:
                    columns.add(template, problem)
                else:
                    report.add(problem)
            if template is None and with_template:
                continue
            if template is not None and not template.variables and row.variables:
                templates.warn_no_variables(template, row)
            if row.id is None:
                salt = template.sha256 if template is not None else flows.identity_salt(flow)
                identity = row_identity(row, salt)
            elif id_problem(row.id) is None:
                identity = row.id
            else:
                continue  # check_row reported the id
            first = identities.add(digest64(identity), row.line)
            if first is not None:
                report.add(_duplicate_identity(file, row, first))
                continue
            name, issue = output_name(row, identity, readable=options.readable_names)
            if pattern is not None and row.output is None:
                name, named = pattern_name(pattern, row, identity, extras)
                issue = named.message if named is not None else None
                if named is not None and (named.kind == "name" or named.field not in unknown):
                    if named.kind == "name-column":
                        unknown.add(named.field)
                    report.add(Problem(file, row.line, named.field, *astuple(named)[1:]))
            first = outputs.add(digest64(name.casefold()), row.line) if issue is None else None
            if first is not None:
                report.add(
                    Problem(
                        file,
                        row.line,
                        "output",
                        f"line {first} and line {row.line} both make the video file {name!r}",
                        "give each row its own output name (case does not count)"
                        if pattern is None or row.output is not None
                        else f"make --name {pattern.text!r} unique per row, e.g. add {{id}}",
                        "duplicate",
                    )
                )
    except ManifestError as exc:
        report.add(Problem.from_error(exc, "structure"))
        report.fatal = True
    column_problems = columns.problems(workbook=bool(manifest and manifest.columns))
    report.problems[:0] = column_problems
    report.problem_count += len(column_problems)
    if manifest is not None:
        add_notes(report, manifest, matcher)
        report.manifest_sha256 = manifest.sha256
    if extra_names:
        names = list(extra_names)
        message, hint = extra_columns.warning(names)
        report.warnings.append(Problem(file, None, None, message, hint, "extra-columns"))
        if report.read_as.endswith(")"):  # the run's first line names them too
            report.read_as = (
                f"{report.read_as[:-1]}; extra columns, never sent: {', '.join(names)})"
            )
    return report


def _duplicate_identity(file: str, row: ManifestRow, first: int) -> Problem:
    if row.id is not None:
        return Problem(
            file,
            row.line,
            "id",
            f"id {row.id!r} is already used by line {first}",
            "ids must be unique; give this row another id",
            "duplicate",
        )
    return Problem(
        file,
        row.line,
        None,
        f"this row repeats line {first} (same template and variables): it would render the same "
        "video twice",
        "remove one of them, or give each an 'id' column to render both",
        "duplicate",
    )


def _with_ragged(manifest: Manifest, report: ValidationReport) -> Iterator[ManifestRow]:
    """The manifest's rows; the ragged ones it skipped are reported, in order, as it goes."""
    for row in manifest.rows:
        _report_ragged(manifest, report)
        yield row
    _report_ragged(manifest, report)


def _report_ragged(manifest: Manifest, report: ValidationReport) -> None:
    for error in manifest.ragged:
        report.rows += 1
        report.add(Problem.from_error(error, "ragged"))
    manifest.ragged.clear()
    report.rows += manifest.ragged_unlisted  # past the problems kept: counted only
    report.problem_count += manifest.ragged_unlisted
    manifest.ragged_unlisted = 0


class _TemplateCache:
    """Loads each template once (keyed by resolved path) and warns about it once."""

    def __init__(self, manifest_path: Path, report: ValidationReport) -> None:
        self._manifest_path = manifest_path
        self._report = report
        self._by_column: dict[str, Template | TemplateError] = {}
        self.files: LocalFiles | None = None
        """Which files a template column may name (see ``local_files``)."""
        self._no_variable_warned: set[Path] = set()

    def load(self, path: Path) -> Template:
        resolved = path.resolve()
        known = self._report.templates.get(resolved)
        if known is not None:
            return known
        template = load_template(path)
        self._report.templates[resolved] = template
        for warning in template.warnings:
            self._report.warnings.append(
                Problem(str(path), None, warning.json_path, warning.message, None, "placeholder")
            )
        return template

    def for_row(self, row: ManifestRow) -> Template:
        assert row.template is not None
        cached = self._by_column.get(row.template)
        if cached is None:
            path = resolve_template_path(row, self._manifest_path)
            assert path is not None
            refused = (
                self.files.check(row.template, self._manifest_path, "template")
                if self.files is not None
                else None
            )
            try:
                if refused is not None:
                    raise TemplateError(refused, file=self._manifest_path)
                cached = self.load(path)
            except TemplateError as exc:
                cached = exc
            self._by_column[row.template] = cached
        if isinstance(cached, TemplateError):
            raise cached
        return cached

    def warn_no_variables(self, template: Template, row: ManifestRow) -> None:
        if template.path in self._no_variable_warned:
            return
        self._no_variable_warned.add(template.path)
        self._report.warnings.append(
            Problem(
                str(template.path),
                None,
                None,
                f"the template has no {{{{ }}}} placeholders, so the manifest's columns "
                f"({', '.join(sorted(row.variables))}) change nothing: every row gets the same "
                "video",
                "add placeholders in the Pictory editor, or drop the columns",
                "no-variables",
            )
        )
