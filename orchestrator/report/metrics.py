"""Prometheus metrics of a batch: ``RunMetrics``, fed by the event sink and the ledger's read side.

One listener, no second bookkeeping path: ``RunMetrics`` is a ``Sink`` (``events``) that the run
fans its events into, and it turns the events it knows into counters and histograms; rows by
state come from the ledger's read side (``rows_from_ledger``), read when ``/metrics`` is
scraped. The events are counted into plain numbers, and a scrape builds the metric families
from them (``report.metric_families``). Each ``RunMetrics`` has its own ``CollectorRegistry``,
never the global one (tests run many runs in one process). ``prometheus_client`` writes the
exposition; this module is imported
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
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, ClassVar

import anyio
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from orchestrator.clock import Clock, RealClock
from orchestrator.ledger.protocol import Ledger
from orchestrator.report.metric_families import BucketCounts, counter_family

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


def _is_id(part: str) -> bool:
    return (len(part) >= 16 or part.isdigit()) and _ID_LIKE.fullmatch(part) is not None


def route_of(path: str) -> str:
    """A request path as a metric label: job ids and other ids become ``{id}``, so a label has a
    handful of values (``/v1/jobs/{id}``), never one per job."""
    parts = path.split("?", 1)[0].split("/")
    for i in range(1, len(parts)):
        part = parts[i]
        if part and (parts[i - 1] in _ID_AFTER or _is_id(part)):
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
            counts: Counter[str] = Counter(snapshot.state.rows.statuses())
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
    per-request ``request`` events (``events.DETAIL_KINDS``).

    The events are counted into plain ints, dicts and bucket lists (one event loop writes them:
    no lock, unlike prometheus_client's own metrics, whose two locked updates a request were
    a measurable share of a row's CPU), and a scrape builds the metric families from them
    (``collect``: a custom collector, in ``registry``)."""

    detail_kinds = frozenset({"request"})

    def __init__(self, clock: Clock | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock or RealClock()
        self._rows_by_state: RowsByState | None = None
        self._rows_read_at_s: float | None = None
        self._rows_cost_s = 0.0
        self._rows: Mapping[str, int] | None = None  # none until the ledger is first read
        self._started = time.time()
        self._finished = dict.fromkeys(ROW_STATES, 0)
        self._requests: dict[tuple[str, str, int | None], int] = {}  # method, route, status
        self._requests_created: dict[tuple[str, str, int | None], float] = {}
        self._retries: dict[tuple[str, ...], int] = {}  # route, reason
        self._retries_created: dict[tuple[str, ...], float] = {}
        self._limiter_wait = BucketCounts(WAIT_BUCKETS_S)
        self._first_wait_s = self._limiter_wait.bounds[0]
        self._renders = 0
        self._render_seconds = BucketCounts(RENDER_BUCKETS_S)
        self._download_seconds = BucketCounts(DOWNLOAD_BUCKETS_S)
        self._downloaded_bytes = 0
        self._takeovers = 0
        self._routes: dict[str, str] = {}
        self._heads: dict[str, tuple[str, str, bool]] = {}  # route, route/{id}, id follows
        self.registry.register(self)

    # ---- the sink ------------------------------------------------------------------------------

    def emit(self, kind: str, /, **fields: Any) -> None:
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self, fields)

    def _request(self, fields: dict[str, Any]) -> None:
        path = fields["path"]
        route = self._routes.get(path) or self._route(path)
        key = (fields["method"], route, fields["status"])
        count = self._requests.get(key)
        if count is None:
            self._requests_created[key] = time.time()  # a few dozen: routes × statuses
            count = 0
        self._requests[key] = count + 1
        waited_s = fields.get("waited_s") or 0.0
        wait = self._limiter_wait
        if waited_s <= self._first_wait_s:  # most requests wait for no one
            wait.counts[0] += 1
            wait.sum += waited_s
        else:
            wait.observe(float(waited_s))

    def _route(self, path: str) -> str:
        """``route_of(path)``, remembered for the last ``ROUTES_KEPT`` paths (a job's polls);
        a new path is its head's route (all but the last part: a handful, remembered) and
        its last part, so a job id never seen before costs no ``route_of``."""
        if len(self._routes) >= ROUTES_KEPT:
            self._routes.clear()
        head, _, last = path.rpartition("/")
        if not head or "?" in path:
            route = route_of(path)
        else:
            base = self._heads.get(head)
            if base is None:
                if len(self._heads) >= ROUTES_KEPT:
                    self._heads.clear()
                base_route = route_of(head)
                id_after = base_route.rpartition("/")[2] in _ID_AFTER
                base = self._heads[head] = (base_route, f"{base_route}/{{id}}", id_after)
            route = base[1] if last and (base[2] or _is_id(last)) else f"{base[0]}/{last}"
        self._routes[path] = route
        return route

    def _retry(self, fields: dict[str, Any]) -> None:
        endpoint = str(fields.get("endpoint", ""))
        _, _, path = endpoint.partition(" ")
        key = (route_of(path or endpoint), str(fields.get("kind", "")))
        if key not in self._retries:
            self._retries_created[key] = time.time()
        self._retries[key] = self._retries.get(key, 0) + 1

    def _stage(self, fields: dict[str, Any]) -> None:
        if fields.get("stage") == "render" and fields.get("job") is not None:
            self._renders += 1  # the render stage's own event, once the job is recorded

    def _row_done(self, fields: dict[str, Any]) -> None:
        self._finished["done"] += 1
        self._downloaded_bytes += int(fields.get("bytes") or 0)
        if fields.get("download_s") is not None:
            self._download_seconds.observe(float(fields["download_s"]))
        if fields.get("render_s") is not None:
            self._render_seconds.observe(float(fields["render_s"]))

    def _row_failed(self, fields: dict[str, Any]) -> None:
        self._finished["failed"] += 1

    def _row_ambiguous(self, fields: dict[str, Any]) -> None:
        self._finished["ambiguous"] += 1

    def _taken_over(self, fields: dict[str, Any]) -> None:
        self._takeovers += 1

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

    # ---- the collector -------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """The metric families, built from the counts at each scrape (``Collector``)."""
        rows = GaugeMetricFamily(
            "orchestrator_rows", "Rows of the batch by state", labels=["state"]
        )
        for state, n in (self._rows or {}).items():
            rows.add_metric([state], n)
        yield rows
        started = self._started
        yield counter_family(
            "orchestrator_rows_finished",
            "Rows this process finished, by the state they ended in",
            ("state",),
            {(state,): n for state, n in self._finished.items()},
            started,
        )
        requests: dict[tuple[str, ...], int] = defaultdict(int)
        limited: dict[tuple[str, ...], int] = defaultdict(int)
        created: dict[tuple[str, ...], float] = {}
        limited_created: dict[tuple[str, ...], float] = {}
        for (method, route, status), n in list(self._requests.items()):
            at = self._requests_created[(method, route, status)]
            key = (method, route, status_class(status))
            requests[key] += n
            created[key] = min(created.get(key, at), at)
            if status == 429:
                limited[(route,)] += n
                limited_created[(route,)] = min(limited_created.get((route,), at), at)
        yield counter_family(
            "orchestrator_api_requests",
            "API requests sent, by route and status class (none: no answer)",
            ("method", "route", "status_class"),
            requests,
            created,
        )
        yield counter_family(
            "orchestrator_api_rate_limited",
            "API requests answered 429 (too many requests)",
            ("route",),
            limited,
            limited_created,
        )
        yield counter_family(
            "orchestrator_api_retries",
            "API requests tried again, by route and reason",
            ("route", "reason"),
            dict(self._retries),
            dict(self._retries_created),
        )
        yield self._limiter_wait.family(
            "orchestrator_limiter_wait_seconds",
            "Time a request waited for its turn at the rate limiter",
        )
        yield counter_family(
            "orchestrator_renders",
            "Renders this process started (billed)",
            (),
            {(): self._renders},
            started,
        )
        yield self._render_seconds.family(
            "orchestrator_render_seconds",
            "From sending a render to its video being ready, of the rows this process rendered",
        )
        yield self._download_seconds.family(
            "orchestrator_download_seconds", "Time to download a video (retries included)"
        )
        yield counter_family(
            "orchestrator_downloaded_bytes",
            "Bytes of video downloaded",
            (),
            {(): self._downloaded_bytes},
            started,
        )
        yield counter_family(
            "orchestrator_lease_takeovers",
            "Rows of a shared batch this worker took over from a worker whose lease expired",
            (),
            {(): self._takeovers},
            started,
        )

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
        self._rows = {state: counts.get(state, 0) for state in ROW_STATES}

    async def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """What ``/metrics`` answers, and its content type: the format the scraper's ``Accept``
        header asks for, as prometheus_client's own server chooses it (Prometheus' text
        format unless OpenMetrics is asked for)."""
        await self.refresh_rows()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type
