"""The live page's web server: ``build_app`` (the aiohttp application) and ``serve``.

Routes: ``/`` (the page), ``/api/state`` (the page's JSON: ``view.build_view``), and
``/thumbs/NAME.jpg`` (the posters, from the videos' folder). Read-only: nothing here writes to a
ledger. Readings are shared: at most one per ``refresh_s`` whatever the number of open pages.

With a token, every route asks for it: ``Authorization: Bearer TOKEN``, or the cookie the page
gets by being opened once as ``/?token=TOKEN`` (it is then sent on to ``/``, so the token leaves
the address bar). The token is compared in constant time and never printed or logged.

Other routes (``/metrics``) are added by passing ``extend``: functions called with the
application before it starts (``READER`` in the app holds the reader).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from aiohttp import web

from orchestrator.clock import Clock, RealClock
from orchestrator.errors import UserError
from orchestrator.report.live.page import SCRIPT, STYLE, live_page
from orchestrator.report.live.readers import LiveReader

READER: web.AppKey[LiveReader] = web.AppKey("reader", LiveReader)
COOKIE = "orchestrator_live"
DEFAULT_REFRESH_S = 2.0
MIN_TOKEN_CHARS = 16
_POSTER = re.compile(r"[^/\\]+\.jpg")


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


CSP = (
    "default-src 'none'; "
    f"script-src {_hash(SCRIPT)}; style-src {_hash(STYLE)}; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""Nothing but this server's own page, posters and JSON; the inline script and style by hash."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse a page others could open without a token, and a token too short to guess."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise UserError(
            f"the serve token is shorter than {MIN_TOKEN_CHARS} characters; make one with "
            '`python3 -c "import secrets; print(secrets.token_urlsafe())"`'
        )
    if not is_loopback(host) and token is None:
        raise UserError(
            f"--host {host}: the page would be open to the network without a token; set "
            "ORCHESTRATOR_SERVE_TOKEN (or --token-file FILE) too, or leave --host out to stay on "
            "this machine (127.0.0.1)"
        )


READING_SHARE = 0.2
"""At most this share of the time goes to reading the batch: a reading that took D seconds
(a large ledger replayed) is not repeated for ``D / READING_SHARE`` seconds, even when
``refresh_s`` is shorter, so the page never competes with the run it shows."""


class _Readings:
    """One reading shared by every request within ``refresh_s`` of it (or longer, see
    ``READING_SHARE``)."""

    def __init__(self, reader: LiveReader, refresh_s: float, clock: Clock) -> None:
        self._reader, self._refresh_s, self._clock = reader, refresh_s, clock
        self._lock = anyio.Lock()
        self._at: float | None = None
        self._fresh_for_s = refresh_s
        self._view: dict[str, Any] | None = None

    async def view(self) -> dict[str, Any]:
        async with self._lock:
            now = self._clock.now()
            if self._view is None or self._at is None or now - self._at >= self._fresh_for_s:
                self._view = await self._reader.read()
                self._at = self._clock.now()
                took_s = self._at - now
                self._fresh_for_s = max(self._refresh_s, took_s / READING_SHARE)
            return self._view


def _token_check(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    expected = token.encode()

    def matches(given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), expected)

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if matches(auth[7:] if auth.startswith("Bearer ") else None) or matches(
            request.cookies.get(COOKIE)
        ):
            return await handler(request)
        if request.path == "/" and matches(request.query.get("token")):
            response = web.HTTPSeeOther("/")
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
            raise response
        return web.Response(
            status=401,
            text="this page asks for its token: open it once as /?token=TOKEN\n",
            headers={"Cache-Control": "no-store"},
        )

    return check


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


def build_app(
    reader: LiveReader,
    *,
    token: str | None = None,
    refresh_s: float = DEFAULT_REFRESH_S,
    clock: Clock | None = None,
    extend: Iterable[Callable[[web.Application], None]] = (),
) -> web.Application:
    """The live page's application for the batch ``reader`` reads; ``extend``: functions that
    add routes (``/metrics``) before it starts."""
    middlewares = [_headers] + ([_token_check(token)] if token is not None else [])
    app = web.Application(middlewares=middlewares)
    app[READER] = reader
    readings = _Readings(reader, refresh_s, clock or RealClock())
    page = live_page(refresh_s)

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def state(_: web.Request) -> web.Response:
        try:
            return web.json_response(await readings.view())
        except (UserError, OSError) as exc:  # a ledger moved away, unreadable: said, not raised
            return web.json_response({"error": str(exc)}, status=503)

    async def poster(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        folder = reader.videos
        if folder is None or not _POSTER.fullmatch(name):
            raise web.HTTPNotFound()
        path = folder / "thumbs" / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    app.router.add_get("/", index)
    app.router.add_get("/api/state", state)
    app.router.add_get("/thumbs/{name}", poster)
    app.router.add_get("/favicon.ico", _no_icon)  # browsers ask; nothing to show
    for add in extend:
        add(app)
    return app


async def _no_icon(_: web.Request) -> web.Response:
    return web.Response(status=204)


async def serve(app: web.Application, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve ``app`` on ``host:port`` until cancelled; ``ready`` is told the page's URL (the
    port chosen when ``port`` is 0), without the token."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise UserError(
                f"cannot serve on {host}:{port} ({exc.strerror}); choose another --port"
            ) from exc
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        ready(f"http://{shown}:{bound}/")
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
