"""The aiohttp transport under the client (aioresponses' canned answers): aiohttp's exceptions
become our verdicts in ``transport._translate`` and nowhere else. The client's own logic is
tested on a transport in memory (``test_client.py``); downloads over loopback in
``test_download.py``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aioresponses import aioresponses
from memory_transport import API_KEY

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.transport import _require_http
from orchestrator.clock import VirtualClock
from orchestrator.config import ApiConfig
from orchestrator.errors import AmbiguousError, PermanentError, TransientError

BASE = "http://pictory.test/pictoryapis"

pytestmark = pytest.mark.usefixtures("aioresponses_compat")


@pytest.fixture
async def client() -> AsyncIterator[PictoryClient]:
    """A client on its default transport (``AiohttpTransport``), with an API key."""
    clock = VirtualClock()
    async with PictoryClient(
        ApiConfig(base_url=BASE, user_agent="orchestrator-tests/1"),
        API_KEY,
        clock=clock,
        limiter=RateLimiter(clock, max_rps=1000),
        retry_policy=RetryPolicy(max_attempts=4, base_delay_s=0.5),
        rng=random.Random(1),
    ) as client:
        yield client


def _calls(mock: aioresponses, method: str, url: str) -> int:
    return len(mock.requests.get((method, aiohttp.client.URL(url)), []))


async def test_dropped_connection_after_a_render_is_ambiguous_and_not_resent(
    client: PictoryClient,
) -> None:
    """A render PUT answered by a dropped connection raises AmbiguousError after one send."""
    url = f"{BASE}/v2/video/render/p1"  # an API key renders on v2 (contract §5.6)
    with aioresponses() as mock:
        mock.put(url, exception=aiohttp.ServerDisconnectedError())
        mock.put(url, payload={"success": True, "data": {"job_id": "r1"}})
        with pytest.raises(AmbiguousError):
            await client.render("p1", None)
        assert _calls(mock, "PUT", url) == 1


async def test_read_timeout_on_a_safe_request_is_transient_and_retried(
    client: PictoryClient,
) -> None:
    """A read timeout on a job read is a TransientError: retried, and the call succeeds."""
    url = f"{BASE}/v1/jobs/j1"
    with aioresponses() as mock:
        mock.get(url, exception=TimeoutError())
        mock.get(url, payload={"success": True, "data": {"status": "in-progress"}})
        assert (await client.get_job("j1")).status == "in-progress"
        assert _calls(mock, "GET", url) == 2


async def test_refused_connection_is_not_delivered_and_retried(client: PictoryClient) -> None:
    """Connection refused means nothing was sent: a job-creating request is retried safely."""
    url = f"{BASE}/v2/video/storyboard"  # an API key creates previews on v2
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("pictory.test", 80, False, True, None, None, None),
        OSError(111, "Connection refused"),
    )
    with aioresponses() as mock:
        mock.post(url, exception=refused)
        mock.post(url, payload={"success": True, "data": {"jobId": "p1"}})
        assert await client.create_preview("t1", {"name": "Ann"}) == "p1"
        assert _calls(mock, "POST", url) == 2


async def test_every_dropped_connection_on_a_read_ends_transient(client: PictoryClient) -> None:
    """A job read whose connection drops every time fails as transient after its attempts."""
    url = f"{BASE}/v1/jobs/j1"
    with aioresponses() as mock:
        mock.get(url, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        with pytest.raises(TransientError, match="ServerDisconnectedError"):
            await client.get_job("j1")
        assert _calls(mock, "GET", url) == 4


@pytest.mark.parametrize(
    ("url", "followed"),
    [
        ("https://cdn.example/v.mp4", True),
        ("http://127.0.0.1:8080/v.mp4", True),
        ("HTTPS://cdn.example/v.mp4", True),  # past the fast path: urlsplit's reading
        (" https://cdn.example/v.mp4", True),
        ("file:///etc/passwd", False),
        ("javascript:alert(1)", False),
        ("/videos/v.mp4", False),
        ("httpx://cdn.example/v.mp4", False),
    ],
)
def test_only_http_and_https_urls_are_followed(url: str, followed: bool) -> None:
    """``_require_http``: the ``http://``/``https://`` fast path and urlsplit's reading of the
    rest agree: http(s) in any case is followed, any other scheme or none refused."""
    if followed:
        _require_http(url)
    else:
        with pytest.raises(PermanentError, match="only http\\(s\\) is followed"):
            _require_http(url)
