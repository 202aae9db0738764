"""A ``transport.Transport`` that answers from memory, for tests of ``PictoryClient`` itself.

It enters through the door production uses (``PictoryClient(transport=...)``), so a test of the
client's logic (auth, routes, verdicts, retries) needs neither sockets nor patched aiohttp. Tests
of the real transport (error translation, timeouts, streamed downloads) use aiohttp instead.

Answers are queued per ``(method, path)``: ``reply(...)`` answers with a status and JSON,
``lost()`` drops the connection after the request was sent, ``refused()`` never delivers it (both
translated as ``AiohttpTransport`` does), and a handler computes an answer from the request.
An unexpected request fails the test with the list of what was expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json as jsonlib
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from pydantic import SecretStr

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.transport import (
    Answer,
    DownloadResult,
    lost_request_error,
    undelivered_error,
)
from orchestrator.clock import VirtualClock
from orchestrator.config import ApiConfig, Credentials

BASE = "http://pictory.test/pictoryapis"


@dataclass(frozen=True)
class Sent:
    """One request the client sent."""

    method: str
    path: str
    """The URL without the base URL (``/v1/jobs/j1``)."""
    headers: dict[str, str]
    json: Any
    data: bytes | None


@dataclass(frozen=True)
class Reply:
    """A canned answer: ``status`` and a JSON ``body`` (or raw bytes), or a connection failure."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    retry_after: str | None = None
    failure: str | None = None
    """``"lost"``: dropped after sending; ``"refused"``: never delivered."""

    def answer(self) -> Answer:
        raw = self.raw if self.raw is not None else jsonlib.dumps(self.body).encode()
        return Answer(self.status, raw, self.retry_after)


def reply(body: Any = None, status: int = 200, *, retry_after: str | None = None) -> Reply:
    return Reply(status, body, retry_after=retry_after)


def lost() -> Reply:
    return Reply(failure="lost")


def refused() -> Reply:
    return Reply(failure="refused")


Handler = Callable[[Sent], Reply | Awaitable[Reply]]


@dataclass
class _Route:
    replies: deque[Reply | Handler] = field(default_factory=deque)
    repeat_last: bool = False


class MemoryTransport:
    """Canned answers by ``(method, path)``; every request kept in ``sent``."""

    def __init__(self, base_url: str = BASE) -> None:
        self.base_url = base_url.rstrip("/")
        self.sent: list[Sent] = []
        self.files: dict[str, bytes] = {}
        """Download URL → the bytes it serves."""
        self.uploaded: dict[str, bytes] = {}
        """Signed upload URL → the bytes PUT there."""
        self.open = False
        self._routes: dict[tuple[str, str], _Route] = {}

    def on(self, method: str, path: str, *answers: Reply | Handler, repeat: bool = False) -> None:
        """Queue ``answers`` for ``method path``, in order; ``repeat``: the last one answers
        every later request too."""
        route = self._routes.setdefault((method, path), _Route())
        route.replies.extend(answers)
        route.repeat_last = repeat

    def requests(self, method: str, path: str) -> list[Sent]:
        return [s for s in self.sent if (s.method, s.path) == (method, path)]

    def bodies(self, method: str, path: str) -> list[Any]:
        """The JSON bodies sent to ``method path`` (empty when it was never called)."""
        return [s.json for s in self.requests(method, path)]

    # ---- transport.Transport -----------------------------------------------------------------

    async def __aenter__(self) -> MemoryTransport:
        self.open = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.open = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        headers: dict[str, str],
        json: Any = None,
        data: bytes | None = None,
        creates_job: bool = False,
    ) -> Answer:
        assert self.open, "request outside `async with`"
        assert url.startswith(self.base_url), url
        sent = Sent(method, url[len(self.base_url) :], dict(headers), json, data)
        self.sent.append(sent)
        await anyio.lowlevel.checkpoint()
        route = self._routes.get((method, sent.path))
        if route is None or not route.replies:
            raise AssertionError(f"unexpected {method} {sent.path}; expected {list(self._routes)}")
        queued = route.replies[0]
        if len(route.replies) > 1 or not route.repeat_last:
            route.replies.popleft()
        made = queued if isinstance(queued, Reply) else queued(sent)
        answer = await made if inspect.isawaitable(made) else made
        if answer.failure == "refused":
            raise undelivered_error(endpoint, "ConnectionRefusedError")
        if answer.failure == "lost":
            raise lost_request_error(endpoint, "ServerDisconnectedError", creates_job=creates_job)
        return answer.answer()

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        video: bool = False,
        into: Path | None = None,
        resume: bool = True,
        sync: bool = True,
    ) -> DownloadResult:
        content = self.files[url]
        await anyio.Path(dest).write_bytes(content)
        if into is not None:
            await anyio.Path(dest).rename(into)
        return DownloadResult(bytes=len(content), sha256=hashlib.sha256(content).hexdigest())

    async def upload(self, url: str, path: Path, content_type: str) -> int:
        content = await anyio.Path(path).read_bytes()
        self.uploaded[url] = content
        return len(content)


API_KEY = Credentials(api_key=SecretStr("pictai_k"))
CLIENT_CREDENTIALS = Credentials(
    client_id=SecretStr("cid"), client_secret=SecretStr("csecret"), user_id="u1"
)


@contextlib.asynccontextmanager
async def memory_client(
    transport: MemoryTransport,
    credentials: Credentials = CLIENT_CREDENTIALS,
    *,
    clock: VirtualClock | None = None,
    limiter: RateLimiter | None = None,
    max_attempts: int = 4,
    api: ApiConfig | None = None,
) -> AsyncIterator[PictoryClient]:
    """An open ``PictoryClient`` on ``transport``, on virtual time, closed afterwards."""
    clock = clock or VirtualClock()
    client = PictoryClient(
        api or ApiConfig(base_url=transport.base_url, user_agent="orchestrator-tests/1"),
        credentials,
        clock=clock,
        limiter=limiter or RateLimiter(clock, max_rps=1000),
        retry_policy=RetryPolicy(max_attempts=max_attempts, base_delay_s=0.5),
        rng=random.Random(1),
        transport=transport,
    )
    async with client:
        yield client
