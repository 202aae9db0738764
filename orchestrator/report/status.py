"""``orchestrator status RUN_DIR``: where a batch stands, read from its ledger (works while live).

Reads without taking the run lock; a torn last line from a concurrent writer is ignored like on
replay. Whether a run is live comes from ``run.lock`` (a live run holds it; the kernel drops a
dead process's lock), so a killed run is never shown as "rendering": rows of a stopped run are
counted from the ledger (done, failed, ambiguous, left to resume), and the ledger's record of
the latest session's end says how it stopped (finished, halted, interrupted, or no record at
all: killed or crashed). Only a live run's request rate comes from its log's newest ``rate``
event.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.events import LOG_NAME, human_duration
from orchestrator.input import flows
from orchestrator.ledger.file import lock_holder
from orchestrator.ledger.protocol import RECENT_DONE_S, LedgerState
from orchestrator.ledger.row_state import RowState
from orchestrator.report.results import Usage

STAGE_ORDER = (
    "done",
    "downloading",
    "rendering",
    "render requested",
    "previewing",
    "queued",
    "to resume",
    "failed",
    "ambiguous",
)
"""The order rows are listed by stage, in `status` and on the live page."""
ETA_WINDOW_S = RECENT_DONE_S


def row_stage(state: RowState) -> str:
    """The row's place in the pipeline, as a person would name it (before its render, as its
    flow names it: ``flows.Flow.progress``)."""
    if state.status != "pending":
        return state.status
    if state.video_url is not None:
        return "downloading"
    if state.render_job is not None:
        return "rendering"
    if state.render_intent:
        return "render requested"
    flow = flows.find(state.flow)
    before = flow.progress(state) if flow is not None else None
    if before is None and state.preview_job is not None:
        before = "previewing"  # a row recorded before rows named their flow
    return before or "queued"


SETTLED = ("done", "failed", "ambiguous")
SIMULATED_COST = "against the embedded simulator: nothing is billed"
"""What an option that renders again costs under ``--simulate`` (``next_command``'s note)."""


def next_command(
    run_dir: Path | str,
    *,
    total: int,
    done: int,
    ambiguous: int,
    failed_permanent: int,
    shared: bool = False,
    simulated: bool = False,
) -> str | None:
    """The one command that continues a batch, or None when nothing is left to render.
    ``run_dir``: the run directory (a path, quoted for the shell here), or a ready-quoted
    reference: a run directory, or for a ``shared`` batch ``--ledger URL --batch NAME``.

    The command works as printed, pasted into a shell in the folder it was printed in: the run
    directory records what the batch runs against (``RunStarted.target``), and ``resume``
    reuses it. A plain resume retries every row but the done, the ambiguous and the permanently
    failed; when only those remain, the option that renders them is named, with what it costs
    after a ``#`` (a shell comment): renders billed again, or nothing under ``--simulate``."""
    ref = shlex.quote(str(run_dir)) if isinstance(run_dir, Path) else run_dir
    command = f"orchestrator worker {ref}" if shared else f"orchestrator resume {ref}"
    if total - done - ambiguous - failed_permanent > 0:
        return command
    if failed_permanent:
        cost = (
            SIMULATED_COST
            if simulated
            else f"renders {failed_permanent} row(s) again: each render is billed"
        )
        return f"{command} --retry-failed  # {cost}"
    if ambiguous:
        cost = (
            SIMULATED_COST
            if simulated
            else f"may bill twice: {ambiguous} render(s) may exist already; see docs/failures.md"
        )
        return f"{command} --rerender-ambiguous  # {cost}"
    return None


@dataclass
class Liveness:
    """Live (who holds the lock) or stopped (how and when, from the log's last session)."""

    live: bool
    pid: Any = None
    host: str | None = None
    since_ts: float | None = None
    how: str | None = None
    when_ts: float | None = None

    def line(self) -> str:
        if self.live:
            since = f" since {_clock(self.since_ts)}" if self.since_ts else ""
            return f"live: pid {self.pid} on {self.host}{since}"
        when = f" at {_clock(self.when_ts)}" if self.when_ts else ""
        return f"stopped{when}: {self.how}"


@dataclass
class StatusReport:
    total_rows: int | None
    by_stage: Counter[str] = field(default_factory=Counter)
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    eta_s: float | None = None
    rows_per_min: float | None = None
    current_rps: float | None = None
    limit_rps: float | None = None
    liveness: Liveness | None = None
    run_dir: Path | None = None
    permanent_failures: int = 0
    simulated: bool = False
    """The batch's latest session ran against the embedded simulator (``--simulate``)."""
    usage: Usage = field(default_factory=Usage)
    """What the batch's finished renders consumed so far (video minutes, AI credits)."""

    def next_command(self, shared_ref: str | None = None) -> str | None:
        """The command that continues a stopped batch, or None when nothing is left.
        ``shared_ref``: a shared batch's ``--ledger URL --batch NAME`` (workers may be live)."""
        if shared_ref is None and (
            self.liveness is None or self.liveness.live or self.run_dir is None
        ):
            return None
        seen = sum(self.by_stage.values())
        total = self.total_rows if self.total_rows is not None else seen
        return next_command(
            shared_ref or self.run_dir or "",
            shared=shared_ref is not None,
            total=total,
            done=self.by_stage["done"],
            ambiguous=self.by_stage["ambiguous"],
            failed_permanent=self.permanent_failures,
            simulated=self.simulated,
        )

    def as_dict(self) -> dict[str, Any]:
        live = self.liveness
        return {
            "state": None if live is None else ("live" if live.live else "stopped"),
            "pid": live.pid if live else None,
            "host": live.host if live else None,
            "since": live.since_ts if live else None,
            "stopped_how": live.how if live and not live.live else None,
            "stopped_at": live.when_ts if live and not live.live else None,
            "total_rows": self.total_rows,
            "rows": dict(self.by_stage),
            "failures": {k: {"count": c, "example": e} for k, (c, e) in self.failures.items()},
            "rows_per_min": self.rows_per_min,
            "request_rate_per_s": self.current_rps,
            "request_limit_per_s": self.limit_rps,
            "eta_s": self.eta_s,
            "consumed": {
                "renders": self.usage.renders,
                "video_minutes": round(self.usage.video_minutes, 3),
                "ai_credits": round(self.usage.credits, 3),
            },
            "next": self.next_command(),
        }

    def lines(self) -> list[str]:
        seen = sum(self.by_stage.values())
        total = self.total_rows if self.total_rows is not None else seen
        out = [self.liveness.line()] if self.liveness is not None else []
        out.append(f"rows: {total} in the manifest, {seen} seen by a run")
        for stage in STAGE_ORDER:
            if self.by_stage.get(stage):
                out.append(f"  {stage:<17} {self.by_stage[stage]}")
        if total > seen:
            out.append(f"  {'not started':<17} {total - seen}")
        for kind, (count, example) in sorted(self.failures.items()):
            out.append(f"failed ({kind}): {count}, e.g. {example}")
        if self.usage.renders:
            out.append(f"consumed: {self.usage.line()}")
        if self.rows_per_min is not None:
            out.append(
                f"throughput: {self.rows_per_min:.1f} rows/min over the last "
                f"{ETA_WINDOW_S / 60:.0f} min"
            )
        if self.current_rps is not None:
            limit = f" (limit now {self.limit_rps:.1f})" if self.limit_rps is not None else ""
            out.append(f"request rate: {self.current_rps:.2f} req/s sent{limit}")
        if self.eta_s is not None:
            out.append(f"eta: {human_duration(self.eta_s)}")
        command = self.next_command()
        if command is not None:
            out.append(f"next: {command}")
        return out


def status(
    run_dir: Path | None,
    state: LedgerState,
    total_rows: int | None = None,
    *,
    live: bool | None = None,
) -> StatusReport:
    """Where the batch whose ledger folded into ``state`` stands; ``run_dir`` tells whether it
    is live and how it stopped (a shared batch has none: ``live`` says whether a worker holds
    its rows)."""
    done_times = state.recent_done
    liveness = _liveness(run_dir, state) if run_dir is not None else Liveness(live=bool(live))
    report = StatusReport(
        total_rows=total_rows, liveness=liveness, run_dir=run_dir, simulated=simulated(state)
    )
    for row in state.rows.values():
        report.usage.add(row)
        stage = row_stage(row)
        if not liveness.live and stage not in SETTLED:
            stage = "to resume"  # nothing is in flight: the process that ran it is gone
        report.by_stage[stage] += 1
        if stage in ("failed", "ambiguous"):
            kind = row.fail_kind or stage
            count, example = report.failures.get(kind, (0, row.fail_message or ""))
            report.failures[kind] = (count + 1, example)
            report.permanent_failures += stage == "failed" and row.fail_permanent
    if done_times:
        last = done_times[-1]
        recent = [t for t in done_times if t >= last - ETA_WINDOW_S]  # downloads end unordered
        span_s = max(last - recent[0], 1.0)
        if len(recent) >= 2:
            per_s = (len(recent) - 1) / span_s
            report.rows_per_min = per_s * 60
            total = total_rows if total_rows is not None else len(state.rows)
            remaining = (
                total
                - report.by_stage["done"]
                - report.by_stage["failed"]
                - report.by_stage["ambiguous"]
            )
            report.eta_s = remaining / per_s if per_s > 0 and remaining > 0 else 0.0
    if liveness.live and run_dir is not None:
        report.current_rps, report.limit_rps = _last_rate(run_dir / LOG_NAME)
    else:
        report.eta_s = report.rows_per_min = None  # a stopped run has no rate and no ETA
    return report


def simulated(state: LedgerState) -> bool:
    """Whether the batch's latest session ran against the embedded simulator (its ``run``
    record's ``target``; a ledger older than targets says nothing: False)."""
    target = state.runs[-1].target if state.runs else None
    return bool(target and target.get("simulate"))


def _liveness(run_dir: Path, state: LedgerState) -> Liveness:
    """Live (who holds the run lock) or stopped: how, from the ledger's record of the latest
    session's end (none after its ``run`` record: killed or crashed), and when."""
    holder = lock_holder(run_dir)
    if holder is not None:
        since = holder.get("since")
        return Liveness(
            live=True,
            pid=holder.get("pid"),
            host=str(holder.get("host")),
            since_ts=float(since) if isinstance(since, int | float) else None,
        )
    end = state.last_end
    if end is None:
        how = "the process ended without finishing (killed, crashed or the machine stopped)"
    elif end.how == "interrupted":
        how = f"interrupted ({end.reason})"
    elif end.how == "halted":
        how = f"stopped admitting rows: {end.reason}"
    else:
        how = "finished"
    return Liveness(live=False, how=how, when_ts=state.sessions.last_at)


def _clock(ts: float | None) -> str:
    if ts is None:
        return "?"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _last_rate(log: Path) -> tuple[float | None, float | None]:
    """The measured request rate and the limiter's ceiling from the newest ``rate`` event in
    the log (its tail only)."""
    if not log.exists():
        return None, None
    with log.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - 64 * 1024))
        tail = f.read().splitlines()
    for raw in reversed(tail):
        try:
            event: Any = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "rate":
            return _number(event.get("rps")), _number(event.get("limit_rps"))
    return None, None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
