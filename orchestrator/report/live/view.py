"""What the live page shows: one JSON object built from a batch's folded ledger state and its
``status`` report (the read side ``orchestrator status`` and the report use).

Every field is picked here by name: the page gets row ids, states, the API's failure messages,
counts and rates, never the recorded config (which may name a webhook secret's source or a
notification URL) nor a database URL with its password.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from orchestrator.events import human_duration
from orchestrator.ledger.protocol import LedgerState
from orchestrator.report.page import DEFAULT_HINT, HINTS, MESSAGES_PER_KIND, FailureGroup
from orchestrator.report.status import ETA_WINDOW_S, STAGE_ORDER, StatusReport
from orchestrator.report.thumbnails import poster_frame, poster_name

IN_FLIGHT_STAGES = ("render requested", "rendering")
"""A render is in flight from its request until its job is ready (``status.row_stage``)."""
MAX_FAILED_ROWS_SHOWN = 200
"""Failed and ambiguous rows listed by id on the page (the report lists them all)."""
NEWEST_POSTERS = 8


@dataclass(frozen=True)
class Worker:
    """A live worker of a shared batch, as the page shows it."""

    worker: str
    account: str | None
    rows: int
    lease_until_s: float
    lease_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "account": (self.account or "")[:8] or None,
            "rows": self.rows,
            "lease_until": self.lease_until_s,
            "last_heartbeat": self.lease_until_s - self.lease_s,
        }


@dataclass
class PosterShelf:
    """The newest finished videos' posters: rows are ranked by when this page first saw them
    done (at the first reading, by their video's modification time), and their posters are made
    (and kept) under ``videos/thumbs`` like the report's."""

    videos: Path | None
    rank: dict[str, float] = field(default_factory=dict)
    _seen_first: bool = False

    def newest(self, state: LedgerState, now_s: float) -> list[dict[str, str]]:
        if self.videos is None:
            return []
        fresh = [
            (row.row, row.file)
            for row in state.rows.values()
            if row.status == "done" and row.file and row.row not in self.rank
        ]
        for row_id, file in fresh:
            self.rank[row_id] = self._first_rank(file, now_s)
        self._seen_first = True
        done = {row.row: row.file for row in state.rows.values() if row.status == "done"}
        newest = sorted((r for r in self.rank if done.get(r)), key=lambda r: -self.rank[r])
        shown = []
        for row_id in newest[:NEWEST_POSTERS]:
            file = done[row_id] or ""
            made = poster_frame(self.videos / file, self.videos / poster_name(file))
            if made is not None:
                shown.append({"id": row_id, "poster": quote(poster_name(file), safe="/")})
        return shown

    def _first_rank(self, file: str | None, now_s: float) -> float:
        if self._seen_first or self.videos is None or not file:
            return now_s
        try:
            return os.stat(self.videos / file).st_mtime
        except OSError:
            return 0.0


def _config_number(state: LedgerState, section: str, key: str) -> float | None:
    config = state.runs[-1].config if state.runs else None
    values = config.get(section) if isinstance(config, dict) else None
    value = values.get(key) if isinstance(values, dict) else None
    return float(value) if isinstance(value, int | float) else None


def failures(state: LedgerState) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The failures grouped by cause (as the report groups them) and the failed or ambiguous
    rows themselves (at most ``MAX_FAILED_ROWS_SHOWN``)."""
    groups: dict[str, FailureGroup] = {}
    listed: list[dict[str, Any]] = []
    for row in state.rows.values():
        if row.status not in ("failed", "ambiguous"):
            continue
        kind = row.fail_kind or row.status
        groups.setdefault(kind, FailureGroup()).add(row.row, row.fail_message or "")
        if len(listed) < MAX_FAILED_ROWS_SHOWN:
            listed.append(
                {
                    "id": row.row,
                    "line": row.line,
                    "status": row.status,
                    "kind": kind,
                    "message": row.fail_message or "",
                }
            )
    shown = [
        {
            "kind": kind,
            "count": group.count,
            "hint": HINTS.get(kind, DEFAULT_HINT),
            "messages": group.messages.most_common(MESSAGES_PER_KIND),
            "rows": group.examples,
        }
        for kind, group in sorted(groups.items(), key=lambda kv: -kv[1].count)
    ]
    return shown, listed


def canary(state: LedgerState, approve: str) -> dict[str, Any] | None:
    """The canary's rows by state and, while it waits, the command that approves it."""
    if state.canary_rows is None:
        return None
    counts: Counter[str] = Counter()
    for row_id in state.canary_rows:
        row = state.rows.get(row_id)
        counts[row.status if row is not None else "pending"] += 1
    return {
        "rows": len(state.canary_rows),
        "by_status": dict(counts),
        "waiting": state.canary_waiting,
        "approve": approve if state.canary_waiting else None,
    }


def build_view(
    *,
    title: str,
    where: str,
    state: LedgerState,
    report: StatusReport,
    approve: str,
    next_command: str | None,
    now_s: float,
    posters: Callable[[LedgerState], list[dict[str, str]]] = lambda _: [],
    workers: list[Worker] | None = None,
) -> dict[str, Any]:
    """The page's JSON: ``report`` is ``status``'s (the same honesty rules: a stopped batch
    has no rate and no ETA), ``approve`` the command that approves a waiting canary,
    ``workers`` a shared batch's live workers (None: a run directory)."""
    seen = sum(report.by_stage.values())
    total = report.total_rows if report.total_rows is not None else seen
    stages = [[s, report.by_stage[s]] for s in STAGE_ORDER if report.by_stage.get(s)]
    if total > seen:
        stages.append(["not started", total - seen])
    grouped, failed_rows = failures(state)
    live = report.liveness
    return {
        "title": title,
        "where": where,
        "shared": workers is not None,
        "live": bool(live and live.live),
        "state_line": live.line() if live else "",
        "total": total,
        "stages": stages,
        "done": report.by_stage["done"],
        "rate": {
            "measured_per_s": report.current_rps,
            "limit_per_s": report.limit_rps,
            "configured_per_s": _config_number(state, "limits", "max_requests_per_s"),
        },
        "renders": {
            "in_flight": sum(report.by_stage[s] for s in IN_FLIGHT_STAGES),
            "cap": _config_number(state, "limits", "max_renders_in_flight"),
        },
        "rows_per_min": report.rows_per_min,
        "eta_s": report.eta_s,
        "eta": human_duration(report.eta_s) if report.eta_s is not None else None,
        "eta_window_min": ETA_WINDOW_S / 60,
        "workers": [w.as_dict() for w in workers] if workers is not None else None,
        "failures": grouped,
        "failed_rows": failed_rows,
        "posters": posters(state),
        "canary": canary(state, approve),
        "next": next_command,
        "read_at": now_s,
    }
