"""The one middleware every request passes: count, inject request faults, authenticate, limit, log.

For API routes (under ``/pictoryapis``), in this order:

1. count the request under its route (``"POST /v1/video/from-template"``);
2. draw its faults;
3. authenticate (every route but the token call) and apply the account's rate limit, on arrival
   (like a gateway: a slow or failing answer still counted when the request came in); with
   ``strict_credential_routes``, refuse an API key on a token-only route (``auth``);
4. the faults drawn: slow (wait), then server error / injected 429 / drop before handling;
5. run the handler; an ``ApiProblem`` becomes the error envelope;
6. for a job-creating request whose drop was drawn "after": close the connection now that the
   job exists, without answering.

Other routes (CDN, storage, stats) are only counted and logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web import AbstractRoute

from orchestrator.simulator.answers import REASON_HEADER, ApiProblem, problem_response
from orchestrator.simulator.auth import check_route_credential, rate_limited
from orchestrator.simulator.core import Simulator
from orchestrator.simulator.routes_api import API_PREFIX, CURRENT_ACCOUNT, Handler, RouteSpec

RequestLog = Callable[[str], None]
DROPPED = 0
"""The status logged for a request answered by closing the connection."""


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer (the returned response is never sent)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)


async def _api(
    sim: Simulator, request: web.Request, handler: Handler, spec: RouteSpec
) -> tuple[web.StreamResponse, bool]:
    """The answer, and whether the connection was dropped instead."""
    faults = sim.faults.for_request(creating=spec.creating)
    try:
        if spec.auth:  # a gateway: the limit counts requests as they arrive, whatever follows
            account = sim.auth.authenticate(request.headers, sim.now())
            CURRENT_ACCOUNT.set(account)
            sim.check_rate(account)
            check_route_credential(spec.key, account, strict=sim.settings.strict_credential_routes)
    except ApiProblem as refused:
        return problem_response(refused), False
    if faults.slow_s:
        await asyncio.sleep(faults.slow_s)
    if faults.server_error_status is not None:
        problem = ApiProblem(
            faults.server_error_status,
            "INTERNAL_SERVER_ERROR",
            "simulated server error (fault server_error); retry after a pause",
        )
        return problem_response(problem), False
    if faults.rate_limited:
        sim.accounting.rate_limited += 1
        return problem_response(
            rate_limited(sim.settings.fault_retry_after_s, header=sim.settings.retry_after_header)
        ), False
    if faults.drop == "before":
        return _drop(request), True
    try:
        response = await handler(request)
    except ApiProblem as problem:
        response = problem_response(problem)
    if faults.drop == "after":
        return _drop(request), True
    return response, False


def _unknown_api_path(exc: web.HTTPException) -> web.Response:
    code = "NOT_FOUND" if exc.status == 404 else "METHOD_NOT_ALLOWED"
    problem = ApiProblem(exc.status, code, f"no such API endpoint ({exc.reason})")
    return problem_response(problem)


def make_middleware(
    sim: Simulator,
    specs: Mapping[AbstractRoute, RouteSpec],
    log_request: RequestLog | None,
) -> Middleware:
    """Build the middleware for ``sim``; ``specs`` maps each API route to its spec."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        if not sim.public_url:
            sim.public_url = f"{request.scheme}://{request.host}"
        route = request.match_info.route
        spec = specs.get(route)
        resource = route.resource
        canonical = resource.canonical if resource is not None else "<unmatched>"
        key = spec.key if spec is not None else f"{request.method} {canonical}"
        sim.accounting.count_request(key)
        status = DROPPED
        reason = ""  # a 401's X-Simulator-Reason, shown in the log (``auth``)
        try:
            if spec is not None:
                response, dropped = await _api(sim, request, handler, spec)
                status = DROPPED if dropped else response.status
                if status == 401:
                    reason = f" ({response.headers.get(REASON_HEADER, '')})"
                return response
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if not request.path.startswith(API_PREFIX + "/"):
                    status = exc.status
                    raise
                response = _unknown_api_path(exc)
            status = response.status
            return response
        finally:
            if log_request is not None:
                elapsed_ms = (time.perf_counter() - started) * 1000
                shown = "dropped" if status == DROPPED else str(status)
                log_request(f"{request.method} {request.path} {shown} {elapsed_ms:.1f}ms{reason}")

    return middleware
