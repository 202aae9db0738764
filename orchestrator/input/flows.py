"""The flows a row can take: a registry of ``Flow``s, one module per flow.

A row's flow comes from its ``flow`` column, else ``--flow`` (default ``template``). Each flow
module declares, in one ``Flow``: the row columns it owns, the checks ``validate`` runs on them,
its stages in order (``stages/*``; with and without the direct route), how its render is
requested, and how ``status`` names a row of it before its render. Pipeline, render stage,
console, status, validate and rows read the registry; nothing outside this package branches on
a flow's name. The built-in flows:

- ``run.flows.template``: every non-reserved column is a variable of the row's ``.pictai``.
- ``run.flows.storyboard``: a script (``text`` or ``text_file``) becomes a storyboard.
- ``run.flows.video_edit``: a video is transcribed and cut (its highlights, or whole).

Each flow module defines its ``FLOW``; the built-in ones are registered in that order on first
use. A flow from elsewhere (a plug-in, a test) calls ``register(Flow(...))`` before the run starts;
``stages`` may call any stage function and ``send_render`` any client method (``PictoryClient.
create_job`` takes a route the client has no method for).

In a manifest that mixes flows every row has every column; a column that belongs to another
flow is ignored when it is empty and is an error ("mixes flows") when it holds a value. Relative
``text_file`` and ``video`` paths are taken from the manifest's folder.

A row's identity (when it has no ``id``) is a digest of its fields with its template's content
hash, or for a flow without a template its flow's name (``identity_salt``), so editing a text
file a row points to does not make it a new row.

The registry is filled lazily (``get``, ``names``) so that importing this package stays cheap and
free of import cycles: flow modules import the stages, and the stages import this package.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import mimetypes
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.input.local_files import LocalFiles

if TYPE_CHECKING:
    from orchestrator.input.row import ManifestRow
    from orchestrator.input.rows import RowJob
    from orchestrator.ledger.row_state import RowState
    from orchestrator.run.stages.base import Services

DEFAULT_LANGUAGE = "en"
MAX_TEXT_FILE_BYTES = 1024 * 1024

FieldProblem = tuple[str | None, str, str | None, str]
"""``(field, message, hint, kind)``, as ``validate`` reports them."""
FieldCheck = Callable[[Mapping[str, str], Path, LocalFiles], list[FieldProblem]]
"""A flow's own checks of a row's fields (no network; files may be looked at)."""
Stage = Callable[["RowJob", "Services"], Awaitable[None]]
BeforeSend = Callable[[], Awaitable[None]]
SendRender = Callable[["RowJob", "Services", "str | None", BeforeSend], Awaitable[str]]
"""Sends a row's billable render request: ``(row, svc, webhook, before_send)`` → the render job
id. ``before_send`` (the ledger's intent record) must be handed to the client, which calls it
right before the request leaves (see ``stages.render``)."""


def _no_progress(state: RowState) -> str | None:
    return None


@dataclass(frozen=True)
class Flow:
    """One way a row becomes a video."""

    name: str
    fields: tuple[str, ...]
    """The row columns it owns (a template flow's variables are the template's own)."""
    stages: Callable[[bool], Sequence[tuple[str, Stage]]]
    """Its stages in order, by name; the argument is whether the run takes the direct route."""
    send_render: SendRender
    """The render request on the flow's usual route."""
    send_direct: SendRender | None = None
    """The direct render (``--direct``, §5.9) when the flow has one; else it keeps its route."""
    check: FieldCheck | None = None
    uses_template: bool = False
    """Its rows need a ``.pictai`` template, and every other column is one of its variables."""
    progress: Callable[[RowState], str | None] = _no_progress
    """How ``status`` names a pending row before its render (``previewing``...); None: queued."""


_REGISTRY: dict[str, Flow] = {}
_BUILT_IN = {"template": "template", "storyboard": "storyboard", "video-edit": "video_edit"}
"""The built-in flows by name, and the module of ``run.flows`` that defines each: their names are
known without importing them (``orchestrator --help`` lists them; stages load on first use)."""
BUILT_IN_PACKAGE = "orchestrator.run.flows"
"""Where the built-in flow modules live (``run/flows``): loaded by name, on first use, so this
registry (which ``validate`` and ``status`` read) imports nothing of the run wing."""
_loaded = False
_owned: frozenset[str] | None = None
"""``owned_fields()``, kept until the registry changes (it is asked once per manifest row)."""


def register(flow: Flow) -> Flow:
    """Make ``flow`` available to rows (by its name), after the built-in ones; returns it."""
    global _owned
    _load_built_in()
    _REGISTRY[flow.name] = flow
    _owned = None
    return flow


def unregister(name: str) -> None:
    """Forget a flow registered from outside (tests)."""
    global _owned
    _REGISTRY.pop(name, None)
    _owned = None


def _load_built_in() -> None:
    """Register the built-in flows, in their documented order (whatever imported them first)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILT_IN.values():
            flow: Flow = importlib.import_module(f"{BUILT_IN_PACKAGE}.{module}").FLOW
            _REGISTRY[flow.name] = flow


def get(name: str) -> Flow:
    """The flow called ``name``; KeyError when there is none (``check_fields`` reports it)."""
    _load_built_in()
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    """Every flow's name: the built-in ones first (without loading them), then registered ones."""
    return tuple(dict.fromkeys([*_BUILT_IN, *_REGISTRY]))


def find(name: str | None) -> Flow | None:
    """The flow called ``name``, or None (an unknown name, or a row recorded without one)."""
    if not _loaded:  # asked a few times per manifest row: no call when already loaded
        _load_built_in()
    return _REGISTRY.get(name) if name is not None else None


def uses_template(name: str) -> bool:
    """Whether rows of flow ``name`` are rendered from a template (False for unknown names)."""
    flow = find(name)
    return flow is not None and flow.uses_template


def stage_names() -> tuple[str, ...]:
    """Every flow's stage names, in order of first appearance (what the console shows)."""
    seen: dict[str, None] = {}
    for name in names():
        for direct in (False, True):
            for stage, _ in get(name).stages(direct):
                seen.setdefault(stage, None)
    return tuple(seen)


def owned_fields() -> frozenset[str]:
    """Every column some flow owns."""
    global _owned
    if _owned is None:
        _owned = frozenset(f for name in names() for f in get(name).fields)
    return _owned


def row_flow(flow_column: str | None, default_flow: str) -> str:
    return (flow_column or default_flow).strip().lower()


def identity_salt(flow: str) -> str:
    """Stands in for a template's content hash in the identity of non-template rows."""
    return hashlib.sha256(f"flow:{flow}".encode()).hexdigest()


def template_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """A template row's variables, without the empty columns other flows own."""
    owned = owned_fields()
    return {k: v for k, v in variables.items() if v.strip() or k not in owned}


def template_row(row: ManifestRow) -> ManifestRow:
    """The row with ``template_variables``: itself when it has no such columns (most rows; a
    pydantic copy per row was a sixth of the time ``validate`` takes over a million rows)."""
    variables = template_variables(row.variables)
    if len(variables) == len(row.variables):
        return row
    return dataclasses.replace(row, variables=variables)


def check_fields(
    flow: str,
    fields: Mapping[str, str],
    manifest_path: Path,
    template_vars: frozenset[str],
    files: LocalFiles | None = None,
) -> list[FieldProblem]:
    """Every problem with a row's flow-specific fields (no network; files are looked at, and
    must be files the manifest may name: see ``local_files``)."""
    this = find(flow)
    if this is None:
        known = ", ".join(names())
        return [("flow", f"unknown flow {flow!r}", f"use one of: {known}", "flow")]
    owned = owned_fields()
    problems: list[FieldProblem] = []
    for name, value in fields.items():
        if name in this.fields or not value.strip():
            continue
        if this.uses_template and (name in template_vars or name not in owned):
            continue  # a template variable (or an unknown column, reported by validate)
        owner = next((f.name for f in _REGISTRY.values() if name in f.fields), None)
        problems.append(
            (
                name,
                f"this {flow} row fills {name!r}"
                + (f", a field of the {owner} flow" if owner else ", which the flow does not use"),
                "a row takes one flow: empty that cell, or set the row's flow column",
                "flow-mix",
            )
        )
    if this.check is not None:
        files = files or LocalFiles.for_manifest(manifest_path)
        problems += this.check(fields, manifest_path, files)
    return problems


def is_url(value: str) -> bool:
    return "://" in value


def local_path(value: str, manifest_path: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else manifest_path.parent / path


def script_text(fields: Mapping[str, str], manifest_path: Path, files: LocalFiles) -> str:
    """A storyboard row's script: its ``text``, or its ``text_file`` (guarded by ``files``)."""
    text = fields.get("text", "").strip()
    if text:
        return text
    return files.path(fields["text_file"].strip(), manifest_path, "text").read_text("utf-8")


def content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "video/mp4"
