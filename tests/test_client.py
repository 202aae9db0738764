"""PictoryClient's own logic on a transport that answers from memory: auth and tokens, verdicts,
retries, the delivery contract; virtual time. (The aiohttp transport: ``test_transport.py``.)"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from memory_transport import (
    API_KEY,
    MemoryTransport,
    Reply,
    Sent,
    lost,
    memory_client,
    refused,
    reply,
)
from pydantic import SecretStr

from orchestrator.api import tokens
from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.tokens import MAX_TOKEN_WAITS
from orchestrator.clock import VirtualClock
from orchestrator.config import Credentials
from orchestrator.errors import (
    AmbiguousError,
    AuthError,
    CredentialsRefusedError,
    CredentialsStop,
    JobLostError,
    PermanentError,
)
from orchestrator.run.stages.poll import wait_for_job

JOB = "/v1/jobs/j1"
TOKEN = "/v1/oauth2/token"
RUNNING = {"job_id": "j1", "success": True, "data": {"status": "in-progress"}}


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def api() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
async def client(api: MemoryTransport, clock: VirtualClock) -> AsyncIterator[PictoryClient]:
    """A client with client credentials (a token is fetched first)."""
    async with memory_client(api, clock=clock) as client:
        yield client


@pytest.fixture
async def key_client(api: MemoryTransport, clock: VirtualClock) -> AsyncIterator[PictoryClient]:
    """A client with an API key (sent bare, no token)."""
    async with memory_client(api, API_KEY, clock=clock) as client:
        yield client


def _token_answer(token: str = "tok-1", expires_in: Any = 3600) -> Reply:
    return reply({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})


def _tokens_sent(api: MemoryTransport) -> int:
    return len(api.requests("POST", TOKEN))


async def test_concurrent_calls_share_one_token_fetch(
    api: MemoryTransport, client: PictoryClient
) -> None:
    """Ten tasks needing a token at once cause one token request; each call carries the headers."""
    api.on("POST", TOKEN, _token_answer())
    api.on("GET", JOB, reply(RUNNING), repeat=True)
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(client.get_job, "j1")
    assert _tokens_sent(api) == 1
    jobs = api.requests("GET", JOB)
    assert len(jobs) == 10
    assert {c.headers["Authorization"] for c in jobs} == {"tok-1"}  # bare, as Pictory's samples
    assert {c.headers["X-Pictory-User-Id"] for c in jobs} == {"u1"}
    assert api.requests("POST", TOKEN)[0].json == {"client_id": "cid", "client_secret": "csecret"}


async def test_401_refreshes_the_token_once_then_retries(
    api: MemoryTransport, client: PictoryClient
) -> None:
    """A 401 triggers one token refresh and one retry with the new token."""
    api.on("POST", TOKEN, _token_answer("old"), _token_answer("new"))
    api.on("GET", JOB, reply({"success": False}, 401), reply(RUNNING))
    job = await client.get_job("j1")
    assert job.status == "in-progress"
    assert [c.headers["Authorization"] for c in api.requests("GET", JOB)] == ["old", "new"]


async def test_api_key_is_sent_bare_without_user_id(
    api: MemoryTransport, key_client: PictoryClient
) -> None:
    """With an API key: no token call, the key bare in Authorization, no user-id header."""
    api.on("GET", JOB, reply(RUNNING))
    await key_client.get_job("j1")
    (call,) = api.sent
    assert call.headers == {"Authorization": "pictai_k"}


async def test_429_waits_retry_after_on_virtual_time(
    api: MemoryTransport, key_client: PictoryClient, clock: VirtualClock
) -> None:
    """A 429 with Retry-After: 3 is retried after at least 3 virtual seconds, not at once."""
    limited = {"success": False, "error": {"error_code": "RATE_LIMITED"}}
    api.on("GET", JOB, reply(limited, 429, retry_after="3"), reply(RUNNING))
    await key_client.get_job("j1")
    assert clock.now() >= 3.0
    assert key_client.limiter.rate_limited_total == 1


async def test_lost_answer_to_a_render_is_ambiguous_and_not_resent(
    api: MemoryTransport, key_client: PictoryClient
) -> None:
    """A render PUT whose answer is lost raises AmbiguousError after one send, the intent hook
    having run right before it."""
    hooks: list[int] = []

    async def before_send() -> None:
        hooks.append(len(api.sent))

    path = "/v2/video/render/p1"  # an API key renders on v2 (contract §5.6)
    api.on("PUT", path, lost(), reply({"success": True, "data": {"job_id": "r1"}}))
    with pytest.raises(AmbiguousError):
        await key_client.render("p1", None, before_send=before_send)
    assert len(api.requests("PUT", path)) == 1
    assert hooks == [0]


async def test_refused_connection_is_retried(
    api: MemoryTransport, key_client: PictoryClient
) -> None:
    """Connection refused means nothing was sent: a job-creating request is retried safely."""
    path = "/v2/video/storyboard"  # an API key creates previews on v2
    api.on("POST", path, refused(), reply({"success": True, "data": {"jobId": "p1"}}))
    assert await key_client.create_preview("t1", {"name": "Ann"}) == "p1"
    assert len(api.requests("POST", path)) == 2


async def test_validation_error_fails_with_the_api_message(
    api: MemoryTransport, key_client: PictoryClient
) -> None:
    """A 400 is permanent and carries the API's own error message and code."""
    body = {
        "success": False,
        "error": {"error_code": "INVALID_REQUEST_BODY", "error_message": "unknown variable 'nmae'"},
    }
    api.on("POST", "/v2/video/storyboard", reply(body, 400))
    with pytest.raises(PermanentError, match="unknown variable 'nmae'") as info:
        await key_client.create_preview("t1", {"nmae": "Ann"})
    assert info.value.error_code == "INVALID_REQUEST_BODY"


async def test_requests_waiting_for_a_new_token_take_new_turns_not_a_burst(
    api: MemoryTransport, clock: VirtualClock
) -> None:
    """A 401 while others queue: the refused token is never sent again, the refresh goes ahead
    of the queue, and the requests that waited for it are still spaced by the limiter."""
    sent: list[tuple[float, str]] = []

    def job(request: Sent) -> Reply:
        token = request.headers["Authorization"]
        sent.append((clock.now(), token))
        return reply({"success": False}, 401) if token == "old" else reply(RUNNING)

    api.on("POST", TOKEN, _token_answer("old"), _token_answer("new"))
    api.on("GET", JOB, job, repeat=True)
    limiter = RateLimiter(clock, max_rps=4)  # a queue forms
    async with (
        memory_client(api, clock=clock, limiter=limiter) as client,
        anyio.create_task_group() as tg,
    ):
        for _ in range(6):
            tg.start_soon(client.get_job, "j1")
    assert _tokens_sent(api) == 2
    assert [token for _, token in sent].count("old") == 1
    new_times = [t for t, token in sent if token == "new"]
    assert len(new_times) == 6
    gaps = [b - a for a, b in itertools.pairwise(new_times)]
    assert min(gaps) >= 0.25  # 4 req/s: one turn each, never all at once


async def test_token_living_shorter_than_the_margin_is_used_for_half_its_life(
    api: MemoryTransport, client: PictoryClient, clock: VirtualClock
) -> None:
    """A 20 s token against the default 300 s margin: used at once, kept for 10 s, renewed
    after; one token request per renewal, never a loop of them."""
    api.on("POST", TOKEN, _token_answer(expires_in=20), repeat=True)
    api.on("GET", JOB, reply(RUNNING), repeat=True)
    await client.get_job("j1")
    assert _tokens_sent(api) == 1
    await clock.sleep(9.5)
    await client.get_job("j1")
    assert _tokens_sent(api) == 1
    await clock.sleep(1.0)  # past half the lifetime: renewed
    await client.get_job("j1")
    assert _tokens_sent(api) == 2


async def test_token_that_expires_before_its_turn_ends_in_a_bounded_auth_error(
    api: MemoryTransport, clock: VirtualClock
) -> None:
    """Tokens that expire while the request waits for its turn: each attempt waits for at most
    MAX_TOKEN_WAITS token requests, then the call fails with an AuthError naming the token
    endpoint after its attempts; no API request is sent with an expired token."""
    api.on("POST", TOKEN, _token_answer(expires_in=0.5), repeat=True)
    limiter = RateLimiter(clock, max_rps=1)  # a turn lasts longer than a token
    async with memory_client(api, clock=clock, limiter=limiter, max_attempts=2) as client:
        with pytest.raises(AuthError, match="no usable access token") as info:
            await client.get_job("j1")
    assert info.value.endpoint == "POST /v1/oauth2/token"
    assert _tokens_sent(api) == 2 * MAX_TOKEN_WAITS
    assert not api.requests("GET", JOB)


async def test_token_endpoint_refusing_the_credentials_is_asked_once_per_run(
    api: MemoryTransport, client: PictoryClient
) -> None:
    """401 from the token endpoint: a CredentialsRefusedError naming it and the variables to
    check; every later call of this client raises CredentialsStop without asking again (a wrong
    secret costs one request, not one a row)."""
    api.on("POST", TOKEN, reply({"message": "Unauthorized"}, 401), repeat=True)
    with pytest.raises(CredentialsRefusedError, match="PICTORY_CLIENT_SECRET") as info:
        await client.get_job("j1")
    assert info.value.status == 401 and info.value.endpoint == "POST /v1/oauth2/token"
    for _ in range(2):
        with pytest.raises(CredentialsStop, match="PICTORY_CLIENT_SECRET"):
            await client.get_job("j1")
    assert _tokens_sent(api) == 1
    assert not api.requests("GET", JOB)


async def test_a_refused_api_key_fails_its_call_at_once_and_no_later_call_is_sent(
    api: MemoryTransport, key_client: PictoryClient, clock: VirtualClock
) -> None:
    """A 401 to an API key: nothing to refresh, so the call fails at once (no backoff) with a
    CredentialsRefusedError naming PICTORY_API_KEY and doctor; later calls raise CredentialsStop
    before anything is sent (not an ApiError: a run leaves their rows pending)."""
    api.on("GET", JOB, reply({"message": "Unauthorized"}, 401), repeat=True)
    with pytest.raises(CredentialsRefusedError, match="check PICTORY_API_KEY") as info:
        await key_client.get_job("j1")
    assert info.value.status == 401 and info.value.kind == "auth"
    assert "orchestrator doctor" in str(info.value)
    assert clock.now() == 0.0  # no backoff pause
    for _ in range(2):
        with pytest.raises(CredentialsStop, match="the API refused the API key"):
            await key_client.get_job("j1")
    assert len(api.requests("GET", JOB)) == 1


async def test_a_glitch_of_401s_to_a_key_that_worked_does_not_stop_anything(
    api: MemoryTransport, key_client: PictoryClient, clock: VirtualClock
) -> None:
    """A key the API accepted earlier, then refused twice (a glitch at the API), then accepted
    again: the call is sent again and succeeds, nothing is latched, later calls go out."""
    unauthorized = reply({"message": "Unauthorized"}, 401)
    api.on("GET", JOB, reply(RUNNING), unauthorized, unauthorized, reply(RUNNING), reply(RUNNING))
    await key_client.get_job("j1")
    assert (await key_client.get_job("j1")).status == "in-progress"
    assert (await key_client.get_job("j1")).status == "in-progress"
    assert len(api.requests("GET", JOB)) == 5
    assert clock.now() < tokens.KEY_REFUSED_FOR_S


async def test_a_key_that_worked_then_refused_for_good_stops_after_the_window(
    api: MemoryTransport, key_client: PictoryClient, clock: VirtualClock
) -> None:
    """A key accepted once, then refused by every call (revoked mid-run): calls are retried
    while the refusal is younger than ``KEY_REFUSED_FOR_S``, then the refusal is latched: the
    call fails with CredentialsRefusedError and later calls are never sent."""
    api.on("GET", JOB, reply(RUNNING))
    await key_client.get_job("j1")
    api.on("GET", JOB, reply({"message": "Unauthorized"}, 401), repeat=True)
    while True:
        try:
            await key_client.get_job("j1")
        except CredentialsRefusedError:
            break
        except AuthError:  # a call that ran out of attempts inside the window
            assert clock.now() < tokens.KEY_REFUSED_FOR_S + 1.0
    assert clock.now() >= tokens.KEY_REFUSED_FOR_S
    sent = len(api.requests("GET", JOB))
    with pytest.raises(CredentialsStop, match="the API refused the API key"):
        await key_client.get_job("j1")
    assert len(api.requests("GET", JOB)) == sent


async def test_token_endpoint_failing_with_a_5xx_is_retried_not_latched(
    api: MemoryTransport, client: PictoryClient
) -> None:
    """A 503 from the token endpoint is a passing fault: retried, and the call succeeds."""
    api.on("POST", TOKEN, reply({"message": "busy"}, 503), _token_answer())
    api.on("GET", JOB, reply(RUNNING))
    assert (await client.get_job("j1")).status == "in-progress"
    assert _tokens_sent(api) == 2


async def test_cancellation_reaches_tasks_waiting_for_a_token(
    api: MemoryTransport, client: PictoryClient
) -> None:
    """A token request that never answers holds the token lock: cancelling reaches the fetching
    task and every task queued behind it, at once."""
    started = anyio.Event()

    async def never_answers(request: Sent) -> Reply:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    api.on("POST", TOKEN, never_answers, repeat=True)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(client.get_job, "j1")
            await started.wait()
            tg.cancel_scope.cancel()
    assert _tokens_sent(api) == 1


async def test_a_cleaned_job_is_lost_and_an_unknown_status_is_logged_once(
    api: MemoryTransport, client: PictoryClient, clock: VirtualClock
) -> None:
    """§5.4: a job answering ``cleaned`` ends the wait as a lost job (no polling until the
    deadline); a status nobody documents is said once and waited on like ``in-progress``."""
    seen: list[str] = []
    odd = {"success": True, "data": {"status": "rendering-queued"}}
    done = {"success": True, "data": {"status": "completed", "videoURL": "https://cdn/v.mp4"}}
    api.on("POST", TOKEN, _token_answer())
    api.on("GET", JOB, reply(odd), reply(odd), reply(done))
    job = await wait_for_job(
        client, "j1", clock=clock, rng=random.Random(1), interval_s=1.0,
        jitter_fraction=0.0, deadline_s=600.0, stage="render", fresh=False,
        on_unknown_status=seen.append,
    )  # fmt: skip
    assert job.status == "completed" and seen == ["rendering-queued"]
    api.on("GET", JOB, reply({"job_id": "j1", "success": True, "data": {"status": "cleaned"}}))
    started = clock.now()
    with pytest.raises(JobLostError, match="cleaned"):
        await wait_for_job(
            client, "j1", clock=clock, rng=random.Random(1), interval_s=1.0,
            jitter_fraction=0.0, deadline_s=600.0, stage="render", fresh=False,
        )  # fmt: skip
    assert clock.now() - started < 1.0


async def test_a_fresh_render_is_read_again_when_its_first_progress_says_it_ends(
    api: MemoryTransport, client: PictoryClient, clock: VirtualClock
) -> None:
    """A fresh render at 80 % after 10 s (it was at 0 % when created) ends in about 2.5 s: the
    next read comes at the earliest end its whole-number progress allows (under 81 % done:
    10 s / 0.81), not a whole 10 s interval later."""
    running = {
        "job_id": "j1",
        "success": True,
        "data": {"status": "in-progress", "renderProgress": 80},
    }
    done = {"success": True, "data": {"status": "completed", "videoURL": "https://cdn/v.mp4"}}
    api.on("POST", TOKEN, _token_answer())
    api.on("GET", JOB, reply(running), reply(done))
    job = await wait_for_job(
        client, "j1", clock=clock, rng=random.Random(1), interval_s=10.0,
        jitter_fraction=0.0, deadline_s=600.0, stage="render", fresh=True,
    )  # fmt: skip
    assert job.status == "completed"
    assert clock.now() == pytest.approx(10.0 / 0.81, abs=0.05)  # token turns: ms


async def test_without_a_user_id_no_user_id_header_is_sent(
    api: MemoryTransport, clock: VirtualClock
) -> None:
    """Client credentials without a user id (§6.1: optional): the token call and every API call
    go out without ``X-Pictory-User-Id``; the token call never carries it either way."""
    creds = Credentials(client_id=SecretStr("cid"), client_secret=SecretStr("csecret"))
    api.on("POST", TOKEN, _token_answer())
    api.on("GET", JOB, reply(RUNNING))
    async with memory_client(api, creds, clock=clock) as client:
        assert (await client.get_job("j1")).status == "in-progress"
    (job,) = api.requests("GET", JOB)
    assert job.headers["Authorization"] == "tok-1"
    assert "X-Pictory-User-Id" not in job.headers
    assert "X-Pictory-User-Id" not in api.requests("POST", TOKEN)[0].headers


@pytest.mark.parametrize(
    "body",
    [
        {"message": "Unauthorized"},  # Pictory's own 401 (§6.1 [S2])
        {"success": False, "error": {"error_code": "UNAUTHORIZED", "error_message": "bad key"}},
    ],
)
async def test_a_401_in_either_shape_says_which_credential_to_check(
    api: MemoryTransport, key_client: PictoryClient, body: dict[str, Any]
) -> None:
    """A key refused with Pictory's bare body or the legacy envelope: an AuthError (the key's
    refusal, ``CredentialsRefusedError``) that says the key was refused and names
    PICTORY_API_KEY and ``orchestrator doctor``; one request, no retry."""
    api.on("GET", JOB, reply(body, 401), repeat=True)
    with pytest.raises(AuthError) as info:
        await key_client.get_job("j1")
    message = info.value.message
    assert isinstance(info.value, CredentialsRefusedError)
    assert "the API refused the API key: check PICTORY_API_KEY" in message
    assert "orchestrator doctor" in message and info.value.status == 401
    assert len(api.requests("GET", JOB)) == 1
