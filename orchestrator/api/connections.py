"""The webhook receiver's connections: a cap on how many are open, and a deadline on each
request head (slow-loris). aiohttp's server offers neither (aiohttp#675: left to the
application; its only timer is ``keepalive_timeout``), so ``ConnectionGuard`` wraps the server's
protocol factory, and the ``deadlines`` middleware tells it when each request head arrived and
closes every connection once answered. Why these rules and numbers:
``orchestrator.api.webhooks``' docstring.

Times here are the event loop's, not the ``Clock``'s: they concern real sockets, which a virtual
clock would see as idle.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

MAX_OPEN_CONNECTIONS = 256
"""Open connections: callbacks are few and short; file descriptors are not free. Kept above
``LISTEN_BACKLOG``, the most accepted in one go: a burst of new connections displaces the older
waiting ones before it displaces its own, whose heads are not read yet."""
LISTEN_BACKLOG = 100
"""Connections the kernel queues before they are accepted (asyncio's default, made explicit)."""
REQUEST_HEAD_TIMEOUT_S = 10.0
"""From a connection's opening to its complete request head: a client sends it at once."""


class ConnectionGuard:
    """Wraps the server's protocol factory: caps open connections, and closes a connection that
    takes longer than ``head_timeout_s`` to send its request head.

    A connection is *waiting* from its opening until its request head has arrived whole
    (``head_arrived``, called by the ``deadlines`` middleware), then *busy* until answered, then
    waiting again while aiohttp drains what is left of a body it did not read. A newcomer over
    the cap displaces the connection waiting longest; if none is waiting, it is closed at once."""

    def __init__(
        self,
        rejected: Counter[str],
        *,
        max_open: int = MAX_OPEN_CONNECTIONS,
        head_timeout_s: float = REQUEST_HEAD_TIMEOUT_S,
    ) -> None:
        self._rejected = rejected
        self._max_open = max_open
        self._head_timeout_s = head_timeout_s
        self._open: dict[asyncio.BaseTransport, _Connection] = {}
        self._waiting: dict[_Connection, None] = {}
        """The waiting connections, the longest waiting first."""

    @property
    def open_count(self) -> int:
        return len(self._open)

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory to listen with, in place of ``factory``."""
        return lambda: _Connection(self, factory())

    def admit(self, conn: _Connection) -> bool:
        """Room for ``conn``, displacing the connection waiting longest if the cap is reached;
        False when every open connection is busy."""
        if len(self._open) >= self._max_open:
            self._rejected["too_many_connections"] += 1
            longest = next(iter(self._waiting), None)
            if longest is None:
                return False
            self.close(longest)
        self._open[conn.transport] = conn
        self.wait_for_head(conn)
        return True

    def head_arrived(self, transport: asyncio.BaseTransport | None) -> _Connection | None:
        """A request head came whole on ``transport``: its connection is busy."""
        conn = self._open.get(transport) if transport is not None else None
        if conn is not None:
            conn.stop_timer()
            self._waiting.pop(conn, None)
        return conn

    def wait_for_head(self, conn: _Connection) -> None:
        """``conn`` is waiting (again): it is closed unless a head arrives within the deadline."""
        if conn.transport not in self._open:
            return
        conn.stop_timer()
        conn.partial = False
        loop = asyncio.get_running_loop()
        conn.timer = loop.call_later(self._head_timeout_s, self._head_overdue, conn)
        self._waiting.pop(conn, None)
        self._waiting[conn] = None

    def forget(self, conn: _Connection) -> None:
        """``conn`` is closed (or being closed): its slot is free."""
        conn.stop_timer()
        if self._open.pop(conn.transport, None) is not None:
            self._waiting.pop(conn, None)

    def close(self, conn: _Connection) -> None:
        self.forget(conn)
        conn.transport.abort()  # not close(): a peer that never reads would keep it open

    def close_all(self) -> None:
        for conn in list(self._open.values()):
            self.close(conn)

    def _head_overdue(self, conn: _Connection) -> None:
        conn.timer = None
        if conn.partial:  # a connection that sent nothing is closed without being counted
            self._rejected["slow_request"] += 1
        self.close(conn)


class _Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's protocol inside, the guard's bookkeeping around it."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._admitted = False
        self.transport: asyncio.Transport
        self.timer: asyncio.TimerHandle | None = None
        self.partial = False
        """Bytes arrived while waiting: a head (or a body) begun and not finished."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an ``asyncio.Transport`` subclass, only alike)
        self.transport = cast(asyncio.Transport, transport)
        if not self._guard.admit(self):
            self.transport.abort()
            return
        self._admitted = True
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._guard.forget(self)
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            self.partial = self.partial or self.timer is not None
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def deadlines(guard: ConnectionGuard) -> Middleware:
    """The middleware that tells ``guard`` when a connection's request head has arrived and when
    it has been answered, and closes every connection after its answer (every request passes
    here, matched to a route or not)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        conn = guard.head_arrived(request.transport)
        try:
            response = await handler(request)
        except web.HTTPException as refusal:
            refusal.force_close()
            raise
        finally:
            if conn is not None:
                guard.wait_for_head(conn)
        response.force_close()
        return response

    return middleware
