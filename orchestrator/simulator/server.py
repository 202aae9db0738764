"""The aiohttp application and the in-process server.

    async with running_simulator(SimSettings.for_profile("test"), port=0) as sim:
        client_base_url = sim.base_url          # http://127.0.0.1:PORT/pictoryapis
        ...
        assert sim.stats()["duplicate_renders"] == 0

URL layout: the API under ``/pictoryapis`` (paths equal production's), the CDN under
``/__cdn__/``, signed uploads under ``/__storage__/``, accounting at ``/__sim__/stats``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web import AbstractRoute

from orchestrator.simulator import routes_cdn
from orchestrator.simulator.core import Clock, Simulator
from orchestrator.simulator.middleware import RequestLog, make_middleware
from orchestrator.simulator.routes_api import API_PREFIX, ROUTES, SIM_KEY, RouteSpec
from orchestrator.simulator.routes_lookup import LOOKUP_ROUTES
from orchestrator.simulator.routes_v2 import V2_ROUTES
from orchestrator.simulator.settings import SimSettings
from orchestrator.simulator.webhooks import WebhookDispatcher

MAX_TEMPLATE_BYTES = 64 * 1024 * 1024
SHUTDOWN_TIMEOUT_S = 2.0
"""How long stopping waits for requests still being handled (a slow fault may be sleeping)."""


class _ClientHungUp(logging.Filter):
    """A client that hangs up mid-request (a double Ctrl-C, a killed run) is routine for a
    server: aiohttp logs it as "Error handling request" with a traceback; drop those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionResetError)  # aiohttp's own reset errors included


_HUNG_UP = _ClientHungUp()


def create_app(
    sim: Simulator | None = None,
    *,
    log_request: RequestLog | None = None,
    extra_routes: Sequence[RouteSpec] = (),
) -> web.Application:
    """The simulator as an ``aiohttp.web.Application`` (usable with aiohttp's ``TestServer``).
    ``extra_routes``: API routes beyond Pictory's, served like them (auth, rate limit, faults,
    counting): how a test gives a flow registered outside the package an endpoint to call."""
    server_log = logging.getLogger("aiohttp.server")
    if _HUNG_UP not in server_log.filters:
        server_log.addFilter(_HUNG_UP)
    sim = sim or Simulator()
    specs: dict[AbstractRoute, RouteSpec] = {}
    app = web.Application(client_max_size=MAX_TEMPLATE_BYTES)
    app.middlewares.append(make_middleware(sim, specs, log_request))
    app[SIM_KEY] = sim
    for spec in (*ROUTES, *V2_ROUTES, *LOOKUP_ROUTES, *extra_routes):
        route = app.router.add_route(spec.method, API_PREFIX + spec.path, spec.handler)
        specs[route] = spec
    routes_cdn.add_routes(app)

    async def webhooks(app: web.Application) -> AsyncIterator[None]:
        dispatcher = WebhookDispatcher(sim)
        await dispatcher.start()
        yield
        await dispatcher.stop()

    app.cleanup_ctx.append(webhooks)
    return app


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on a loopback port."""

    simulator: Simulator
    host: str
    port: int

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (the CDN and stats live here)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client uses instead of ``https://api.pictory.ai/pictoryapis``."""
        return self.root_url + API_PREFIX

    @property
    def stats_url(self) -> str:
        return self.root_url + "/__sim__/stats"

    @property
    def settings(self) -> SimSettings:
        return self.simulator.settings

    def stats(self) -> dict[str, Any]:
        return self.simulator.stats()


@asynccontextmanager
async def running_simulator(
    settings: SimSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock | None = None,
    log_request: RequestLog | None = None,
    extra_routes: Sequence[RouteSpec] = (),
) -> AsyncIterator[RunningSimulator]:
    """Serve a fresh simulator on ``host:port`` (0 = a free port) for the ``async with`` body."""
    sim = Simulator(settings, clock=clock)
    runner = web.AppRunner(
        create_app(sim, log_request=log_request, extra_routes=extra_routes),
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        running = RunningSimulator(simulator=sim, host=host, port=bound_port)
        sim.public_url = running.root_url
        yield running
    finally:
        await runner.cleanup()
