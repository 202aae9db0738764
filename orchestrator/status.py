"""``orchestrator status RUN_DIR``: where a batch stands, read from its ledger (works while live).

Reads without taking the run lock; a torn last line from a concurrent writer is ignored like on
replay.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import RunDirError
from orchestrator.events import LOG_NAME, human_duration
from orchestrator.ledger import LEDGER_NAME, LedgerState, read_events
from orchestrator.row_state import RowState

ETA_WINDOW_S = 600.0


def row_stage(state: RowState) -> str:
    """The row's place in the pipeline, as a person would name it."""
    if state.status != "pending":
        return state.status
    if state.video_url is not None:
        return "downloading"
    if state.render_job is not None:
        return "rendering"
    if state.render_intent:
        return "render requested"
    if state.preview_job is not None:
        return "previewing"
    return "queued"


@dataclass
class StatusReport:
    total_rows: int | None
    by_stage: Counter[str] = field(default_factory=Counter)
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    eta_s: float | None = None
    rows_per_min: float | None = None
    current_rps: float | None = None

    def lines(self) -> list[str]:
        seen = sum(self.by_stage.values())
        total = self.total_rows if self.total_rows is not None else seen
        out = [f"rows: {total} in the manifest, {seen} seen by a run"]
        order = [
            "done",
            "downloading",
            "rendering",
            "render requested",
            "previewing",
            "queued",
            "failed",
            "ambiguous",
        ]
        for stage in order:
            if self.by_stage.get(stage):
                out.append(f"  {stage:<17} {self.by_stage[stage]}")
        if total > seen:
            out.append(f"  {'not started':<17} {total - seen}")
        for kind, (count, example) in sorted(self.failures.items()):
            out.append(f"failed ({kind}): {count}, e.g. {example}")
        if self.rows_per_min is not None:
            out.append(
                f"throughput: {self.rows_per_min:.1f} rows/min over the last "
                f"{ETA_WINDOW_S / 60:.0f} min"
            )
        if self.current_rps is not None:
            out.append(f"request rate: {self.current_rps:.2f} req/s (adaptive limiter)")
        if self.eta_s is not None:
            out.append(f"eta: {human_duration(self.eta_s)}")
        return out


def status(run_dir: Path, total_rows: int | None = None) -> StatusReport:
    path = run_dir / LEDGER_NAME
    if not path.exists():
        raise RunDirError(f"{run_dir} holds no ledger ({LEDGER_NAME}); is it a run directory?")
    state = LedgerState()
    done_times: list[float] = []
    for _, event in read_events(path):
        state.apply_replayed(event)
        if event.get("e") == "downloaded":
            done_times.append(float(event.get("ts", 0.0)))
    report = StatusReport(total_rows=total_rows)
    for row in state.rows.values():
        stage = row_stage(row)
        report.by_stage[stage] += 1
        if stage in ("failed", "ambiguous"):
            kind = row.fail_kind or stage
            count, example = report.failures.get(kind, (0, row.fail_message or ""))
            report.failures[kind] = (count + 1, example)
    if done_times:
        last = done_times[-1]
        recent = [t for t in done_times if t >= last - ETA_WINDOW_S]
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
    report.current_rps = _last_rate(run_dir / LOG_NAME)
    return report


def _last_rate(log: Path) -> float | None:
    """The limiter's current rate from the newest ``rate`` event in the log (its tail only)."""
    if not log.exists():
        return None
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
            value = event.get("rps")
            return float(value) if isinstance(value, int | float) else None
    return None
