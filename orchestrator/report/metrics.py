"""Prometheus metrics of a batch: ``RunMetrics``, fed by the event sink and the ledger's read side.

One listener, no second bookkeeping path: ``RunMetrics`` is a ``Sink`` (``events``) that the run
fans its events into, and it turns the events it knows into counters and histograms; rows by
state come from the ledger's read side (``rows_from_ledger``), read when ``/metrics`` is
scraped. Each ``RunMetrics`` has its own ``CollectorRegistry``, never the global one (tests run
many runs in one process). ``prometheus_client`` writes the exposition; this module is imported
only when metrics are asked for (``--metrics-port``, ``[metrics] port``, ``serve``), so
``orchestrator --help`` and ``status`` never load it. The HTTP side is
``report.metrics_server``.

Metric                                      type       labels                  from
==========================================  =========  ======================  ==================
``orchestrator_rows``                       gauge      ``state``               the ledger
``orchestrator_rows_finished_total``        counter    ``state``               ``row_done``...
``orchestrator_api_requests_total``         counter    ``method``, ``route``,  ``request``
                                                       ``status_class``
``orchestrator_api_rate_limited_total``     counter    ``route``               ``request`` (429)
``orchestrator_api_retries_total``          counter    ``route``, ``reason``   ``retry``
``orchestrator_limiter_wait_seconds``       histogram                          ``request``
``orchestrator_renders_total``              counter                            ``stage`` (render)
``orchestrator_render_seconds``             histogram                          ``row_done``
``orchestrator_download_seconds``           histogram                          ``row_done``
``orchestrator_downloaded_bytes_total``     counter                            ``row_done``
``orchestrator_lease_takeovers_total``      counter                            ``row_taken_over``
==========================================  =========  ======================  ==================

Counters count what this process did since it started; ``orchestrator_rows`` is the whole
batch's (every worker's, on a shared batch), as the ledger says.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, ClassVar

import anyio
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.exposition import choose_encoder

from orchestrator.clock import Clock, RealClock
from orchestrator.ledger.protocol import Ledger

ROW_STATES = ("pending", "done", "failed", "ambiguous")
"""Every state ``orchestrator_rows`` shows (0 when no row is in it)."""

RENDER_BUCKETS_S = (5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
DOWNLOAD_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
WAIT_BUCKETS_S = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

ROWS_MIN_AGE_S = 15.0
"""Rows by state are read from the ledger at a scrape at most this often (and anew once the run
has finished)..."""
ROWS_COST_FACTOR = 100.0
"""...and at most once per this many times what the last reading took: on a huge batch, whose
reading is slow (a local ledger's rows are read back from its row store), scrapes reuse the last
counts rather than spend more than 1 % of the run's time. Prometheus scrapes every 15 s or more
as commonly set up, so neither limit shows there; a faster scraper sees counts up to 15 s old."""

FINAL_READ_MAX_S = 1.0
"""At the end of a run the counts are read once more, to be final, unless a reading took longer
than this (a huge shared batch): then the usual limits above decide, and the end is not held up.
"""

ROUTES_KEPT = 4096
"""Paths whose route label is remembered (a job is polled at the same path many times)."""

RowsByState = Callable[[], Awaitable[Mapping[str, int]]]
"""Counts rows by state (``pending``, ``done``, ``failed``, ``ambiguous``)."""

_ID_AFTER = frozenset({"jobs", "render"})
_ID_LIKE = re.compile(r"[0-9A-Fa-f-]{16,}|\d+")


def route_of(path: str) -> str:
    """A request path as a metric label: job ids and other ids become ``{id}``, so a label has a
    handful of values (``/v1/jobs/{id}``), never one per job."""
    parts = path.split("?", 1)[0].split("/")
    for i in range(1, len(parts)):
        part = parts[i]
        if part and (
            parts[i - 1] in _ID_AFTER
            or ((len(part) >= 16 or part.isdigit()) and _ID_LIKE.fullmatch(part))
        ):
            parts[i] = "{id}"
    return "/".join(parts)


def status_class(status: int | None) -> str:
    """``2xx``, ``4xx``...; ``none``: the request got no answer (connection lost, timed out)."""
    return "none" if status is None else f"{status // 100}xx"


def rows_from_ledger(ledger: Ledger, total: int | None = None) -> RowsByState:
    """Rows by state from ``ledger``'s read side (``Ledger.snapshot``); rows it has not seen yet
    are pending (``total``: the batch's size, when the ledger does not know it)."""

    async def count() -> Mapping[str, int]:
        snapshot = await ledger.snapshot()
        try:
            counts: Counter[str] = Counter(r.status for r in snapshot.state.rows.values())
            size = snapshot.total if snapshot.total is not None else total
        finally:
            snapshot.close()
        seen = sum(counts.values())
        if size is not None and size > seen:
            counts["pending"] += size - seen
        return counts

    return count


def rows_from_view(read: Callable[[], Awaitable[Mapping[str, Any]]]) -> RowsByState:
    """Rows by state from a reading of the live page (``report.live``: ``read`` is its
    reader's ``read``; the view's ``total`` and ``stages``, ``[[stage, rows]...]``): done,
    failed and ambiguous as they are, every other stage (in flight, queued, not started)
    pending. ``orchestrator serve`` reads its batch this way, the one read side of the page."""

    async def count() -> Mapping[str, int]:
        view = await read()
        counts: Counter[str] = Counter()
        for stage, rows in view.get("stages") or ():
            counts[stage if stage in ROW_STATES else "pending"] += int(rows)
        size = view.get("total")
        seen = sum(counts.values())
        if isinstance(size, int) and size > seen:
            counts["pending"] += size - seen
        return counts

    return count


class RunMetrics:
    """A run's metrics in a registry of their own; a ``Sink`` (``emit``) that asks for the
    per-request ``request`` events (``events.DETAIL_KINDS``)."""

    detail_kinds = frozenset({"request"})

    def __init__(self, clock: Clock | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock or RealClock()
        self._rows_by_state: RowsByState | None = None
        self._rows_read_at_s: float | None = None
        self._rows_cost_s = 0.0
        reg = self.registry
        self.rows = Gauge(
            "orchestrator_rows", "Rows of the batch by state", ["state"], registry=reg
        )
        self.rows_finished = PromCounter(
            "orchestrator_rows_finished",
            "Rows this process finished, by the state they ended in",
            ["state"],
            registry=reg,
        )
        self.requests = PromCounter(
            "orchestrator_api_requests",
            "API requests sent, by route and status class (none: no answer)",
            ["method", "route", "status_class"],
            registry=reg,
        )
        self.rate_limited = PromCounter(
            "orchestrator_api_rate_limited",
            "API requests answered 429 (too many requests)",
            ["route"],
            registry=reg,
        )
        self.retries = PromCounter(
            "orchestrator_api_retries",
            "API requests tried again, by route and reason",
            ["route", "reason"],
            registry=reg,
        )
        self.limiter_wait = Histogram(
            "orchestrator_limiter_wait_seconds",
            "Time a request waited for its turn at the rate limiter",
            buckets=WAIT_BUCKETS_S,
            registry=reg,
        )
        self.renders = PromCounter(
            "orchestrator_renders", "Renders this process started (billed)", registry=reg
        )
        self.render_seconds = Histogram(
            "orchestrator_render_seconds",
            "From sending a render to its video being ready, of the rows this process rendered",
            buckets=RENDER_BUCKETS_S,
            registry=reg,
        )
        self.download_seconds = Histogram(
            "orchestrator_download_seconds",
            "Time to download a video (retries included)",
            buckets=DOWNLOAD_BUCKETS_S,
            registry=reg,
        )
        self.downloaded_bytes = PromCounter(
            "orchestrator_downloaded_bytes", "Bytes of video downloaded", registry=reg
        )
        self.takeovers = PromCounter(
            "orchestrator_lease_takeovers",
            "Rows of a shared batch this worker took over from a worker whose lease expired",
            registry=reg,
        )
        for state in ROW_STATES:  # rows by state appear with the first reading of the ledger
            self.rows_finished.labels(state)
        self._request_children: dict[tuple[str, str, int | None], Any] = {}
        self._routes: dict[str, str] = {}

    # ---- the sink ------------------------------------------------------------------------------

    def emit(self, kind: str, /, **fields: Any) -> None:
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self, fields)

    def _request(self, fields: dict[str, Any]) -> None:
        method, status = fields["method"], fields["status"]
        route = self._route(fields["path"])
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, status_class(status)),
                self.rate_limited.labels(route) if status == 429 else None,
            )
            self._request_children[key] = children  # a few dozen: routes × statuses
        children[0].inc()
        if children[1] is not None:
            children[1].inc()
        self.limiter_wait.observe(float(fields.get("waited_s") or 0.0))

    def _route(self, path: str) -> str:
        """``route_of(path)``, remembered for the last ``ROUTES_KEPT`` paths (a job's polls)."""
        route = self._routes.get(path)
        if route is None:
            if len(self._routes) >= ROUTES_KEPT:
                self._routes.clear()
            route = self._routes[path] = route_of(path)
        return route

    def _retry(self, fields: dict[str, Any]) -> None:
        endpoint = str(fields.get("endpoint", ""))
        _, _, path = endpoint.partition(" ")
        self.retries.labels(route_of(path or endpoint), str(fields.get("kind", ""))).inc()

    def _stage(self, fields: dict[str, Any]) -> None:
        if fields.get("stage") == "render" and fields.get("job") is not None:
            self.renders.inc()  # the render stage's own event, once the job is recorded

    def _row_done(self, fields: dict[str, Any]) -> None:
        self.rows_finished.labels("done").inc()
        self.downloaded_bytes.inc(int(fields.get("bytes") or 0))
        if fields.get("download_s") is not None:
            self.download_seconds.observe(float(fields["download_s"]))
        if fields.get("render_s") is not None:
            self.render_seconds.observe(float(fields["render_s"]))

    def _row_failed(self, fields: dict[str, Any]) -> None:
        self.rows_finished.labels("failed").inc()

    def _row_ambiguous(self, fields: dict[str, Any]) -> None:
        self.rows_finished.labels("ambiguous").inc()

    def _taken_over(self, fields: dict[str, Any]) -> None:
        self.takeovers.inc()

    def _run_finished(self, fields: dict[str, Any]) -> None:
        self._rows_read_at_s = None  # the next scrape reads the final counts, however recent

    _handlers: ClassVar[dict[str, Callable[[RunMetrics, dict[str, Any]], None]]] = {
        "request": _request,
        "retry": _retry,
        "stage": _stage,
        "row_done": _row_done,
        "row_failed": _row_failed,
        "row_ambiguous": _row_ambiguous,
        "row_taken_over": _taken_over,
        "run_finished": _run_finished,
    }

    # ---- the read side -------------------------------------------------------------------------

    def watch(self, rows_by_state: RowsByState | None) -> None:
        """Read rows by state with ``rows_by_state`` at each scrape (e.g. ``rows_from_ledger``);
        None: keep the last counts (the ledger is closed)."""
        self._rows_by_state = rows_by_state
        self._rows_read_at_s = None

    @contextlib.asynccontextmanager
    async def watching(self, rows_by_state: RowsByState) -> AsyncIterator[None]:
        """``watch`` while inside; on the way out (before the ledger closes), read the counts a
        last time and keep them, so a scrape after the run still answers them."""
        self.watch(rows_by_state)
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                if self._rows_cost_s <= FINAL_READ_MAX_S:
                    self._rows_read_at_s = None
                await self.refresh_rows()
            self.watch(None)

    async def refresh_rows(self) -> None:
        """Read rows by state again, unless read too recently (``ROWS_MIN_AGE_S``,
        ``ROWS_COST_FACTOR``)."""
        if self._rows_by_state is None:
            return
        now_s = self._clock.now()
        if self._rows_read_at_s is not None and now_s - self._rows_read_at_s < max(
            ROWS_MIN_AGE_S, ROWS_COST_FACTOR * self._rows_cost_s
        ):
            return
        try:
            counts = await self._rows_by_state()
        except Exception:  # a scrape never breaks a run: the last counts stay
            return
        self._rows_read_at_s = self._clock.now()
        self._rows_cost_s = self._rows_read_at_s - now_s
        for state in ROW_STATES:
            self.rows.labels(state).set(counts.get(state, 0))

    async def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """What ``/metrics`` answers, and its content type: the format the scraper's ``Accept``
        header asks for, as prometheus_client's own server chooses it (Prometheus' text
        format unless OpenMetrics is asked for)."""
        await self.refresh_rows()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type
