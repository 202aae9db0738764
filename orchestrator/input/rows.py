"""From manifest rows to ``RowJob``s (a row on its way: ``RowJob``, ``RowProgress``): each row's
template, identity, output name, and the extra columns it carries along (:mod:`.extra_columns`).

Shared by ``run`` (which admits them lazily) and ``results`` (which lists them in order), so a
row's identity is computed one way only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import ManifestError
from orchestrator.input import extra_columns, flows
from orchestrator.input.headers import HeaderMatcher
from orchestrator.input.identity import row_identity, safe_output_name
from orchestrator.input.local_files import LocalFiles
from orchestrator.input.manifest import read_manifest, resolve_template_path
from orchestrator.input.names import NamePattern, parse_pattern, pattern_name
from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions, ManifestRow
from orchestrator.input.template import Template, load_template

if TYPE_CHECKING:
    from orchestrator.ledger.records import JsonObject
    from orchestrator.run.flows.transcript import Span


# ---- a row on its way ---------------------------------------------------------------------------


@dataclass(slots=True)
class RowProgress:
    """What a row's stages hand each other within one run. Not durable: a resumed row starts
    with an empty one, and each stage falls back on what the ledger records."""

    preview_fresh: bool = False
    """The preview job was created in this run (its first read waits; see ``stages.poll``)."""
    preview_waited: bool = False
    render_params: JsonObject | None = None
    """The finished preview's ``renderParams`` (sent with the render when enabled)."""
    render_fresh: bool = False
    render_s: float | None = None
    """From sending the render to its video being ready, when both happened in this run (the
    ``row_done`` event's ``render_s``)."""
    video_url: str | None = None
    subtitle_urls: dict[str, str] | None = None
    """``srtFile``/``vttFile``/``txtFile`` as the finished render job offered them."""
    spans: list[Span] | None = None
    """A video-edit row's cut: what the render keeps (see ``transcript``)."""
    cut_subtitles: dict[str, str] | None = None
    """A video-edit row's fallback subtitles, by kind (``srt``, ``vtt``, ``txt``)."""


@dataclass(eq=False, slots=True)
class RowJob:
    """One manifest row on its way through a flow."""

    row_id: str
    line: int
    variables: dict[str, str]
    """Template variables (template flow) or the flow's fields (other flows): what is sent."""
    template: Template | None
    output_name: str
    flow: str = "template"
    manifest: Path | None = None
    progress: RowProgress = field(default_factory=RowProgress)
    extras: dict[str, str] = field(default_factory=dict)
    """The row's extra columns (:mod:`.extra_columns`): shown in the results, never sent."""
    columns: tuple[str, ...] = ()
    """The names of ``variables`` and ``extras`` in the manifest's order, when it has extras
    (one tuple shared by the rows of a header)."""

    def shown(self, variables: Mapping[str, str] | None = None) -> dict[str, str]:
        """The row's cells as the results show them, in the manifest's order: ``variables``
        (default: its own) and its extra columns."""
        variables = self.variables if variables is None else variables
        if not self.extras:
            return dict(variables)
        cells = {**variables, **self.extras}
        order = {name: i for i, name in enumerate(self.columns)}
        return dict(sorted(cells.items(), key=lambda cell: order.get(cell[0], len(order))))


class TemplateCache:
    """Loads each template file once (by resolved path)."""

    def __init__(self) -> None:
        self._by_path: dict[Path, Template] = {}
        self._resolved: dict[Path, Path] = {}

    def get(self, path: Path) -> Template:
        # Resolving costs a system call per path component; every row of a batch names the
        # same few paths, so each is resolved once.
        key = self._resolved.get(path)
        if key is None:
            key = self._resolved[path] = path.resolve()
        template = self._by_path.get(key)
        if template is None:
            template = self._by_path[key] = load_template(path)
        return template


def iter_row_jobs(
    manifest: Path,
    default_template: Path | None,
    cache: TemplateCache,
    default_flow: str = "template",
    options: ManifestOptions = DEFAULT_OPTIONS,
) -> Iterator[tuple[ManifestRow, RowJob]]:
    matcher = HeaderMatcher(strict=options.strict_headers)
    files = LocalFiles.for_manifest(manifest, options.allow_paths)
    allowed: dict[str, str | None] = {}  # a template cell → why it may not be read (or None)
    orders: dict[tuple[str, ...], tuple[str, ...]] = {}  # one ``columns`` tuple per header
    pattern = parse_pattern(options.name_pattern) if options.name_pattern else None
    for row in read_manifest(manifest, options).rows:
        flow = flows.row_flow(row.flow, default_flow)
        template: Template | None = None
        extras: dict[str, str] = {}
        columns: tuple[str, ...] = ()
        if flows.uses_template(flow):
            if row.template is not None:
                if row.template not in allowed:
                    allowed[row.template] = files.check(row.template, manifest, "template")
                if allowed[row.template] is not None:
                    raise ManifestError(
                        str(allowed[row.template]), file=manifest, line=row.line, field="template"
                    )
            template_path = resolve_template_path(row, manifest) or default_template
            if template_path is None:
                raise ManifestError(
                    "no template for this row",
                    file=manifest,
                    line=row.line,
                    field="template",
                    hint="pass --template FILE or fill the row's template column",
                )
            template = cache.get(template_path)
            row = matcher.apply(flows.template_row(row), template.variables)
            used, extras = extra_columns.split(row, template.variables)
            if extras:
                order = tuple(row.variables)
                columns = orders.setdefault(order, order)
            row = used
        salt = template.sha256 if template is not None else flows.identity_salt(flow)
        row_id = row_identity(row, salt)
        yield (
            row,
            RowJob(
                row_id=row_id,
                line=row.line,
                variables=dict(row.variables),
                template=template,
                output_name=_name(row, row_id, extras, pattern, manifest, options),
                flow=flow,
                manifest=manifest,
                extras=extras,
                columns=columns,
            ),
        )


def _name(
    row: ManifestRow,
    row_id: str,
    extras: Mapping[str, str],
    pattern: NamePattern | None,
    manifest: Path,
    options: ManifestOptions,
) -> str:
    """The row's file name: its ``output`` cell, else from ``--name`` (``names``), else its
    ``id`` or readable name (``identity.output_name``). Raises when it cannot have one."""
    if pattern is None or row.output is not None:
        return safe_output_name(row, row_id, readable=options.readable_names)
    name, problem = pattern_name(pattern, row, row_id, extras)
    if problem is not None:
        raise ManifestError(
            problem.message, file=manifest, line=row.line, field=problem.field, hint=problem.hint
        )
    return name


RowLister = Callable[[], Iterator[RowJob]]
"""Every row of a batch in manifest order, anew at each call (the read side's row listing)."""


def no_rows() -> Iterator[RowJob]:
    """A ``RowLister`` of no rows (a ledger opened only to be read)."""
    return iter(())


def manifest_rows(
    manifest: Path,
    default_template: Path | None,
    default_flow: str = "template",
    options: ManifestOptions = DEFAULT_OPTIONS,
) -> RowLister:
    """The rows of ``manifest`` as a ``RowLister`` (templates loaded once per listing)."""

    def rows() -> Iterator[RowJob]:
        cache = TemplateCache()
        return (
            job
            for _, job in iter_row_jobs(manifest, default_template, cache, default_flow, options)
        )

    return rows
