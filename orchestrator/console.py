"""What a person sees while a batch runs. Two sinks over one ``Tally``:

- ``LiveSink`` (stderr is a terminal): a live panel, rows by stage, done, failed, request rate,
  429s and ETA, redrawn a few times a second (rich's ``Live``).
- ``LineSink`` (not a terminal: cron, CI, a log file): row failures as they happen and a one-line
  summary every ``interval_s``.

Both scrub secrets from anything they print.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.events import human_duration, scrub

ACTIVE_STAGES = ("preview", "render", "download")


class Tally:
    """Counts folded from events; shared by both displays."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.failed = 0
        self.ambiguous = 0
        self.deferred = 0
        self.rps = 0.0
        self.rate_limited = 0
        self.requests = 0
        self.started_at = time.monotonic()
        self.done_this_run = 0
        self._stage_of: dict[str, str] = {}
        self.stopping: str | None = None

    def consume(self, kind: str, fields: dict[str, Any]) -> None:
        row = fields.get("row")
        if kind == "run_started":
            self.total = int(fields.get("rows", 0))
            self.done = int(fields.get("already_done", 0))
        elif kind == "stage" and isinstance(row, str) and fields.get("stage") in ACTIVE_STAGES:
            self._stage_of[row] = str(fields["stage"])
        elif kind in ("row_done", "row_failed", "row_ambiguous", "row_deferred"):
            if isinstance(row, str):
                self._stage_of.pop(row, None)
            if kind == "row_done":
                self.done += 1
                self.done_this_run += 1
            elif kind == "row_failed":
                self.failed += 1
            elif kind == "row_ambiguous":
                self.ambiguous += 1
            else:
                self.deferred += 1
        elif kind == "rate":
            self.rps = float(fields.get("rps", 0.0))
            self.rate_limited = int(fields.get("rate_limited", 0))
            self.requests = int(fields.get("requests", 0))
        elif kind == "stop_admitting":
            self.stopping = str(fields.get("reason"))

    def in_stage(self) -> Counter[str]:
        return Counter(self._stage_of.values())

    def eta_s(self) -> float | None:
        elapsed = time.monotonic() - self.started_at
        remaining = self.total - self.done - self.failed - self.ambiguous
        if self.done_this_run < 2 or elapsed <= 0 or remaining <= 0:
            return None
        return remaining / (self.done_this_run / elapsed)

    def line(self) -> str:
        stages = self.in_stage()
        eta = self.eta_s()
        return (
            f"{self.done}/{self.total} done, {self.failed} failed, {self.ambiguous} ambiguous; "
            f"in flight: {stages['preview']} preview, {stages['render']} render, "
            f"{stages['download']} download; {self.rps:.1f} req/s, {self.rate_limited} × 429"
            + (f"; eta {human_duration(eta)}" if eta is not None else "")
        )


class LineSink:
    def __init__(
        self,
        *,
        secrets: list[str],
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        verbose: bool = False,
    ) -> None:
        self.tally = Tally()
        self._stream = stream or sys.stderr
        self._secrets = secrets
        self._interval_s = interval_s
        self._verbose = verbose
        self._last_line = time.monotonic()

    def _print(self, text: str) -> None:
        print(scrub(text, self._secrets), file=self._stream, flush=True)

    def emit(self, kind: str, /, **fields: Any) -> None:
        self.tally.consume(kind, fields)
        message = _describe(kind, fields, self._verbose)
        if message:
            self._print(message)
        now = time.monotonic()
        if now - self._last_line >= self._interval_s:
            self._last_line = now
            self._print("… " + self.tally.line())

    def close(self) -> None:
        return None


class LiveSink:
    def __init__(
        self, *, secrets: list[str], stream: TextIO | None = None, verbose: bool = False
    ) -> None:
        self.tally = Tally()
        self._secrets = secrets
        self._verbose = verbose
        self._console = Console(file=stream or sys.stderr)
        self._live = Live(
            console=self._console,
            refresh_per_second=4,
            transient=False,
            get_renderable=self._render,
        )
        self._live.start()

    def emit(self, kind: str, /, **fields: Any) -> None:
        self.tally.consume(kind, fields)
        message = _describe(kind, fields, self._verbose)
        if message:
            self._live.console.print(scrub(message, self._secrets), markup=False, highlight=False)

    def _render(self) -> Group:
        t = self.tally
        stages = t.in_stage()
        table = Table.grid(padding=(0, 2))
        table.add_row(
            "rows", f"{t.done}/{t.total} done", f"{t.failed} failed", f"{t.ambiguous} ambiguous"
        )
        table.add_row(
            "in flight",
            f"{stages['preview']} preview",
            f"{stages['render']} render",
            f"{stages['download']} download",
        )
        eta = t.eta_s()
        table.add_row(
            "api",
            f"{t.rps:.1f} req/s",
            f"{t.rate_limited} × 429",
            f"eta {human_duration(eta)}" if eta is not None else "eta …",
        )
        if t.stopping:
            return Group(table, Text("stopping: " + scrub(t.stopping, self._secrets)))
        return Group(table)

    def close(self) -> None:
        self._live.stop()


def console_sink(*, secrets: list[str], verbose: bool) -> LineSink | LiveSink:
    if sys.stderr.isatty():
        return LiveSink(secrets=secrets, verbose=verbose)
    return LineSink(secrets=secrets, verbose=verbose)


def _describe(kind: str, fields: dict[str, Any], verbose: bool) -> str | None:
    """The line a person should read for this event, or None."""
    if kind == "run_started":
        return (
            f"run: {fields.get('rows')} rows"
            + (f" from {fields['manifest']}" if fields.get("manifest") else "")
            + f" ({fields.get('already_done', 0)} already done) "
            f"→ {fields.get('run_dir')} against {fields.get('base_url')}"
        )
    if kind == "row_failed":
        return f"FAILED    {fields.get('row')} at {fields.get('stage')}: {fields.get('message')}"
    if kind == "row_ambiguous":
        return f"AMBIGUOUS {fields.get('row')}: {fields.get('message')}"
    if kind == "stop_admitting":
        return f"stopping: {fields.get('reason')}"
    if kind == "waiting_for_window":
        return f"waiting {human_duration(float(fields.get('wait_s', 0)))} for the window to open"
    if kind == "window_closed":
        return f"window closed: {fields.get('action')}"
    if kind == "interrupt" and fields.get("action") == "stopping now":
        return "second interrupt: stopping now; the ledger is consistent, run again to resume"
    if verbose:
        if kind == "row_done":
            return f"done      {fields.get('row')} → {fields.get('file')}"
        if kind != "rate":
            return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in fields.items())
    return None
