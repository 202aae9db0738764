"""The one class that talks to the Pictory API: ``PictoryClient``.

Bytes move through a ``transport.Transport`` given to the constructor (``AiohttpTransport``, the
only aiohttp client importer, by default; tests may pass one that answers from memory); this
module decides what the API's answers mean, through ``responses.answer_body``, the one place HTTP
statuses become our exceptions (see ``orchestrator.errors``). Every API call goes through the shared
request-rate limiter and ``retry.call_with_retry``; video downloads do not (they come from a CDN
and do not count against the API's limit).

Authentication (``orchestrator.api.tokens``): with client credentials the access token is cached and
renewed by a single refresh shared by all tasks, at most half its lifetime before it expires, and
once more after a 401. With an API key the key is sent bare on every call.

Routes by credential kind (contract §0, §5.6): Pictory documents video creation with an API key
only on the v2 routes, and the v1 video routes only for tokens. So ``video_routes`` is ``"v2"``
with a key, ``"v1"`` with client credentials, and ``create_preview`` (from-template | v2
storyboard), ``create_storyboard``, ``render`` (PUT render/{preview}) and ``render_params`` (POST
render) take ``/v1/video/...`` or ``/v2/video/...`` by it. Jobs, templates, media and quota stay on
v1, transcription on v2, for both kinds (documented for both).

Job-creating requests (from-template, render, storyboard, transcription) are not idempotent: when
one is answered by a dropped connection or a read timeout after it was sent, we cannot know whether
the job exists, so it raises ``AmbiguousError`` and is never retried here.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from orchestrator.api import responses
from orchestrator.api.limits import RateLimiter
from orchestrator.api.responses import JobState, TemplateInfo
from orchestrator.api.retry import RetryPolicy, call_with_retry
from orchestrator.api.tokens import REFUSED_STATUSES, TOKEN_ENDPOINT, TOKEN_PATH, Auth
from orchestrator.api.transport import AiohttpTransport, Answer, DownloadResult, Transport
from orchestrator.clock import Clock
from orchestrator.config import ApiConfig, Credentials
from orchestrator.errors import (
    ApiError,
    PermanentError,
    RateLimitedError,
)
from orchestrator.ledger.records import JsonObject

__all__ = ["DownloadResult", "OnRequest", "PictoryClient"]

OnRequest = Callable[[str, str, int | None, float], None]
"""Told of every request sent: its method, path, status (None: no answer, the connection was
lost or timed out) and how long it waited for its turn at the rate limiter, in seconds."""


class PictoryClient:
    """Calls the API through one transport. Use as ``async with PictoryClient(...) as c``; the
    client opens and closes its ``transport`` (an ``AiohttpTransport`` unless one is given)."""

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
        on_request: OnRequest | None = None,
        transport: Transport | None = None,
    ) -> None:
        self._base_url = api.base_url.rstrip("/")
        self._credentials = credentials
        self._clock = clock
        self._limiter = limiter
        self._policy = retry_policy
        self._rng = rng or random.Random()
        self._on_retry = on_retry
        self._on_request = on_request
        self._transport: Transport = transport or AiohttpTransport(api)
        self._auth = Auth(
            credentials, clock=clock, margin_s=api.token_refresh_margin_s, fetch=self._post_token
        )
        self.requests_sent = 0
        self.answers_received = 0
        """API answers of any status (a dead network is one that gives none)."""
        self.server_date: str | None = None
        """The ``Date`` header of the latest API answer (the API's clock), if it sent one."""
        self.pictory_delivery: dict[str, Any] = {}
        """Pictory-side delivery (``[deliver] destinations``, ``aws_connection_id``,
        ``vimeo_connection_id``): ``destinations``, ``awsConnectionId``, ``vimeoConnectionId``,
        top-level fields of the v2 storyboard body (§6.3), sent on the v2 storyboard routes
        (``POST /v2/video/storyboard`` and ``/v2/video/storyboard/render``). [choice] the
        ``PUT /v2/video/render/{id}`` body documents only ``webhook``, so a preview's render
        carries what its preview request carried; nothing is sent on the v1 routes."""

    async def __aenter__(self) -> PictoryClient:
        await self._transport.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._transport.__aexit__(*exc_info)

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    @property
    def video_routes(self) -> Literal["v1", "v2"]:
        """Which generation of the video routes this client's credential uses (module docstring).
        A storyboard body must be built in this generation's shape (``storyboard_v2``)."""
        return "v2" if self._credentials.kind == "api_key" else "v1"

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
        self,
        template_id: str,
        variables: dict[str, str],
        *,
        webhook: str | None = None,
        webhook_input: Mapping[str, Any] | None = None,
        video_name: str = "video",
    ) -> str:
        """A preview job of ``template_id`` with ``variables`` (unbilled). ``webhook_input`` goes
        with the webhook on v2 only, the route that documents it (``webhookInput``, §6.3).

        v1: ``POST /v1/video/from-template`` ``{templateId, variables}`` (§2 step 3). v2 (API
        key): ``POST /v2/video/storyboard`` ``{videoName, templateId, variables}`` (§5.6); the
        docs list ``videoName`` as required on the storyboard routes, so it is always sent there.
        """
        payload: dict[str, Any] = {"templateId": template_id, "variables": variables}
        if self.video_routes == "v2":
            payload = {"videoName": video_name, **payload}
        if webhook:
            payload["webhook"] = webhook
        if self.video_routes == "v2":
            if webhook and webhook_input:
                payload["webhookInput"] = dict(webhook_input)
            payload.update(self.pictory_delivery)
            return await self._create("POST", "/v2/video/storyboard", payload)
        return await self._create("POST", "/v1/video/from-template", payload)

    async def create_storyboard(self, payload: dict[str, Any]) -> str:
        """A storyboard preview job from ``payload``, which must be in the shape of
        ``video_routes``: ``storyboard_v1.payload`` (v1) or ``storyboard_v2.payload`` (v2)."""
        path = "/v2/video/storyboard" if self.video_routes == "v2" else "/v1/video/storyboard"
        if self.video_routes == "v2" and self.pictory_delivery:
            payload = {**payload, **self.pictory_delivery}
        return await self._create("POST", path, payload)

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
        leaves the render ambiguous is one round trip.

        v1: ``PUT /v1/video/render/{id}`` with ``render_params`` (or ``{}``) (§2 step 5). v2 (API
        key): ``PUT /v2/video/render/{id}``, whose documented body is only ``{"webhook"}``
        (§5.6), so ``render_params`` is not sent there: the preview renders as it is.
        """
        if self.video_routes == "v2":
            payload: dict[str, Any] = {}
            path = f"/v2/video/render/{preview_job_id}"
        else:
            payload = dict(render_params or {})
            path = f"/v1/video/render/{preview_job_id}"
        if webhook:
            payload["webhook"] = webhook
        return await self._create("PUT", path, payload, before_send=before_send)

    async def render_direct(
        self,
        payload: dict[str, Any],
        *,
        webhook: str | None = None,
        webhook_input: Mapping[str, Any] | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """``POST /v2/video/storyboard/render`` (§5.9): a billable render straight from
        ``videoName`` + ``templateId`` + ``variables`` (or storyboard ``scenes``), with no preview
        job; answers ``data.jobId``, a render job. Documented for API keys and, on v2, tokens
        (§5.6). Same delivery contract as ``render``. ``webhook_input`` goes with the webhook
        (``webhookInput``, §6.3)."""
        body = {**payload, **self.pictory_delivery}
        if webhook:
            body["webhook"] = webhook
            if webhook_input:
                body["webhookInput"] = dict(webhook_input)
        return await self._create(
            "POST", "/v2/video/storyboard/render", body, before_send=before_send
        )

    async def get_job(
        self, job_id: str, *, useful_from: Callable[[], float] | None = None
    ) -> JobState:
        """``GET /v1/jobs/{id}``. ``useful_from()``: the clock reading before which the read is
        probably wasted (the job likely still running); see ``RateLimiter.acquire``."""
        body = await self._call(
            "GET", f"/v1/jobs/{job_id}", accept_failed_job=True, useful_from=useful_from
        )
        return responses.parse_job(job_id, body)

    async def clean_job(self, job_id: str) -> bool:
        """``DELETE /v1/jobs/{id}/clean`` (§5.4): delete a finished job's outputs at Pictory
        (video, share and preview URLs). Idempotent: a job Pictory no longer knows (404, its
        retention ended or it was cleaned) counts as cleaned. The answer is ``{"success":true}``
        [doc]; any other 2xx body is taken as done too, unless it says ``"success": false``.
        Returns False for a 404 (not known to this account: gone, or another account's)."""
        endpoint = f"DELETE /v1/jobs/{job_id}/clean"
        try:
            body = await self._call("DELETE", f"/v1/jobs/{job_id}/clean")
        except ApiError as exc:
            if exc.status == 404:
                return False  # already gone: what cleaning asks for
            if exc.status is not None and 200 <= exc.status < 300:
                return True  # a success without a JSON body (tolerated; the docs show one)
            raise
        if isinstance(body, dict) and body.get("success") is False:
            raise ApiError("the clean request answered success: false", endpoint=endpoint)
        return True

    async def list_templates(self) -> list[dict[str, Any]]:
        """``GET /v1/templates`` (§3): the account's templates, answered bare as
        ``{"items": [...]}``; tolerant of the usual envelope (``data.items``) or a bare list."""
        body = await self._call("GET", "/v1/templates")
        items = body
        if isinstance(items, dict):
            data = items.get("data")
            items = items.get("items", data.get("items") if isinstance(data, dict) else None)
        if not isinstance(items, list):
            raise PermanentError(
                "template listing answered without an items list", endpoint="GET /v1/templates"
            )
        return [item for item in items if isinstance(item, dict)]

    async def quota(self) -> dict[str, Any]:
        body = await self._call("GET", "/v1/quota")
        data = body.get("data", body) if isinstance(body, dict) else {}
        return data if isinstance(data, dict) else {}

    async def ai_credit_usage(self) -> Any:
        """``GET /v1/aicredits/usage`` (§6.4): this month's AI-credit transactions, a bare list
        [doc]; an enveloped one (``data``) is unwrapped (``api.quota`` reads them)."""
        body = await self._call("GET", "/v1/aicredits/usage")
        return body.get("data", body) if isinstance(body, dict) else body

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
        """Stream a video (``video``: proven to be an MP4) or subtitle file (a CDN URL: no API
        auth, no rate limit) into ``dest``; complete, it is renamed ``into`` place (fsynced
        unless ``sync`` is off: then the caller makes it durable)."""
        return await self._transport.download(
            url, dest, video=video, into=into, resume=resume, sync=sync
        )

    async def upload_media(self, path: Path, content_type: str) -> str:
        """``generateUrl`` then a streamed PUT of ``path`` to the signed URL; returns the public
        URL the API will read the file from. Sending it again is safe (it replaces the object)."""
        body = await self._call(
            "POST",
            "/v1/media/generateUrl",
            json={"fileName": path.name, "contentType": content_type},
        )
        data = body.get("data") if isinstance(body, dict) else None
        signed = data.get("signedUrl") if isinstance(data, dict) else None
        public = data.get("url") if isinstance(data, dict) else None
        if not isinstance(signed, str) or not isinstance(public, str):
            raise PermanentError(
                "generateUrl answered without signedUrl/url", endpoint="POST /v1/media/generateUrl"
            )
        await self._transport.upload(signed, path, content_type)
        return public

    async def create_transcription(
        self, file_url: str, language: str, *, webhook: str | None = None
    ) -> str:
        payload: dict[str, Any] = {"fileUrl": file_url, "language": language}
        if webhook:
            payload["webhook"] = webhook
        return await self._create("POST", "/v2/transcription", payload)

    async def create_highlights(
        self, transcript: list[dict[str, Any]], duration_s: float, *, webhook: str | None = None
    ) -> str:
        """``POST /v2/transcription/highlights`` (§5.1): ``transcript`` is the transcription job's
        ``data.transcript`` exactly as answered, ``highlight_duration`` the target length."""
        payload: dict[str, Any] = {"transcript": transcript, "highlight_duration": duration_s}
        if webhook:
            payload["webhook"] = webhook
        return await self._create("POST", "/v2/transcription/highlights", payload)

    async def render_params(
        self,
        body: dict[str, Any],
        *,
        webhook: str | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """A full renderParams ``body`` rendered: billable, like ``render``. ``POST
        /v1/video/render`` with client credentials, ``POST /v2/video/render`` with an API key
        (§5.6); the body is sent as given either way."""
        payload = dict(body)
        if webhook:
            payload["webhook"] = webhook
        path = "/v2/video/render" if self.video_routes == "v2" else "/v1/video/render"
        return await self._create("POST", path, payload, before_send=before_send)

    # ---- transport ---------------------------------------------------------------------------

    async def create_job(
        self,
        method: str,
        path: str,
        payload: JsonObject,
        *,
        webhook: str | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """A job-creating request to a route this class has no method for (a flow registered
        outside the package, see ``orchestrator.input.flows``): the job id of the answer. Not
        idempotent, like every creating call: a lost answer raises ``AmbiguousError``."""
        body = dict(payload)
        if webhook:
            body["webhook"] = webhook
        return await self._create(method, path, body, before_send=before_send)

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
        useful_from: Callable[[], float] | None = None,
    ) -> Any:
        endpoint = f"{method} {path}"
        sent_with: list[str | None] = [None]  # the credential of this call's latest attempt
        take_turn = (
            self._limiter.acquire
            if useful_from is None
            else functools.partial(self._limiter.acquire, useful_from=useful_from)
        )

        waited_s = 0.0  # this attempt's wait for its turn (``OnRequest``)

        async def timed_turn() -> None:
            nonlocal waited_s
            asked_s = self._clock.now()
            await take_turn()
            waited_s = self._clock.now() - asked_s

        async def attempt() -> Any:
            headers = await self._auth.headers(
                timed_turn if self._on_request is not None else take_turn
            )
            if before_send is not None:
                await before_send()
            sent_with[0] = headers["Authorization"]
            try:
                body = await self._send(
                    method,
                    path,
                    headers=headers,
                    json=json,
                    data=data,
                    content_type=content_type,
                    creates_job=creates_job,
                    accept_failed_job=accept_failed_job,
                    waited_s=waited_s,
                )
            except RateLimitedError:
                raise
            except ApiError as exc:
                if exc.status is not None:
                    self._limiter.on_success()  # answered, and not with a 429
                raise
            self._limiter.on_success()
            self._auth.accepted()
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
            refresh_auth=lambda: self._auth.refresh_after_401(sent_with[0]),
            on_retry=on_retry,
        )

    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json: Any,
        data: bytes | None,
        content_type: str | None,
        creates_job: bool,
        accept_failed_job: bool,
        waited_s: float = 0.0,
    ) -> Any:
        endpoint = f"{method} {path}"
        if content_type:
            headers["Content-Type"] = content_type
        answer = await self._exchange(
            method,
            path,
            headers=headers,
            json=json,
            data=data,
            creates_job=creates_job,
            waited_s=waited_s,
        )
        return responses.answer_body(
            answer,
            endpoint,
            accept_failed_job=accept_failed_job,
            unauthorized_hint=self._auth.refusal_hint,
        )

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        json: Any = None,
        data: bytes | None = None,
        creates_job: bool = False,
        waited_s: float = 0.0,
    ) -> Answer:
        """One request through the transport, counted (any status), and told to ``on_request``
        (``waited_s``: how long it waited for its turn)."""
        self.requests_sent += 1
        try:
            answer = await self._transport.request(
                method,
                self._base_url + path,
                endpoint=f"{method} {path}",
                headers=headers,
                json=json,
                data=data,
                creates_job=creates_job,
            )
        except ApiError:
            if self._on_request is not None:
                self._on_request(method, path, None, waited_s)
            raise
        if self._on_request is not None:
            self._on_request(method, path, answer.status, waited_s)
        self.server_date = answer.date
        self.answers_received += 1
        return answer

    async def _post_token(self, payload: dict[str, str]) -> Any:
        """The token request (``tokens.FetchToken``): first in the rate limiter's queue, since
        every other request is waiting for it; the body of a 2xx answer, else our exception."""
        await self._limiter.acquire(first=True)
        answer = await self._exchange("POST", TOKEN_PATH, headers={}, json=payload)
        if answer.status in REFUSED_STATUSES:
            raise PermanentError(
                "the API refused our client credentials",
                endpoint=TOKEN_ENDPOINT,
                status=answer.status,
            )
        return responses.answer_body(answer, TOKEN_ENDPOINT)
