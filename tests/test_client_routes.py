"""Which routes the client takes by credential kind (contract §0, §5.6), with canned answers."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from memory_transport import (
    API_KEY,
    CLIENT_CREDENTIALS,
    MemoryTransport,
    lost,
    memory_client,
    reply,
)

from orchestrator.api.client import PictoryClient
from orchestrator.config import Credentials
from orchestrator.errors import AmbiguousError, PermanentError

KEY = API_KEY
CLIENT = CLIENT_CREDENTIALS
PARAMS = {"audio": {}, "output": {}, "scenes": [{"time": 1}]}


@pytest.fixture
def api() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
def make_client(
    api: MemoryTransport,
) -> Callable[[Credentials], AbstractAsyncContextManager[PictoryClient]]:
    def make(creds: Credentials) -> AbstractAsyncContextManager[PictoryClient]:
        return memory_client(api, creds, max_attempts=3)

    return make


def _token(api: MemoryTransport) -> None:
    api.on("POST", "/v1/oauth2/token", reply({"access_token": "t", "expires_in": 3600}))


async def test_api_key_creates_and_renders_videos_on_v2(
    api: MemoryTransport, make_client: Any
) -> None:
    """Key: template preview → POST /v2/video/storyboard {videoName, templateId, variables};
    storyboard → POST /v2/video/storyboard; render → PUT /v2/video/render/{id} carrying only
    the webhook (never the preview's renderParams); renderParams → POST /v2/video/render."""
    api.on(
        "POST",
        "/v2/video/storyboard",
        reply({"success": True, "data": {"jobId": "p1"}}),
        reply({"success": True, "jobId": "p2"}),
    )
    api.on("PUT", "/v2/video/render/p1", reply({"success": True, "data": {"jobId": "r1"}}))
    api.on("PUT", "/v2/video/render/p2", reply({"success": True, "data": {"job_id": "r2"}}))
    api.on("POST", "/v2/video/render", reply({"success": True, "data": {"jobId": "r3"}}))
    async with make_client(KEY) as client:
        assert client.video_routes == "v2"
        preview = await client.create_preview("t1", {"name": "Ann"}, video_name="row-1")
        storyboard = await client.create_storyboard({"videoName": "s", "scenes": [{"story": "a"}]})
        render = await client.render("p1", PARAMS)
        hooked = await client.render("p2", PARAMS, webhook="http://127.0.0.1:9/h")
        edited = await client.render_params(PARAMS)
    assert (preview, storyboard, render, hooked, edited) == ("p1", "p2", "r1", "r2", "r3")
    assert api.bodies("POST", "/v2/video/storyboard")[0] == {
        "videoName": "row-1",
        "templateId": "t1",
        "variables": {"name": "Ann"},
    }
    assert api.bodies("PUT", "/v2/video/render/p1") == [{}]
    assert api.bodies("PUT", "/v2/video/render/p2") == [{"webhook": "http://127.0.0.1:9/h"}]
    assert api.bodies("POST", "/v2/video/render") == [PARAMS]
    assert not any("/v1/video" in s.path or "oauth2" in s.path for s in api.sent)


async def test_client_credentials_keep_the_v1_routes(
    api: MemoryTransport, make_client: Any
) -> None:
    """Client credentials: from-template (no videoName), v1 storyboard, PUT v1 render with the
    preview's renderParams, POST /v1/video/render; nothing on v2."""
    _token(api)
    api.on("POST", "/v1/video/from-template", reply({"success": True, "data": {"jobId": "p1"}}))
    api.on("POST", "/v1/video/storyboard", reply({"success": True, "jobId": "p2"}))
    api.on("PUT", "/v1/video/render/p1", reply({"success": True, "data": {"job_id": "r1"}}))
    api.on("POST", "/v1/video/render", reply({"success": True, "data": {"job_id": "r2"}}))
    async with make_client(CLIENT) as client:
        assert client.video_routes == "v1"
        assert await client.create_preview("t1", {"name": "Ann"}, video_name="row-1") == "p1"
        assert await client.create_storyboard({"scenes": [{"text": "a"}]}) == "p2"
        assert await client.render("p1", PARAMS) == "r1"
        assert await client.render_params(PARAMS) == "r2"
    assert api.bodies("POST", "/v1/video/from-template") == [
        {"templateId": "t1", "variables": {"name": "Ann"}}
    ]
    assert api.bodies("PUT", "/v1/video/render/p1") == [PARAMS]
    assert not any("/v2/" in s.path for s in api.sent)


async def test_v2_render_keeps_the_delivery_contract(
    api: MemoryTransport, make_client: Any
) -> None:
    """On v2 the intent hook runs once right before the send, and a lost answer is ambiguous
    and never resent, for the preview render and the renderParams render alike."""
    hooks: list[str] = []

    async def before_send() -> None:
        hooks.append("intent")

    api.on("PUT", "/v2/video/render/p1", lost(), repeat=True)
    api.on("POST", "/v2/video/render", lost(), repeat=True)
    async with make_client(KEY) as client:
        with pytest.raises(AmbiguousError):
            await client.render("p1", None, before_send=before_send)
        with pytest.raises(AmbiguousError):
            await client.render_params(PARAMS, before_send=before_send)
    assert len(api.requests("PUT", "/v2/video/render/p1")) == 1
    assert len(api.requests("POST", "/v2/video/render")) == 1
    assert hooks == ["intent", "intent"]


async def test_v2_400_is_permanent_with_its_code_and_message(
    api: MemoryTransport, make_client: Any
) -> None:
    """A v2 400 ``{code, message, fields}`` fails permanently naming the API's code and text."""
    body = {
        "code": "INVALID_REQUEST_BODY",
        "message": "videoName is required",
        "fields": [{"name": "videoName", "errors": "required"}],
    }
    api.on("POST", "/v2/video/storyboard", reply(body, 400))
    async with make_client(KEY) as client:
        with pytest.raises(PermanentError, match="videoName is required") as info:
            await client.create_storyboard({"scenes": []})
    assert info.value.error_code == "INVALID_REQUEST_BODY"


async def test_media_upload_asks_for_a_signed_url_then_puts_the_file_there(
    api: MemoryTransport, make_client: Any, tmp_path: Any
) -> None:
    """``upload_media``: ``POST /v1/media/generateUrl`` {fileName, contentType}, the file's bytes
    PUT to the signed URL (not the API), and the public URL returned for the API to read."""
    source = tmp_path / "talk.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypmp42 and the rest")
    signed = "http://127.0.0.1:9/bucket/talk.mp4?sig=1"
    answer = {"success": True, "data": {"signedUrl": signed, "url": "https://cdn/talk.mp4"}}
    api.on("POST", "/v1/media/generateUrl", reply(answer))
    async with make_client(KEY) as client:
        assert await client.upload_media(source, "video/mp4") == "https://cdn/talk.mp4"
    assert api.bodies("POST", "/v1/media/generateUrl") == [
        {"fileName": "talk.mp4", "contentType": "video/mp4"}
    ]
    assert api.uploaded == {signed: source.read_bytes()}
