"""Progress and log events go to a sink, so the terminal, the log file and tests listen alike.

An event is a kind (``row_done``, ``retry``, ``rate``...) and flat JSON-able fields. Sinks never
raise into the pipeline. ``JsonlLogSink`` scrubs every known secret from what it writes.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Protocol, TextIO

from orchestrator.clock import Clock, RealClock
from orchestrator.files import private_opener

LOG_NAME = "log.jsonl"
"""The run's event log, ``RUN_DIR/log.jsonl`` (see ``JsonlLogSink``)."""


def human_duration(seconds: float | None) -> str:
    """``1h05m`` or ``4m09s`` (``?`` when unknown), for displays and ``status``."""
    if seconds is None:
        return "?"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


class Sink(Protocol):
    def emit(self, kind: str, /, **fields: Any) -> None: ...


class NullSink:
    def emit(self, kind: str, /, **fields: Any) -> None:
        return None


class ListSink:
    """Keeps every event; for tests."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, kind: str, /, **fields: Any) -> None:
        self.events.append((kind, fields))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


DETAIL_KINDS = frozenset({"request"})
"""Events of every API request (``request``: its ``method``, ``route``, ``status`` and the
limiter's ``waited_s``): sent only when a sink asks for them by listing them in a ``detail_kinds``
attribute (the metrics), and only to such sinks; the log and the terminal never see them."""


def wants(sink: Sink, kind: str) -> bool:
    """Whether ``sink`` asks for the detail event ``kind`` (see ``DETAIL_KINDS``)."""
    return kind in getattr(sink, "detail_kinds", ())


class FanoutSink:
    def __init__(self, *sinks: Sink) -> None:
        self.sinks = list(sinks)

    @property
    def detail_kinds(self) -> frozenset[str]:
        return frozenset(k for s in self.sinks for k in getattr(s, "detail_kinds", ()))

    def emit(self, kind: str, /, **fields: Any) -> None:
        if kind in DETAIL_KINDS:
            for sink in self.sinks:
                if wants(sink, kind):
                    sink.emit(kind, **fields)
            return
        for sink in self.sinks:
            sink.emit(kind, **fields)


MIN_SECRET_CHARS = 8
"""Shorter values are not masked: masking a one-letter "secret" would blot that letter out of
every line, and such a value protects nothing anyway."""


def scrub(text: str, secrets: list[str]) -> str:
    """Replace every secret value (of ``MIN_SECRET_CHARS`` or more) in ``text`` with ``***``."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    return text


_LOG_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
"""One encoder for every line: ``json.dumps`` with options builds a new one per call."""


LOG_FLUSH_EVERY_S = 1.0
"""``log.jsonl`` is written out at the first event this long after the last write (a run emits
a ``rate`` event every 2 s), so a reader of the file is at most a few seconds behind; closing
writes the rest. The log is a diagnosis aid, never a record (the ledger is): a kill may lose
its last second. A write per event was ~5 % of the CPU of a row."""


ROUTINE_KINDS = frozenset(
    {
        "rate",
        "stage",
        "render_progress",
        "row_started",
        "row_done",
        "row_delivered",
        "poll",
        "retry",
    }
)
"""Events too frequent for a terminal: a log that fell back to stderr leaves them out (the
ledger records every row anyway)."""


class JsonlLogSink:
    """Appends one JSON object per event to ``RUN_DIR/log.jsonl`` (buffered, no fsync).

    The log never ends a run: when the file cannot be written (a full disk, an I/O error), one
    line says so on stderr and the log goes on there (routine events left out), while the
    ledger, which is the record, decides what the run does."""

    def __init__(
        self,
        path: Path,
        secrets: list[str],
        *,
        clock: Clock | None = None,
        fallback: TextIO | None = None,
    ) -> None:
        self._path = path
        # closed by close(); 0600 whatever the umask
        self._file: TextIO | None = open(path, "a", encoding="utf-8", opener=private_opener)  # noqa: SIM115
        self._fallback = fallback if fallback is not None else sys.stderr
        self._secrets = secrets
        self._clock = clock or RealClock()
        self._written_at_s = self._clock.now()

    def emit(self, kind: str, /, **fields: Any) -> None:
        record = {"ts": round(self._clock.wall_s(), 3), "event": kind, **fields}
        line = scrub(_LOG_ENCODER.encode(record), self._secrets) + "\n"
        if self._file is None:
            if kind not in ROUTINE_KINDS:
                self._fallback.write(line)
            return
        try:
            self._file.write(line)
            now_s = self._clock.now()
            if now_s - self._written_at_s >= LOG_FLUSH_EVERY_S:
                self._file.flush()
                self._written_at_s = now_s
        except OSError as exc:
            self._give_up(exc)
            self.emit(kind, **fields)

    def _give_up(self, exc: OSError) -> None:
        """The file failed: drop what it buffered, and log to ``fallback`` from now on."""
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        self._fallback.write(
            f"orchestrator: warning: {self._path}: cannot write the log ({exc.strerror}); "
            "the log goes to stderr from now on (the ledger still records every row)\n"
        )

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self._file = None
                self._give_up(exc)
