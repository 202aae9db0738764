"""Which routes the client takes by credential kind (contract §0, §5.6), with canned answers."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from pydantic import SecretStr

from orchestrator.client import PictoryClient
from orchestrator.clock import VirtualClock
from orchestrator.config import ApiConfig, Credentials
from orchestrator.errors import AmbiguousError, PermanentError
from orchestrator.limits import RateLimiter
from orchestrator.retry import RetryPolicy

BASE = "http://pictory.test/pictoryapis"
KEY = Credentials(api_key=SecretStr("pictai_k"))
CLIENT = Credentials(client_id=SecretStr("cid"), client_secret=SecretStr("cs"), user_id="u1")
PARAMS = {"audio": {}, "output": {}, "scenes": [{"time": 1}]}


pytestmark = pytest.mark.usefixtures("aioresponses_compat")


@pytest.fixture
async def make_client() -> AsyncIterator[Any]:
    clients: list[PictoryClient] = []

    async def make(creds: Credentials) -> PictoryClient:
        clock = VirtualClock()
        client = PictoryClient(
            ApiConfig(base_url=BASE, user_agent="orchestrator-tests/1"),
            creds,
            clock=clock,
            limiter=RateLimiter(clock, max_rps=1000),
            retry_policy=RetryPolicy(max_attempts=3, base_delay_s=0.1),
            rng=random.Random(1),
        )
        await client.__aenter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.__aexit__(None, None, None)


def _sent(mock: aioresponses, method: str, path: str) -> list[Any]:
    """The JSON bodies sent to ``method path`` (an empty list when it was never called)."""
    calls = mock.requests.get((method, aiohttp.client.URL(BASE + path)), [])
    return [c.kwargs.get("json") for c in calls]


def _token(mock: aioresponses) -> None:
    mock.post(f"{BASE}/v1/oauth2/token", payload={"access_token": "t", "expires_in": 3600})


async def test_api_key_creates_and_renders_videos_on_v2(make_client: Any) -> None:
    """Key: template preview → POST /v2/video/storyboard {videoName, templateId, variables};
    storyboard → POST /v2/video/storyboard; render → PUT /v2/video/render/{id} carrying only
    the webhook (never the preview's renderParams); renderParams → POST /v2/video/render."""
    client = await make_client(KEY)
    assert client.video_routes == "v2"
    with aioresponses() as mock:
        mock.post(f"{BASE}/v2/video/storyboard", payload={"success": True, "data": {"jobId": "p1"}})
        mock.post(f"{BASE}/v2/video/storyboard", payload={"success": True, "jobId": "p2"})
        mock.put(f"{BASE}/v2/video/render/p1", payload={"success": True, "data": {"jobId": "r1"}})
        mock.put(f"{BASE}/v2/video/render/p2", payload={"success": True, "data": {"job_id": "r2"}})
        mock.post(f"{BASE}/v2/video/render", payload={"success": True, "data": {"jobId": "r3"}})
        preview = await client.create_preview("t1", {"name": "Ann"}, video_name="row-1")
        storyboard = await client.create_storyboard({"videoName": "s", "scenes": [{"story": "a"}]})
        render = await client.render("p1", PARAMS)
        hooked = await client.render("p2", PARAMS, webhook="http://127.0.0.1:9/h")
        edited = await client.render_params(PARAMS)
        assert (preview, storyboard, render, hooked, edited) == ("p1", "p2", "r1", "r2", "r3")
        assert _sent(mock, "POST", "/v2/video/storyboard")[0] == {
            "videoName": "row-1",
            "templateId": "t1",
            "variables": {"name": "Ann"},
        }
        assert _sent(mock, "PUT", "/v2/video/render/p1") == [{}]
        assert _sent(mock, "PUT", "/v2/video/render/p2") == [{"webhook": "http://127.0.0.1:9/h"}]
        assert _sent(mock, "POST", "/v2/video/render") == [PARAMS]
        assert not any("/v1/video" in str(url) or "oauth2" in str(url) for _, url in mock.requests)


async def test_client_credentials_keep_the_v1_routes(make_client: Any) -> None:
    """Client credentials: from-template (no videoName), v1 storyboard, PUT v1 render with the
    preview's renderParams, POST /v1/video/render; nothing on v2."""
    client = await make_client(CLIENT)
    assert client.video_routes == "v1"
    with aioresponses() as mock:
        _token(mock)
        ok_p = {"success": True, "data": {"jobId": "p1"}}
        mock.post(f"{BASE}/v1/video/from-template", payload=ok_p)
        mock.post(f"{BASE}/v1/video/storyboard", payload={"success": True, "jobId": "p2"})
        mock.put(f"{BASE}/v1/video/render/p1", payload={"success": True, "data": {"job_id": "r1"}})
        mock.post(f"{BASE}/v1/video/render", payload={"success": True, "data": {"job_id": "r2"}})
        assert await client.create_preview("t1", {"name": "Ann"}, video_name="row-1") == "p1"
        assert await client.create_storyboard({"scenes": [{"text": "a"}]}) == "p2"
        assert await client.render("p1", PARAMS) == "r1"
        assert await client.render_params(PARAMS) == "r2"
        assert _sent(mock, "POST", "/v1/video/from-template") == [
            {"templateId": "t1", "variables": {"name": "Ann"}}
        ]
        assert _sent(mock, "PUT", "/v1/video/render/p1") == [PARAMS]
        assert not any("/v2/" in str(url) for _, url in mock.requests)


async def test_v2_render_keeps_the_delivery_contract(make_client: Any) -> None:
    """On v2 the intent hook runs once right before the send, and a lost answer is ambiguous
    and never resent, for the preview render and the renderParams render alike."""
    client = await make_client(KEY)
    hooks: list[str] = []

    async def before_send() -> None:
        hooks.append("intent")

    with aioresponses() as mock:
        mock.put(f"{BASE}/v2/video/render/p1", exception=aiohttp.ServerDisconnectedError())
        mock.post(f"{BASE}/v2/video/render", exception=aiohttp.ServerDisconnectedError())
        with pytest.raises(AmbiguousError):
            await client.render("p1", None, before_send=before_send)
        with pytest.raises(AmbiguousError):
            await client.render_params(PARAMS, before_send=before_send)
        assert len(_sent(mock, "PUT", "/v2/video/render/p1")) == 1
        assert len(_sent(mock, "POST", "/v2/video/render")) == 1
    assert hooks == ["intent", "intent"]


async def test_v2_400_is_permanent_with_its_code_and_message(make_client: Any) -> None:
    """A v2 400 ``{code, message, fields}`` fails permanently naming the API's code and text."""
    client = await make_client(KEY)
    body = {
        "code": "INVALID_REQUEST_BODY",
        "message": "videoName is required",
        "fields": [{"name": "videoName", "errors": "required"}],
    }
    with aioresponses() as mock:
        mock.post(f"{BASE}/v2/video/storyboard", status=400, body=json.dumps(body))
        with pytest.raises(PermanentError, match="videoName is required") as info:
            await client.create_storyboard({"scenes": []})
    assert info.value.error_code == "INVALID_REQUEST_BODY"
