"""Erasing a row's values from its events (``orchestrator forget``), whatever stores them.

Plain data, no I/O: the JSONL ledger (``ledger.erase``) and the shared one (``pg.forget``)
rewrite their stored events through ``redact``, and ``LedgerState`` folds a ``forgotten`` event
through ``forget_row``.

What a forgotten row keeps, so no run ever renders it again: its identity (``row``: the
manifest's ``id``, or the digest of its template and values: no value can be read back from
it, though a guess of every value could be checked against it), its status, its job ids,
line, flow, the digest of the values its video was made from (``vars``, so an edit is still
told apart), and what was billed (seconds, credits, bytes, checksums). Every other text of its
events (its values, file names made from them, links to its video, messages that may quote a
value) becomes the marker ``[forgotten DATE]``; a list of texts becomes a list of markers, a
mapping keeps its keys. A field added later is erased unless it is named in ``KEPT``:
forgetting errs on the side of erasing.

A row that was not done (pending, or ambiguous: a render may exist) becomes ``failed`` for good
(kind ``forgotten``), so the batch ends and no worker claims it again; a done or failed row
keeps its status. ``retry.resume_action`` skips every forgotten row, whatever its status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.input.rows import RowJob, RowLister
from orchestrator.ledger.records import Event, Forgotten, RowEvent, forgotten_marker
from orchestrator.ledger.row_state import RowState

if TYPE_CHECKING:
    from orchestrator.ledger.protocol import LedgerState

KEPT = frozenset(
    {
        "row",
        "ts",
        "line",
        "flow",
        "job",
        "jobs",
        "preview_job",
        "vars",
        "stage",
        "kind",
        "permanent",
        "error_code",
        "bytes",
        "sha256",
        "duration_s",
        "credits",
        "expires",
        "destination",
        "deliver",
        "date",
    }
)
"""The fields of a forgotten row's events kept as they are: identities, job ids, states,
digests and what was billed; never a value, a name made from one, or a link."""
FORGOTTEN_KIND = "forgotten"
"""The failure kind of a row forgotten before it was done."""

E = TypeVar("E", bound=Event)


def redact(event: E, marker: str) -> E:
    """``event`` with every field not in ``KEPT`` that holds text replaced by ``marker`` (a
    list: one marker per item; a mapping: its keys, each to ``marker``)."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        if f.name in KEPT:
            continue
        changes[f.name] = redact_value(getattr(event, f.name), marker)
    return replace(event, **changes)


def redact_value(value: object, marker: str) -> Any:
    """``value`` with its text replaced by ``marker`` (numbers, booleans and None kept)."""
    if isinstance(value, str):
        return marker
    if isinstance(value, dict):
        return {str(k): marker for k in value}
    if isinstance(value, list):
        return [marker for _ in value]
    return value


def row_of(event: Event) -> str | None:
    """The row ``event`` is about (None: an event of the batch)."""
    return event.row if isinstance(event, RowEvent) else None


def forget_row(state: RowState, event: Forgotten) -> None:
    """Fold a ``forgotten`` event into the row's state (see the module docstring)."""
    state.forgotten = event.date
    marker = event.marker
    if state.status in ("pending", "ambiguous"):
        was = "it may have rendered (ambiguous)" if state.status == "ambiguous" else "not done"
        state.status = "failed"
        state.fail_kind = FORGOTTEN_KIND
        state.fail_message = f"forgotten on {event.date} ({was}); never rendered again"
        state.fail_permanent = True
        state.failed_at = event.ts
    state.file = None  # no link to a video that is gone
    state.extras = None
    state.output = state.output_override = None
    state.rendered_values = (
        {k: marker for k in state.rendered_values} if state.rendered_values else None
    )


def masked_rows(rows: RowLister, state: LedgerState) -> RowLister:
    """``rows`` with each forgotten row's values and extra columns shown as its marker, never
    as the manifest (which may still hold them) says."""
    forgotten = state.forgotten

    def listed() -> Iterator[RowJob]:
        for job in rows():
            if job.row_id in forgotten:
                found = state.rows.get(job.row_id)
                marker = forgotten_marker(found.forgotten if found and found.forgotten else "")
                job.variables = {k: marker for k in job.variables}
                job.extras = {k: marker for k in job.extras}
                job.output_name = marker
            yield job

    return listed
