"""The ledger's one serialiser: ``encode`` an event (``ledger.records``) into its stored form, a
JSON object ``{"e": name, "ts": seconds since the epoch, field: value...}`` (fields that are None
left out), and ``decode`` it back.

``decode`` checks every field it reads against its declared type, so a damaged record is refused
by name instead of folding into a wrong state. A record this version cannot read because a newer
one wrote it (a kind it does not know, a ``run`` record of a newer ``format``) raises
``NewerRecord``, never skipped: the ledger that read it refuses the whole ledger by name
(``newer_ledger``), since an older version guessing at a newer ledger could render a video twice.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Union

from orchestrator.errors import DamagedRecord, NewerRecord, RunDirError
from orchestrator.ledger.records import (
    EVENT_TYPES,
    LEDGER_FORMAT,
    UNNUMBERED_FORMAT,
    Event,
    JsonObject,
    RunStarted,
)

_TYPES: dict[object, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
    dict: (dict,),
    list: (list,),
}


def _types(annotation: object) -> tuple[type, ...]:
    """The types a field's value may have when given (None is always allowed when absent)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is Union:
        return tuple(
            t for a in typing.get_args(annotation) if a is not type(None) for t in _types(a)
        )
    found = _TYPES.get(typing.get_origin(annotation) or annotation)
    if found is None:
        raise TypeError(f"events cannot hold {annotation!r}")
    return found


def _specs(cls: type[Event]) -> tuple[tuple[str, tuple[type, ...], bool], ...]:
    """Per field: its name, the types its value may have, and whether it is required."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            f.name,
            _types(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.name != "ts"
    )


_SPECS = {cls: _specs(cls) for cls in EVENT_TYPES.values()}


def encode(event: Event) -> JsonObject:
    """The stored form of ``event`` (``e`` and ``ts`` first, None fields left out)."""
    out: JsonObject = {"e": event.name, "ts": event.ts}
    for name, _, _ in _SPECS[type(event)]:
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    return out


def decode(record: object) -> Event:
    """The event a stored record holds. Raises ``NewerRecord`` for a kind this version does not
    know or a ``run`` record of a newer format than ``LEDGER_FORMAT``, and ``DamagedRecord`` for
    anything else that is not an event we wrote."""
    if not isinstance(record, dict) or not isinstance(record.get("e"), str):
        raise DamagedRecord(None, None)
    kind: str = record["e"]
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise NewerRecord(kind, None)
    values: dict[str, object] = {}
    for name, allowed, required in _SPECS[cls]:
        value = record.get(name)
        if value is None:
            if required:
                raise DamagedRecord(kind, name)
        elif isinstance(value, allowed):
            values[name] = value
        else:
            raise DamagedRecord(kind, name)
    ts = record.get("ts")
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        values["ts"] = float(ts)
    if cls is RunStarted:
        found = values.setdefault("format", UNNUMBERED_FORMAT)
        if not isinstance(found, int) or isinstance(found, bool) or found < UNNUMBERED_FORMAT:
            raise DamagedRecord(kind, "format")
        if found > LEDGER_FORMAT:
            raise NewerRecord(kind, found)
    return cls(**values)  # type: ignore[arg-type]


def newer_ledger(where: str, exc: NewerRecord, declared: int) -> RunDirError:
    """The refusal of a ledger holding ``exc``'s record, for the ledger that read it: ``where``
    names the place (``FILE:LINE``, or the database and batch), ``declared`` the newest format
    the ledger's ``run`` records declare."""
    if exc.format_found is not None:
        return RunDirError(
            f"{where}: this ledger was written by a newer orchestrator (format "
            f"{exc.format_found}); this one reads up to format {LEDGER_FORMAT}: upgrade "
            "orchestrator"
        )
    return RunDirError(
        f"{where}: event kind {exc.kind!r} is unknown to this orchestrator, which reads ledger "
        f"formats up to {LEDGER_FORMAT} (this ledger declares format {declared}): a newer "
        "orchestrator wrote it, or it was edited by hand; upgrade orchestrator"
    )
