"""``/metrics`` over HTTP: on ``run`` and ``worker`` (``--metrics-port``) and on ``serve``.

The one module of ``report`` that imports aiohttp (the import-linter contract names it): the
metrics are served from the run's own event loop, so a scrape reads the ledger's read side
between two steps of the run, never beside it in another thread.

- ``run_metrics(settings, sink)``: what ``run.execute`` wraps a run in when asked for metrics:
  a ``RunMetrics`` fed from the run's events, served by ``serve_metrics`` at ``[metrics] port``
  (``--metrics-port``), and a ``metrics_listening`` event with its URL.
- ``serve_metrics(metrics, host=..., port=...)``: a small server of its own, for ``run`` and
  ``worker``; loopback unless told otherwise.
- ``add_metrics_routes(app, metrics)``: for a server that exists already (``GET /metrics``).
- ``live_page_metrics(read)``: what ``orchestrator serve`` gives ``report.live.server.build_app``
  in ``extend=[...]``: ``/metrics`` with rows by state from the page's own reading of the batch
  (``read``: its reader's ``read``; ``metrics.rows_from_view``). A ``serve`` process runs no
  rows, so its counters stay at 0: the batch's rows are what it tells.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from orchestrator.config import MetricsConfig
from orchestrator.errors import UserError
from orchestrator.events import FanoutSink, Sink
from orchestrator.report.metrics import RunMetrics, rows_from_view

METRICS_PATH = "/metrics"
LOOPBACK = "127.0.0.1"
SHUTDOWN_TIMEOUT_S = 1.0
"""At the end of a run, a scraper's open connection is waited for this long at most."""


def add_metrics_routes(app: web.Application, metrics: RunMetrics) -> None:
    """Answer ``GET /metrics`` on ``app`` with ``metrics`` in Prometheus' text format."""

    async def handle(request: web.Request) -> web.Response:
        body, content_type = await metrics.exposition(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get(METRICS_PATH, handle)


def live_page_metrics(
    read: Callable[[], Awaitable[Mapping[str, Any]]],
) -> Callable[[web.Application], None]:
    """An ``extend`` of the live page's ``build_app``: adds ``/metrics`` (see the docstring)."""
    metrics = RunMetrics()
    metrics.watch(rows_from_view(read))

    def add(app: web.Application) -> None:
        add_metrics_routes(app, metrics)

    return add


@contextlib.asynccontextmanager
async def serve_metrics(
    metrics: RunMetrics, *, host: str = LOOPBACK, port: int = 0
) -> AsyncIterator[str]:
    """Serve ``metrics`` at ``http://host:port/metrics`` (port 0: any free one) while inside;
    yields that URL. A port that cannot be bound is a ``UserError`` naming it."""
    app = web.Application()
    add_metrics_routes(app, metrics)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise UserError(
                f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror}); "
                "choose a free port, or 0 for any"
            ) from exc
        bound = int(runner.addresses[0][1])  # the port actually bound (0: one chosen)
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}{METRICS_PATH}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def run_metrics(
    settings: MetricsConfig, sink: Sink, metrics: RunMetrics | None = None
) -> AsyncIterator[tuple[Sink, RunMetrics]]:
    """Yields the run's sink with ``metrics`` (a new ``RunMetrics`` when None) listening too,
    and the metrics; served at ``settings.port`` (when set) while inside."""
    metrics = metrics if metrics is not None else RunMetrics()
    # One fan-out for every event, not two (the run's own sink is usually one already).
    fed = FanoutSink(*sink.sinks, metrics) if isinstance(sink, FanoutSink) else None
    fed = fed or FanoutSink(sink, metrics)
    if settings.port is None:
        yield fed, metrics
        return
    async with serve_metrics(metrics, host=settings.host, port=settings.port) as url:
        sink.emit("metrics_listening", url=url)
        yield fed, metrics
