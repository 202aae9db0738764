"""PictoryClient against canned answers (aioresponses): auth, quirks, verdicts; virtual time."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest
from aioresponses import CallbackResult, aioresponses
from pydantic import SecretStr

from orchestrator.client import PictoryClient
from orchestrator.clock import VirtualClock
from orchestrator.config import ApiConfig, Credentials
from orchestrator.errors import AmbiguousError, JobLostError, PermanentError
from orchestrator.limits import RateLimiter
from orchestrator.retry import RetryPolicy
from orchestrator.stages.poll import wait_for_job

BASE = "http://pictory.test/pictoryapis"
JOB = f"{BASE}/v1/jobs/j1"
TOKEN = f"{BASE}/v1/oauth2/token"
RUNNING = {"job_id": "j1", "success": True, "data": {"status": "in-progress"}}


def _creds(api_key: str | None = None) -> Credentials:
    if api_key:
        return Credentials(api_key=SecretStr(api_key))
    return Credentials(client_id=SecretStr("cid"), client_secret=SecretStr("csecret"), user_id="u1")


pytestmark = pytest.mark.usefixtures("aioresponses_compat")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def make_client(clock: VirtualClock) -> AsyncIterator[Any]:
    clients: list[PictoryClient] = []

    async def make(
        creds: Credentials | None = None, limiter: RateLimiter | None = None
    ) -> PictoryClient:
        client = PictoryClient(
            ApiConfig(base_url=BASE, user_agent="orchestrator-tests/1"),
            creds or _creds(),
            clock=clock,
            limiter=limiter or RateLimiter(clock, max_rps=1000),
            retry_policy=RetryPolicy(max_attempts=4, base_delay_s=0.5),
            rng=random.Random(1),
        )
        await client.__aenter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.__aexit__(None, None, None)


def _token_answer(token: str = "tok-1") -> dict[str, Any]:
    return {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}


async def test_concurrent_calls_share_one_token_fetch(make_client: Any) -> None:
    """Ten tasks needing a token at once cause one token request; each call carries the headers."""
    client = await make_client()
    with aioresponses() as mock:
        mock.post(TOKEN, payload=_token_answer())
        for _ in range(10):
            mock.get(JOB, payload=RUNNING)
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(client.get_job, "j1")
        token_calls = mock.requests[("POST", aiohttp.client.URL(TOKEN))]
        job_calls = mock.requests[("GET", aiohttp.client.URL(JOB))]
    assert len(token_calls) == 1
    headers = job_calls[0].kwargs["headers"]
    assert headers["Authorization"] == "tok-1"  # bare, as Pictory's samples send it
    assert headers["X-Pictory-User-Id"] == "u1"


async def test_401_refreshes_the_token_once_then_retries(make_client: Any) -> None:
    """A 401 triggers one token refresh and one retry with the new token."""
    client = await make_client()
    with aioresponses() as mock:
        mock.post(TOKEN, payload=_token_answer("old"))
        mock.get(JOB, status=401, payload={"success": False})
        mock.post(TOKEN, payload=_token_answer("new"))
        mock.get(JOB, payload=RUNNING)
        job = await client.get_job("j1")
        calls = mock.requests[("GET", aiohttp.client.URL(JOB))]
    assert job.status == "in-progress"
    assert [c.kwargs["headers"]["Authorization"] for c in calls] == ["old", "new"]


async def test_api_key_is_sent_bare_without_user_id(make_client: Any) -> None:
    """With an API key: no token call, the key bare in Authorization, no user-id header."""
    client = await make_client(_creds(api_key="pictai_k"))
    with aioresponses() as mock:
        mock.get(JOB, payload=RUNNING)
        await client.get_job("j1")
        call = mock.requests[("GET", aiohttp.client.URL(JOB))][0]
    assert call.kwargs["headers"]["Authorization"] == "pictai_k"
    assert "X-Pictory-User-Id" not in call.kwargs["headers"]


async def test_429_waits_retry_after_on_virtual_time(make_client: Any, clock: VirtualClock) -> None:
    """A 429 with Retry-After: 3 is retried after at least 3 virtual seconds, not at once."""
    client = await make_client(_creds(api_key="pictai_k"))
    with aioresponses() as mock:
        mock.get(
            JOB,
            status=429,
            headers={"Retry-After": "3"},
            payload={"success": False, "error": {"error_code": "RATE_LIMITED"}},
        )
        mock.get(JOB, payload=RUNNING)
        await client.get_job("j1")
    assert clock.now() >= 3.0
    assert client.limiter.rate_limited_total == 1


async def test_lost_answer_to_a_render_is_ambiguous_and_not_resent(make_client: Any) -> None:
    """A render PUT answered by a dropped connection raises AmbiguousError after one send."""
    client = await make_client(_creds(api_key="pictai_k"))
    url = f"{BASE}/v2/video/render/p1"  # an API key renders on v2 (contract §5.6)
    with aioresponses() as mock:
        mock.put(url, exception=aiohttp.ServerDisconnectedError())
        mock.put(url, payload={"success": True, "data": {"job_id": "r1"}})
        with pytest.raises(AmbiguousError):
            await client.render("p1", None)
        assert len(mock.requests[("PUT", aiohttp.client.URL(url))]) == 1


async def test_refused_connection_is_retried(make_client: Any) -> None:
    """Connection refused means nothing was sent: a job-creating request is retried safely."""
    client = await make_client(_creds(api_key="pictai_k"))
    url = f"{BASE}/v2/video/storyboard"  # an API key creates previews on v2
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("pictory.test", 80, False, True, None, None, None),
        OSError(111, "Connection refused"),
    )
    with aioresponses() as mock:
        mock.post(url, exception=refused)
        mock.post(url, payload={"success": True, "data": {"jobId": "p1"}})
        assert await client.create_preview("t1", {"name": "Ann"}) == "p1"


async def test_validation_error_fails_with_the_api_message(make_client: Any) -> None:
    """A 400 is permanent and carries the API's own error message and code."""
    client = await make_client(_creds(api_key="pictai_k"))
    url = f"{BASE}/v2/video/storyboard"  # an API key creates previews on v2
    body = {
        "success": False,
        "error": {"error_code": "INVALID_REQUEST_BODY", "error_message": "unknown variable 'nmae'"},
    }
    with aioresponses() as mock:
        mock.post(url, status=400, payload=body)
        with pytest.raises(PermanentError, match="unknown variable 'nmae'") as info:
            await client.create_preview("t1", {"nmae": "Ann"})
    assert info.value.error_code == "INVALID_REQUEST_BODY"


async def test_requests_waiting_for_a_new_token_take_new_turns_not_a_burst(
    make_client: Any, clock: VirtualClock
) -> None:
    """A 401 while others queue: the refused token is never sent again, the refresh goes ahead
    of the queue, and the requests that waited for it are still spaced by the limiter."""
    client = await make_client(limiter=RateLimiter(clock, max_rps=4))  # a queue forms
    sent: list[tuple[float, str]] = []

    def job(url: Any, **kwargs: Any) -> CallbackResult:
        token = kwargs["headers"]["Authorization"]
        sent.append((clock.now(), token))
        if token == "old":
            return CallbackResult(status=401, payload={"success": False})
        return CallbackResult(payload=RUNNING)

    with aioresponses() as mock:
        mock.post(TOKEN, payload=_token_answer("old"))
        mock.post(TOKEN, payload=_token_answer("new"))
        mock.get(JOB, callback=job, repeat=True)
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(client.get_job, "j1")
        token_calls = mock.requests[("POST", aiohttp.client.URL(TOKEN))]
    assert len(token_calls) == 2
    assert [token for _, token in sent].count("old") == 1
    new_times = [t for t, token in sent if token == "new"]
    assert len(new_times) == 6
    gaps = [b - a for a, b in itertools.pairwise(new_times)]
    assert min(gaps) >= 0.25  # 4 req/s: one turn each, never all at once


async def test_a_cleaned_job_is_lost_and_an_unknown_status_is_logged_once(
    make_client: Any, clock: VirtualClock
) -> None:
    """§5.4: a job answering ``cleaned`` ends the wait as a lost job (no polling until the
    deadline); a status nobody documents is said once and waited on like ``in-progress``."""
    client = await make_client()
    seen: list[str] = []
    odd = {"success": True, "data": {"status": "rendering-queued"}}
    done = {"success": True, "data": {"status": "completed", "videoURL": "https://cdn/v.mp4"}}
    with aioresponses() as mock:
        mock.post(TOKEN, payload=_token_answer())
        for answer in (odd, odd, done):
            mock.get(JOB, payload=answer)
        job = await wait_for_job(
            client, "j1", clock=clock, rng=random.Random(1), interval_s=1.0,
            jitter_fraction=0.0, deadline_s=600.0, stage="render", fresh=False,
            on_unknown_status=seen.append,
        )  # fmt: skip
        assert job.status == "completed" and seen == ["rendering-queued"]
        mock.get(JOB, payload={"job_id": "j1", "success": True, "data": {"status": "cleaned"}})
        started = clock.now()
        with pytest.raises(JobLostError, match="cleaned"):
            await wait_for_job(
                client, "j1", clock=clock, rng=random.Random(1), interval_s=1.0,
                jitter_fraction=0.0, deadline_s=600.0, stage="render", fresh=False,
            )  # fmt: skip
        assert clock.now() - started < 1.0
