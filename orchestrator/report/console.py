"""What a person sees while a batch runs. Two sinks over one ``Tally``:

- ``LiveSink`` (stderr is a terminal): a live panel, rows by stage, done, failed, request rate,
  429s and ETA, redrawn a few times a second (rich's ``Live``).
- ``LineSink`` (not a terminal: cron, CI, a log file): row failures as they happen and a one-line
  summary every ``interval_s``.

Both scrub secrets from anything they print.
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from typing import TYPE_CHECKING, Any, TextIO

from orchestrator.clock import Clock, RealClock
from orchestrator.events import human_duration, scrub
from orchestrator.input import flows

if TYPE_CHECKING:
    from rich.console import Group

ALWAYS_SHOWN = ("preview", "render", "download")
"""Stages the display names even when no row is in them; other flows' stages show when busy."""
ETA_WINDOW = 50
"""The ETA follows the rate of the last this-many finished rows, not the whole run's."""
PANEL_KINDS = frozenset({"stop_admitting"})
"""Events the live panel shows in place (its "stopping:" line): not printed a second time."""
STALL_FACTOR = 5.0
STALL_MIN_S = 30.0
"""No row finished for this many times the recent gap (and at least this long): say so."""


class Tally:
    """Counts folded from events; shared by both displays. Times are ``clock.now()``."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or RealClock()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.ambiguous = 0
        self.deferred = 0
        self.rps = 0.0
        """Requests per second actually sent (measured between two ``rate`` events)."""
        self.limit_rps = 0.0
        """The limiter's current ceiling, shown beside the measured rate."""
        self.rate_limited = 0
        self.requests = 0
        self.started_at = self._clock.now()
        self.done_this_run = 0
        self._stage_of: dict[str, str] = {}
        self._stages = flows.stage_names()
        self._finished_at: deque[float] = deque(maxlen=ETA_WINDOW)
        self.stopping: str | None = None
        self.draining: tuple[int, float] | None = None
        """After a first Ctrl-C: rows still in flight, and seconds until they are stopped."""

    def consume(self, kind: str, fields: dict[str, Any]) -> None:
        row = fields.get("row")
        if kind == "run_started":
            self.total = int(fields.get("rows") or 0)
            self.done = int(fields.get("already_done", 0))
        elif kind == "stage" and isinstance(row, str) and fields.get("stage") in self._stages:
            self._stage_of[row] = str(fields["stage"])
        elif kind in ("row_done", "row_failed", "row_ambiguous", "row_deferred"):
            if isinstance(row, str):
                self._stage_of.pop(row, None)
            if kind != "row_deferred":
                self._finished_at.append(self._clock.now())
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
            self.limit_rps = float(fields.get("limit_rps", 0.0))
            self.rate_limited = int(fields.get("rate_limited", 0))
            self.requests = int(fields.get("requests", 0))
        elif kind == "stop_admitting":
            self.stopping = str(fields.get("reason"))
        elif kind == "interrupt":
            self.stopping = self.stopping or f"interrupted ({fields.get('signal')})"
        elif kind == "draining":
            self.draining = (int(fields.get("rows") or 0), float(fields.get("left_s") or 0.0))

    def in_stage(self) -> Counter[str]:
        return Counter(self._stage_of.values())

    def busy_stages(self) -> list[tuple[str, int]]:
        """``(stage, rows in it)`` in the flows' order: the always-shown ones, and the others
        that hold a row now."""
        counts = self.in_stage()
        return [(s, counts[s]) for s in self._stages if s in ALWAYS_SHOWN or counts[s]]

    def eta_s(self) -> float | None:
        """Remaining rows at the rate rows finished recently (the last ``ETA_WINDOW`` rows),
        or None before two rows finished or once the run stops admitting rows."""
        remaining = self.total - self.done - self.failed - self.ambiguous
        finished = self._finished_at
        if self.stopping is not None or len(finished) < 2 or remaining <= 0:
            return None
        span_s = self._clock.now() - finished[0]
        if span_s <= 0:
            return None
        return remaining / ((len(finished) - 1) / span_s)

    def eta_text(self) -> str:
        """The ETA as a person should read it: a duration, or what is true instead."""
        if self.stopping is not None:
            if self.stopping.startswith("halt"):
                return "halted; finishing the rows in flight"
            return "draining: no new rows"
        finished = self._finished_at
        if len(finished) >= 2:
            gap_s = (finished[-1] - finished[0]) / (len(finished) - 1)
            quiet_s = self._clock.now() - finished[-1]
            if quiet_s > max(STALL_FACTOR * gap_s, STALL_MIN_S):
                # An ETA from the recent rate would be a fiction now: some job is slow or stuck
                # and will take until its stage's deadline at most.
                in_flight = sum(self.in_stage().values())
                return (
                    f"waiting for {in_flight} slow row(s): none finished for "
                    f"{human_duration(quiet_s)} (a stuck job waits out its deadline)"
                )
        eta = self.eta_s()
        return f"eta {human_duration(eta)}" if eta is not None else "eta …"

    def drain_text(self) -> str | None:
        """What a draining run waits for, and how long it may still wait (None: not draining)."""
        if self.draining is None:
            return None
        rows, left_s = self.draining
        busy = ", ".join(f"{n} {stage}" for stage, n in self.in_stage().items() if n)
        return (
            f"waiting for {rows} row(s) in flight"
            + (f" ({busy})" if busy else "")
            + f"; stopping them in {human_duration(left_s)} at the latest. "
            "Ctrl-C again stops now: every row resumes from the ledger"
        )

    def done_text(self) -> str:
        """``12/25 done``; a worker, which does not know the batch's size, says ``12 done``."""
        return f"{self.done}/{self.total} done" if self.total else f"{self.done} done"

    def rate_text(self) -> str:
        return f"{self.rps:.1f} req/s (limit {self.limit_rps:.1f})"

    def line(self) -> str:
        busy = ", ".join(f"{n} {stage}" for stage, n in self.busy_stages())
        return (
            f"{self.done_text()}, {self.failed} failed, {self.ambiguous} ambiguous; "
            f"in flight: {busy}; {self.rate_text()}, {self.rate_limited} × 429; "
            f"{self.eta_text()}"
        )


class LineSink:
    def __init__(
        self,
        *,
        secrets: list[str],
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        verbose: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or RealClock()
        self.tally = Tally(self._clock)
        self._stream = stream or sys.stderr
        self._secrets = secrets
        self._interval_s = interval_s
        self._verbose = verbose
        self._last_line = self._clock.now()
        self._closed = False

    def _print(self, text: str) -> None:
        if self._closed:
            return
        try:
            print(scrub(text, self._secrets), file=self._stream, flush=True)
        except (BrokenPipeError, ValueError):
            # The reader went away (``2>&1 | head``): the run goes on, quietly; the log keeps all.
            self._closed = True

    def emit(self, kind: str, /, **fields: Any) -> None:
        first_drain = kind == "draining" and self.tally.draining is None
        self.tally.consume(kind, fields)
        message = _describe(kind, fields, self._verbose)
        if message:
            self._print(message)
        now = self._clock.now()
        if kind == "draining" and (first_drain or now - self._last_line >= self._interval_s):
            self._last_line = now
            self._print("… " + (self.tally.drain_text() or ""))
            return
        if now - self._last_line >= self._interval_s:
            self._last_line = now
            self._print("… " + self.tally.line())

    def close(self) -> None:
        return None


class LiveSink:
    def __init__(
        self,
        *,
        secrets: list[str],
        stream: TextIO | None = None,
        verbose: bool = False,
        clock: Clock | None = None,
    ) -> None:
        # rich is imported here, for a terminal only: an unattended run (cron, a log file) does
        # without its ~40 ms and ~2 MB at start-up.
        from rich.console import Console
        from rich.live import Live

        self.tally = Tally(clock)
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
        if message and kind not in PANEL_KINDS:
            self._live.console.print(scrub(message, self._secrets), markup=False, highlight=False)

    def _render(self) -> Group:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        t = self.tally
        table = Table.grid(padding=(0, 2))
        table.add_row("rows", t.done_text(), f"{t.failed} failed", f"{t.ambiguous} ambiguous")
        table.add_row("in flight", *(f"{n} {stage}" for stage, n in t.busy_stages()))
        table.add_row("api", t.rate_text(), f"{t.rate_limited} × 429", t.eta_text())
        if t.stopping:
            lines = [Text("stopping: " + scrub(t.stopping, self._secrets))]
            drain = t.drain_text()
            if drain is not None:
                lines.append(Text(drain))
            return Group(table, *lines)
        return Group(table)

    def close(self) -> None:
        self._live.stop()


def console_sink(
    *, secrets: list[str], verbose: bool, clock: Clock | None = None
) -> LineSink | LiveSink:
    if sys.stderr.isatty():
        return LiveSink(secrets=secrets, verbose=verbose, clock=clock)
    return LineSink(secrets=secrets, verbose=verbose, clock=clock)


def _describe(kind: str, fields: dict[str, Any], verbose: bool) -> str | None:
    """The line a person should read for this event, or None."""
    if kind == "run_started":
        zone = f"; window times in {fields['time_zone']}" if fields.get("time_zone") else ""
        if fields.get("calibration"):  # api.calibration: the profile whose limits it uses
            zone += f"; limits from calibration profile {fields['calibration']}"
        if fields.get("worker"):
            return (
                f"worker {fields['worker']} on {fields.get('ledger')} → {fields.get('run_dir')} "
                f"against {fields.get('base_url')}{zone}"
            )
        return (
            f"run: {fields.get('rows')} rows"
            + (f" from {fields['manifest']}" if fields.get("manifest") else "")
            + f" ({fields.get('already_done', 0)} already done) "
            f"→ {fields.get('run_dir')} against {fields.get('base_url')}{zone}"
        )
    if kind == "webhook_listening":
        return f"webhook receiver listening on {fields.get('url')}/hooks/…"
    if kind == "metrics_listening":
        return f"metrics: {fields.get('url')} (Prometheus; docs/overnight.md#monitoring)"
    if kind == "webhooks_rejected":
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(fields.items()))
        return f"webhook callbacks refused: {counts} (see docs/failures.md 'Webhook mode')"
    if kind == "row_changed":
        return (
            f"CHANGED   {fields.get('row')} (line {fields.get('line')}): values differ from "
            f"those its video was made from; {fields.get('action')}"
            + ("" if "again" in str(fields.get("action")) else " (--rerender-changed renders it)")
        )
    if kind == "row_failed":
        return f"FAILED    {fields.get('row')} at {fields.get('stage')}: {fields.get('message')}"
    if kind == "row_ambiguous":
        return f"AMBIGUOUS {fields.get('row')}: {fields.get('message')}"
    if kind in ("estimate", "quota") and fields.get("line"):
        return str(fields["line"])  # run.cost: the batch's estimate, the account's quota
    if kind == "quota_unread":
        return f"quota: not read ({fields.get('reason')}); the run goes on"
    if kind == "stop_admitting":
        return f"stopping: {fields.get('reason')}"
    if kind == "waiting_for_window":
        return f"waiting {human_duration(float(fields.get('wait_s', 0)))} for the window to open"
    if kind == "window_closed":
        return f"window closed: {fields.get('action')}"
    if kind == "run_taken_over":
        who = f"pid {fields.get('pid')} on {fields.get('host')}" if fields.get("pid") else "?"
        return (
            f"taking over {fields.get('run_dir')}: its last run ({who}) stopped without "
            "ending (killed or crashed); its rows go on from the ledger, nothing renders twice"
        )
    if kind == "simulator_jobs_lost":
        return (
            f"the simulator stopped with the run; {fields.get('rows')} row(s) render again — "
            f"no real billing ({fields.get('renders')} of them had a render job; --simulate "
            "keeps its jobs in the memory of the process that runs it)"
        )
    if kind == "notify_unset":
        return (
            "notify: the batch notifies [notify] url, which this session's config does not set "
            "(a --notify URL given to an earlier run is never recorded: it may be a key); "
            "give --notify again, or --notify env:NAME, which is recorded"
        )
    if kind == "ledger_restored":
        return (
            f"{fields.get('path')} was removed while this run worked; put this run's copy "
            "back (nothing lost)"
        )
    if kind == "ledger_reserve_used":
        return (
            f"disk full: {fields.get('path')} is writing into its reserve; stopping, the rows "
            "in flight record their outcome"
        )
    if kind == "disk_close":
        return f"warning: little disk space for this run: {fields.get('message')}"
    if kind == "keep_local_kept":
        return (
            f"--keep-local {fields.get('keep_local')}: every local copy is kept, since this run "
            "delivers nothing (local copies go only after a verified --deliver)"
        )
    if kind == "clean_failed":
        return (
            f"could not clean {fields.get('row')}'s job {fields.get('job')} at Pictory: "
            f"{fields.get('message')}; the next run tries again (its video is safe)"
        )
    if kind == "storage_fault" and fields.get("row") is None:
        return f"disk: {fields.get('path')}: {fields.get('reason')}"
    if kind == "drain_limit":
        return (
            f"drain limit ({human_duration(float(fields.get('limit_s') or 0))}, [run] "
            f"drain_limit_s) reached: stopping {fields.get('rows')} row(s) where they are; "
            "each resumes from the ledger"
        )
    if kind == "interrupt" and fields.get("action") == "stopping now":
        return "second interrupt: stopping now; the ledger is consistent, run again to resume"
    if verbose:
        if kind == "row_done":
            return f"done      {fields.get('row')} → {fields.get('file')}"
        if kind != "rate":
            return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in fields.items())
    return None
