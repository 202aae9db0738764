"""The one class that talks to the Pictory API: ``PictoryClient``.

It is the only importer of aiohttp outside the simulator, and ``_translate`` is the one place
aiohttp's exceptions and HTTP statuses become ours (see ``orchestrator.errors``). Every API call
goes through the shared request-rate limiter and ``retry.call_with_retry``; video downloads do not
(they come from a CDN and do not count against the API's limit).

Authentication: with client credentials the access token is cached and renewed
``token_refresh_margin_s`` before it expires by a single refresh shared by all tasks, and once more
after a 401. With an API key the key is sent bare on every call.

Job-creating requests (from-template, render, storyboard, transcription) are not idempotent: when
one is answered by a dropped connection or a read timeout after it was sent, we cannot know whether
the job exists, so it raises ``AmbiguousError`` and is never retried here.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiofiles
import aiohttp
import anyio

from orchestrator import responses
from orchestrator.clock import Clock
from orchestrator.config import ApiConfig, Credentials
from orchestrator.errors import (
    AmbiguousError,
    ApiError,
    AuthError,
    DownloadError,
    LinkExpiredError,
    NotDeliveredError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from orchestrator.limits import RateLimiter
from orchestrator.responses import JobState, TemplateInfo
from orchestrator.retry import RetryPolicy, call_with_retry

T = TypeVar("T")

DOWNLOAD_CHUNK_BYTES = 256 * 1024
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class DownloadResult:
    bytes: int
    sha256: str


class PictoryClient:
    """Calls the API over one aiohttp session. Use as ``async with PictoryClient(...) as c``."""

    def __init__(
        self,
        api: ApiConfig,
        credentials: Credentials,
        *,
        clock: Clock,
        limiter: RateLimiter,
        retry_policy: RetryPolicy,
        rng: random.Random | None = None,
        on_retry: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self._api = api
        self._base_url = api.base_url.rstrip("/")
        self._credentials = credentials
        self._clock = clock
        self._limiter = limiter
        self._policy = retry_policy
        self._rng = rng or random.Random()
        self._on_retry = on_retry
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = anyio.Lock()
        self.requests_sent = 0

    async def __aenter__(self) -> PictoryClient:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._api.connect_timeout_s, sock_read=self._api.read_timeout_s
        )
        self._session = aiohttp.ClientSession(
            timeout=timeout,
            headers={"User-Agent": self._api.user_agent},
            connector=aiohttp.TCPConnector(limit=0),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    # ---- the API, one method per endpoint we use -------------------------------------------

    async def upload_template(self, content: bytes) -> TemplateInfo:
        body = await self._call(
            "POST", "/v1/templates", data=content, content_type="application/octet-stream"
        )
        info = responses.parse_template(body)
        if info is None:
            raise PermanentError(
                "template upload answered without a templateId", endpoint="POST /v1/templates"
            )
        return info

    async def create_preview(
        self, template_id: str, variables: dict[str, str], *, webhook: str | None = None
    ) -> str:
        payload: dict[str, Any] = {"templateId": template_id, "variables": variables}
        if webhook:
            payload["webhook"] = webhook
        return await self._create("POST", "/v1/video/from-template", payload)

    async def create_storyboard(self, payload: dict[str, Any]) -> str:
        return await self._create("POST", "/v1/video/storyboard", payload)

    async def render(
        self,
        preview_job_id: str,
        render_params: dict[str, Any] | None,
        *,
        webhook: str | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """Start a billable render. ``before_send`` runs after the rate limiter admits the request
        and right before it is sent (the ledger's intent record), so the window in which a crash
        leaves the render ambiguous is one round trip."""
        payload: dict[str, Any] = dict(render_params or {})
        if webhook:
            payload["webhook"] = webhook
        path = f"/v1/video/render/{preview_job_id}"
        return await self._create("PUT", path, payload, before_send=before_send)

    async def get_job(self, job_id: str) -> JobState:
        body = await self._call("GET", f"/v1/jobs/{job_id}", accept_failed_job=True)
        return responses.parse_job(job_id, body)

    async def quota(self) -> dict[str, Any]:
        body = await self._call("GET", "/v1/quota")
        data = body.get("data", body) if isinstance(body, dict) else {}
        return data if isinstance(data, dict) else {}

    async def download(self, url: str, dest: Path) -> DownloadResult:
        """Stream ``url`` into ``dest``, resuming with ``Range`` from what ``dest`` already holds.

        The byte count is checked against ``Content-Length``; a short body raises DownloadError
        and leaves the partial file for the next attempt to resume from.
        """
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise PermanentError(f"refusing to download from a {scheme or 'relative'} URL")
        have = await anyio.to_thread.run_sync(_size_or_zero, dest)
        headers = {"Range": f"bytes={have}-"} if have else {}
        session = self._require_session()
        try:
            async with session.get(url, headers=headers, max_redirects=MAX_REDIRECTS) as resp:
                if resp.status in (403, 404, 410):
                    raise LinkExpiredError("video link refused or expired", status=resp.status)
                if resp.status == 416:
                    await anyio.to_thread.run_sync(_size_or_zero, dest, True)
                    raise DownloadError("server refused our resume range; restarting", status=416)
                if resp.status >= 400:
                    raise (TransientError if resp.status >= 500 else PermanentError)(
                        "video download refused", status=resp.status
                    )
                append = resp.status == 206 and have > 0
                hasher = await _hash_prefix(dest) if append else hashlib.sha256()
                written = have if append else 0
                expected = resp.content_length
                async with aiofiles.open(dest, "ab" if append else "wb") as out:
                    async for chunk in resp.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                        hasher.update(chunk)
                        await out.write(chunk)
                        written += len(chunk)
                    await out.flush()
                    await anyio.to_thread.run_sync(_fsync, out.fileno())
        except ApiError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownloadError(f"video download interrupted: {type(exc).__name__}") from exc
        if expected is not None and written - (have if append else 0) != expected:
            raise DownloadError(f"video download cut short ({written} bytes so far)")
        return DownloadResult(bytes=written, sha256=hasher.hexdigest())

    # ---- transport ---------------------------------------------------------------------------

    async def _create(
        self,
        method: str,
        path: str,
        payload: dict[str, Any],
        *,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        body = await self._call(
            method, path, json=payload, creates_job=True, before_send=before_send
        )
        job_id = responses.created_job_id(body)
        if job_id is None:
            raise PermanentError("the API answered without a job id", endpoint=f"{method} {path}")
        return job_id

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        creates_job: bool = False,
        accept_failed_job: bool = False,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> Any:
        endpoint = f"{method} {path}"

        async def attempt() -> Any:
            await self._limiter.acquire()
            if before_send is not None:
                await before_send()
            try:
                body = await self._send(
                    method,
                    path,
                    json=json,
                    data=data,
                    content_type=content_type,
                    creates_job=creates_job,
                    accept_failed_job=accept_failed_job,
                )
            except RateLimitedError:
                raise
            except ApiError as exc:
                if exc.status is not None:
                    self._limiter.on_success()  # answered, and not with a 429
                raise
            self._limiter.on_success()
            return body

        def on_retry(decision: Any, exc: BaseException, attempt_no: int) -> None:
            if self._on_retry is not None:
                kind = exc.kind if isinstance(exc, ApiError) else type(exc).__name__
                self._on_retry(endpoint, kind, float(getattr(decision, "delay_s", 0.0)))

        return await call_with_retry(
            attempt,
            policy=self._policy,
            clock=self._clock,
            rng=self._rng,
            on_rate_limited=self._limiter.on_rate_limited,
            refresh_auth=self._refresh_after_401,
            on_retry=on_retry,
        )

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        data: bytes | None,
        content_type: str | None,
        creates_job: bool,
        accept_failed_job: bool,
    ) -> Any:
        endpoint = f"{method} {path}"
        headers = await self._auth_headers()
        if content_type:
            headers["Content-Type"] = content_type
        session = self._require_session()
        self.requests_sent += 1
        try:
            async with session.request(
                method, self._base_url + path, json=json, data=data, headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, endpoint, creates_job) from exc
        body = _parse_json(raw)
        if 200 <= status < 300:
            if body is None:
                raise TransientError(
                    "the API answered with a body that is not JSON",
                    endpoint=endpoint,
                    status=status,
                )
            return body
        code, message = responses.error_detail(body)
        if (
            accept_failed_job
            and body is not None
            and status < 500
            and status != 404
            and status not in (401, 429)
        ):
            return body  # a failed job is an answer, parsed by the caller
        raise _status_error(status, endpoint, code, message, retry_after)

    async def _auth_headers(self) -> dict[str, str]:
        creds = self._credentials
        if creds.api_key is not None:
            return {"Authorization": creds.api_key.get_secret_value()}
        token = await self._valid_token()
        headers = {"Authorization": token}
        if creds.user_id:
            headers["X-Pictory-User-Id"] = creds.user_id
        return headers

    async def _valid_token(self) -> str:
        margin_s = self._api.token_refresh_margin_s
        if self._token is not None and self._clock.now() < self._token_expires_at - margin_s:
            return self._token
        async with self._token_lock:  # one refresh shared by every waiting task
            if self._token is None or self._clock.now() >= self._token_expires_at - margin_s:
                await self._fetch_token()
            assert self._token is not None
            return self._token

    async def _refresh_after_401(self) -> None:
        if self._credentials.api_key is not None:
            return
        stale = self._token
        async with self._token_lock:
            if self._token == stale:  # nobody refreshed since our request failed
                self._token = None
                await self._fetch_token()

    async def _fetch_token(self) -> None:
        creds = self._credentials
        assert creds.client_id is not None and creds.client_secret is not None
        payload = {
            "client_id": creds.client_id.get_secret_value(),
            "client_secret": creds.client_secret.get_secret_value(),
        }
        endpoint = "POST /v1/oauth2/token"
        session = self._require_session()
        await self._limiter.acquire()
        self.requests_sent += 1
        try:
            async with session.post(self._base_url + "/v1/oauth2/token", json=payload) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, endpoint, creates_job=False) from exc
        body = _parse_json(raw)
        if status == 401 or status == 403:
            raise PermanentError(
                "the API refused our client credentials", endpoint=endpoint, status=status
            )
        if not 200 <= status < 300:
            code, message = responses.error_detail(body)
            raise _status_error(status, endpoint, code, message, retry_after)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TransientError(
                "token answer without access_token", endpoint=endpoint, status=status
            )
        expires_in_s = body.get("expires_in", 3600) if isinstance(body, dict) else 3600
        self._token = token
        self._token_expires_at = self._clock.now() + float(expires_in_s)

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("PictoryClient used outside `async with`")
        return self._session


def _translate(exc: BaseException, endpoint: str, creates_job: bool) -> ApiError:
    """aiohttp's exceptions → ours. The only place that knows aiohttp's hierarchy."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return NotDeliveredError(f"could not reach the API ({name})", endpoint=endpoint)
    if creates_job:
        return AmbiguousError(
            f"connection lost after the request was sent ({name}); the job may or may not exist",
            endpoint=endpoint,
        )
    return TransientError(f"connection problem ({name})", endpoint=endpoint)


def _status_error(
    status: int, endpoint: str, code: str | None, message: str | None, retry_after: str | None
) -> ApiError:
    text = message or f"HTTP {status}"
    if status == 429:
        return RateLimitedError(
            text,
            endpoint=endpoint,
            status=status,
            error_code=code,
            retry_after_s=_parse_retry_after(retry_after),
        )
    if status == 401:
        return AuthError(text, endpoint=endpoint, status=status, error_code=code)
    if status >= 500 or status == 408:
        return TransientError(text, endpoint=endpoint, status=status, error_code=code)
    return PermanentError(text, endpoint=endpoint, status=status, error_code=code)


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our default pause


def _parse_json(raw: bytes) -> Any:
    import json

    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


async def _hash_prefix(path: Path) -> Any:
    def work() -> Any:
        hasher = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(DOWNLOAD_CHUNK_BYTES), b""):
                hasher.update(block)
        return hasher

    return await anyio.to_thread.run_sync(work)


def _size_or_zero(path: Path, remove: bool = False) -> int:
    """Size of a partial download (0 when absent); with ``remove``, delete it first."""
    if remove:
        path.unlink(missing_ok=True)
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fsync(fd: int) -> None:
    import os

    os.fsync(fd)
