"""Tell someone when a run ends, halts or waits for approval: one JSON POST to ``[notify] url``.

The body is Slack-compatible (an incoming webhook shows its ``text``) and carries structured
counts for anything else::

    {"text": "orchestrator: runs/nov finished: 498 done, 2 failed ... of 500 rows ...",
     "event": "finished" | "halted" | "interrupted" | "awaiting_approval",
     "run_dir": "...", "total": 500, "counts": {"done": 498, "failed": 2, ...},
     "started_this_run": 500, "elapsed_s": 3712.4, "requests": 2481,
     "reason": null | "halt policy: ...", "report": ".../report.html", "approve": null | "..."}

It holds no secrets: only counts, paths and our own messages. The URL itself often is one (a
Slack webhook's path is its key), so it is never logged or recorded: config keeps it as a
``SecretStr`` (the ledger shows ``**********``) and events name only its host.

A notification that fails (refused, timed out, answered 4xx/5xx) is logged as
``notify_failed`` and never fails the run. The request is sent with the standard library's
``urllib`` in a worker thread: one small POST per run needs no session, and this module is the
one place its errors are translated.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

import orchestrator
from orchestrator.events import Sink

NOTIFY_TIMEOUT_S = 10.0
USER_AGENT = f"{orchestrator.USER_AGENT} (notify)"
STATUS_ORDER = ("done", "failed", "ambiguous", "pending")


def outcome(*, awaiting_approval: bool, interrupted: bool, stop_reason: str | None) -> str:
    """What happened to the run, as the notification's ``event``."""
    if awaiting_approval:
        return "awaiting_approval"
    if interrupted:
        return "interrupted"
    if stop_reason is not None:
        return "halted"
    return "finished"


def build_payload(
    *,
    event: str,
    run_dir: Path,
    counts: Counter[str],
    started: int,
    elapsed_s: float,
    requests: int,
    reason: str | None,
    report: Path | None,
    approve: str | None,
) -> dict[str, Any]:
    """The JSON body: a ``text`` line for people and chat tools, and the counts for machines."""
    total = sum(counts.values())
    parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in STATUS_ORDER)
    verb = {
        "finished": "finished",
        "halted": "halted",
        "interrupted": "was interrupted",
        "awaiting_approval": "waits for approval of its canary",
    }.get(event, event)
    text = f"orchestrator: {run_dir} {verb}: {parts} of {total} rows in {elapsed_s:.0f} s"
    if reason:
        text += f" ({reason})"
    if approve:
        text += f". {approve}"
    elif report is not None:
        text += f". Report: {report}"
    return {
        "text": text,
        "event": event,
        "run_dir": str(run_dir),
        "total": total,
        "counts": {s: counts.get(s, 0) for s in STATUS_ORDER},
        "started_this_run": started,
        "elapsed_s": round(elapsed_s, 3),
        "requests": requests,
        "reason": reason,
        "report": str(report) if report is not None else None,
        "approve": approve,
    }


async def send(
    url: str, payload: dict[str, Any], sink: Sink, *, timeout_s: float = NOTIFY_TIMEOUT_S
) -> bool:
    """POST ``payload``; True when answered 2xx. Never raises for a failed notification."""
    host = urlsplit(url).hostname or "?"
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    try:
        status = await anyio.to_thread.run_sync(_post, url, body, timeout_s)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            exc.close()  # it holds the answer's connection
        sink.emit("notify_failed", host=host, error=_describe(exc))
        return False
    sink.emit("notified", host=host, event=payload.get("event"), status=status)
    return True


def _post(url: str, body: bytes, timeout_s: float) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    # Only http(s) reaches here: config.NotifyConfig refuses other schemes.
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()
        status: int = response.status
        return status


def _describe(exc: BaseException) -> str:
    """The failure without the URL (its path may be a key)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"answered HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return str(reason.strerror if isinstance(reason, OSError) and reason.strerror else reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
