"""Every request we make names the tool and its version in ``User-Agent`` (contract §0: the
service sits behind a CDN that has refused library default agents): the token call, API calls,
the upload to a signed URL, the video download and the end-of-run notification. A loopback
server records what each one sent."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

import orchestrator
from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.clock import RealClock
from orchestrator.config import ApiConfig, Credentials
from orchestrator.events import ListSink
from orchestrator.report import notify

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(64)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A loopback server answering as Pictory, its CDN and a chat webhook; the agents seen,
    by ``METHOD path``."""
    agents: dict[str, str] = {}
    base = ""

    async def handle(request: web.Request) -> web.StreamResponse:
        agents[f"{request.method} {request.path}"] = request.headers.get("User-Agent", "")
        await request.read()
        path = request.path
        if path.endswith("/v1/oauth2/token"):
            return web.json_response({"access_token": "t", "expires_in": 3600})
        if path.endswith("/v1/jobs/j1"):
            return web.json_response({"success": True, "data": {"status": "in-progress"}})
        if path.endswith("/v1/media/generateUrl"):
            signed, public = f"{base}/upload/a.mp4", f"{base}/cdn/a.mp4"
            return web.json_response(
                {"success": True, "data": {"signedUrl": signed, "url": public}}
            )
        if path == "/video.mp4":
            return web.Response(body=MP4, content_type="video/mp4")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield base, agents
    finally:
        await runner.cleanup()


async def test_every_request_names_the_tool_and_its_version(
    recorder: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Token, job read, generateUrl, the signed upload, the video download and the
    notification each send ``pictory-batch-orchestrator/VERSION`` (the notification adds what
    it is)."""
    base, agents = recorder
    clock = RealClock()
    creds = Credentials(client_id=SecretStr("c"), client_secret=SecretStr("s"))
    media = tmp_path / "a.mp4"
    media.write_bytes(MP4)
    async with PictoryClient(
        ApiConfig(base_url=f"{base}/pictoryapis"),
        creds,
        clock=clock,
        limiter=RateLimiter(clock, max_rps=100.0),
        retry_policy=RetryPolicy(max_attempts=1),
        rng=random.Random(0),
    ) as client:
        await client.get_job("j1")
        await client.upload_media(media, "video/mp4")
        await client.download(f"{base}/video.mp4", tmp_path / "v.part", video=True)
    assert await notify.send(f"{base}/notify", {"event": "done"}, ListSink())
    ours = orchestrator.USER_AGENT
    assert ours == f"{orchestrator.DISTRIBUTION}/{orchestrator.__version__}"
    assert agents == {
        "POST /pictoryapis/v1/oauth2/token": ours,
        "GET /pictoryapis/v1/jobs/j1": ours,
        "POST /pictoryapis/v1/media/generateUrl": ours,
        "PUT /upload/a.mp4": ours,
        "GET /video.mp4": ours,
        "POST /notify": f"{ours} (notify)",
    }
