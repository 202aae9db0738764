"""The webhook receiver through real HTTP on loopback: a callback needs the run's secret, must be
for a hook this run handed out, and must name the job the ledger records for that row and stage;
anything else is refused (404, counted) and changes nothing a waiter can take. Floods, slow
connections and the connection caps cannot keep a genuine callback out."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import stat
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from pydantic import SecretStr

from orchestrator.api.client import PictoryClient
from orchestrator.api.connections import ConnectionGuard
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.webhook_budgets import SourceBudgets
from orchestrator.api.webhooks import WebhookReceiver, run_secret
from orchestrator.clock import RealClock, VirtualClock
from orchestrator.config import ApiConfig, Credentials, PollConfig
from orchestrator.events import ListSink
from orchestrator.run.stages.render import _find_by_webhook

GREETING = Path(__file__).parent / "data" / "greeting.pictai"

SECRET = "s3cret-for-tests-0123456789abcdef"


class FrozenClock:
    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - unused
        raise AssertionError("the receiver never sleeps")


def _done(job_id: str, url: str = "http://cdn.example/v.mp4") -> dict[str, Any]:
    return {"job_id": job_id, "success": True, "data": {"status": "completed", "videoURL": url}}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, dict[tuple[str, str], str]]]:
    recorded: dict[tuple[str, str], str] = {}

    async with WebhookReceiver(
        secret=SECRET,
        recorded_job=lambda row, stage: recorded.get((row, stage)),
        clock=FrozenClock(),
    ) as hooks:
        yield hooks, recorded


async def _post(url: str, body: Any) -> int:
    data = io.BytesIO(json.dumps(body).encode())
    headers = {"Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=headers) as resp,
    ):
        return resp.status


async def test_a_callback_for_the_recorded_job_is_taken_once(receiver: Any) -> None:
    hooks, recorded = receiver
    url = hooks.url_for("row-1", "render")
    recorded[("row-1", "render")] = "job-1"
    assert await _post(url, _done("job-1")) == 200
    state = hooks.take("job-1")
    assert state is not None and state.video_url == "http://cdn.example/v.mp4"
    assert hooks.take("job-1") is None
    assert not hooks.rejected


async def test_without_the_secret_a_callback_is_404_and_counted(receiver: Any) -> None:
    hooks, recorded = receiver
    url = hooks.url_for("row-1", "render")
    recorded[("row-1", "render")] = "job-1"
    for forged in (url.replace(SECRET, "guess"), f"{hooks.base_url}/hooks/row-1/render"):
        assert await _post(forged, _done("job-1", "http://evil.example/x.mp4")) == 404
    assert hooks.take("job-1") is None
    assert hooks.rejected["secret"] == 1  # the path without any secret matches no route at all


async def test_a_hook_that_was_never_handed_out_is_404(receiver: Any) -> None:
    hooks, recorded = receiver
    hooks.url_for("row-1", "render")
    url = hooks.url_for("row-1", "render").replace("row-1", "row-2")
    recorded[("row-2", "render")] = "job-2"
    assert await _post(url, _done("job-2")) == 404
    assert hooks.rejected["not_awaited"] == 1
    assert hooks.take("job-2") is None


async def test_the_right_secret_naming_another_rows_job_changes_nothing(receiver: Any) -> None:
    """Row 1's hook, row 2's job: refused on arrival; row 2's own callback is still taken."""
    hooks, recorded = receiver
    url_1 = hooks.url_for("row-1", "render")
    url_2 = hooks.url_for("row-2", "render")
    recorded[("row-1", "render")] = "job-1"
    recorded[("row-2", "render")] = "job-2"
    assert await _post(url_1, _done("job-2", "http://evil.example/x.mp4")) == 404
    assert await _post(url_2, _done("job-2")) == 200
    assert await _post(url_1, _done("job-2", "http://evil.example/x.mp4")) == 404
    state = hooks.take("job-2")
    assert state is not None and state.video_url == "http://cdn.example/v.mp4"
    assert hooks.rejected["other_job"] == 2


async def test_a_callback_before_the_job_is_recorded_is_checked_when_taken(receiver: Any) -> None:
    """While the create answer is in flight any job id is held; once the ledger records the
    row's job, a callback naming another job is dropped when a waiter looks for it."""
    hooks, recorded = receiver
    url = hooks.url_for("row-1", "preview")
    assert await _post(url, _done("job-x")) == 200
    recorded[("row-1", "preview")] = "job-1"
    assert hooks.take("job-x") is None
    assert hooks.rejected["other_job"] == 1


async def test_forget_row_drops_its_hooks_and_callbacks(receiver: Any) -> None:
    hooks, recorded = receiver
    url = hooks.url_for("row-1", "render")
    assert await _post(url, _done("job-1")) == 200
    hooks.forget_row("row-1")
    recorded[("row-1", "render")] = "job-1"
    assert hooks.take("job-1") is None
    assert await _post(url, _done("job-1")) == 404


async def test_bodies_over_the_limit_are_refused(receiver: Any) -> None:
    hooks, recorded = receiver
    url = hooks.url_for("row-1", "render")
    recorded[("row-1", "render")] = "job-1"
    huge = _done("job-1") | {"padding": "x" * (5 * 1024 * 1024)}
    assert await _post(url, huge) == 413
    assert hooks.take("job-1") is None


async def test_a_flood_with_the_secret_is_answered_429(receiver: Any) -> None:
    """From one source (loopback) on a frozen clock: after the burst no token comes back."""
    hooks, _ = receiver
    url = hooks.url_for("row-1", "render")
    statuses = [await _post(url, {}) for _ in range(410)]
    assert statuses.count(400) == 400 and statuses.count(429) == 10
    assert hooks.rejected["rate"] == 10


async def test_every_answer_closes_its_connection(receiver: Any) -> None:
    """Accepted or refused, a callback's answer says ``Connection: close``: nothing idles in
    keep-alive, and no client sends on a connection the receiver is about to close."""
    hooks, recorded = receiver
    url = hooks.url_for("row-1", "render")
    recorded[("row-1", "render")] = "job-1"
    async with aiohttp.ClientSession() as session:
        for target in (url.replace(SECRET, "guess"), f"{hooks.base_url}/elsewhere", url):
            async with session.post(target, json=_done("job-1")) as resp:
                assert resp.headers["Connection"] == "close", target
    assert hooks.take("job-1") is not None


@pytest.fixture
async def make_receiver() -> AsyncIterator[Any]:
    """Factory: ``make_receiver(**limits)`` → (receiver, recorded jobs) on a frozen clock."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**limits: Any) -> tuple[WebhookReceiver, dict[tuple[str, str], str]]:
            recorded: dict[tuple[str, str], str] = {}
            hooks = WebhookReceiver(
                secret=SECRET,
                recorded_job=lambda row, stage: recorded.get((row, stage)),
                clock=FrozenClock(),
                **limits,
            )
            return await stack.enter_async_context(hooks), recorded

        yield make


async def _connect(
    hooks: WebhookReceiver,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", urlsplit(hooks.base_url).port)


def _head(url: str, content_length: int | None = None) -> bytes:
    lines = [f"POST {urlsplit(url).path} HTTP/1.1", "Host: 127.0.0.1"]
    if content_length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {content_length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _drip(writer: asyncio.StreamWriter, url: str) -> None:
    """A slow-loris: a request head sent one byte every 20 ms, never finished."""
    head = f"POST {urlsplit(url).path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".encode()
    with contextlib.suppress(ConnectionError):
        for byte in itertools.chain(head, itertools.repeat(ord("a"), 4000)):
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.02)


async def _read_until_closed(reader: asyncio.StreamReader, within_s: float = 5.0) -> bytes | None:
    """What the server sent before it closed the connection; None if it is still open."""
    received = b""
    try:
        async with asyncio.timeout(within_s):
            while chunk := await reader.read(4096):
                received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


async def _hang_up(*writers: asyncio.StreamWriter) -> None:
    for writer in writers:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _until(predicate: Any, within_s: float = 5.0) -> None:
    """Polls: what the server has counted so far has no event to wait on."""
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 - polling the receiver's counts is the point
            await asyncio.sleep(0.01)


async def test_the_budget_is_per_source() -> None:
    """One source spending its burst leaves another's untouched; tokens come back with time."""
    clock = VirtualClock()
    budgets = SourceBudgets(clock, rate_per_s=10.0, burst=5)
    assert [budgets.take("203.0.113.1") for _ in range(6)] == [True] * 5 + [False]
    assert all(budgets.take("203.0.113.2") for _ in range(5))
    await clock.sleep(0.1)
    assert budgets.take("203.0.113.1") and not budgets.take("203.0.113.1")


async def test_budgets_forget_only_sources_that_have_refilled() -> None:
    """Past ``max_sources``, a source whose bucket is full again is forgotten (the same as a
    fresh one); one still short is remembered, so forgetting never hands out a new burst."""
    clock = VirtualClock()
    budgets = SourceBudgets(clock, rate_per_s=10.0, burst=5, max_sources=2)
    assert all(budgets.take("a") for _ in range(5))
    assert budgets.take("b")
    await clock.sleep(0.1)  # b is full again; a has one token of five
    assert budgets.take("c")
    assert budgets.sources == 2
    assert budgets.take("a") and not budgets.take("a")


class _FakeTransport(asyncio.Transport):
    """A socket that is not one: ``abort`` is reported to the protocol as real ones do."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._protocol = protocol
        self.aborted = False

    def abort(self) -> None:
        if not self.aborted:
            self.aborted = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.aborted


async def test_over_the_cap_the_connection_waiting_longest_makes_room() -> None:
    """Cap 3: a fourth connection displaces the one that has waited longest for its request
    head, never one busy being answered; when all are busy, the newcomer is closed at once."""
    rejected: Counter[str] = Counter()
    guard = ConnectionGuard(rejected, max_open=3)
    factory = guard.wrap(asyncio.Protocol)

    def connect() -> _FakeTransport:
        protocol = factory()
        transport = _FakeTransport(protocol)
        protocol.connection_made(transport)
        return transport

    first, second, third = connect(), connect(), connect()
    guard.head_arrived(first)  # busy: its head is in, its answer on the way
    fourth = connect()
    assert [t.aborted for t in (first, second, third, fourth)] == [False, True, False, False]
    guard.head_arrived(third)
    guard.head_arrived(fourth)
    fifth = connect()
    assert fifth.aborted and not any(t.aborted for t in (first, third, fourth))
    assert rejected == Counter(too_many_connections=2)
    await asyncio.sleep(0)  # the aborts' connection_lost
    assert (guard.open_count, guard.waiting_count) == (3, 0)
    guard.close_all()
    await asyncio.sleep(0)


async def test_a_flood_from_many_connections_never_refuses_a_genuine_callback(
    make_receiver: Any,
) -> None:
    """20 connections (kept alive, and new for every POST) send wrong-secret POSTs; once more
    than the burst has gone by (the clock is frozen: a token spent is never back), six genuine
    callbacks arrive one after another: each is answered 200 and held for its waiter."""
    hooks, recorded = await make_receiver()
    urls = {}
    for i in range(6):
        urls[f"row-{i}"] = hooks.url_for(f"row-{i}", "render")
        recorded[(f"row-{i}", "render")] = f"job-{i}"
    forged = urls["row-0"].replace(SECRET, "x" * len(SECRET))
    flood: Counter[str] = Counter()
    stop = asyncio.Event()

    async def flood_from(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            try:
                async with session.post(forged, json=_done("job-0")) as resp:
                    flood[str(resp.status)] += 1
            except aiohttp.ClientError as exc:  # what the flood gets is not the point
                flood[type(exc).__name__] += 1

    kept_alive = aiohttp.TCPConnector(limit=12)
    fresh = aiohttp.TCPConnector(limit=8, force_close=True)
    async with (
        aiohttp.ClientSession(connector=kept_alive) as pooled,
        aiohttp.ClientSession(connector=fresh) as one_off,
        asyncio.TaskGroup() as flooding,
    ):
        for session, workers in ((pooled, 12), (one_off, 8)):
            for _ in range(workers):
                flooding.create_task(flood_from(session))
        await _until(lambda: flood["404"] > 500, within_s=30.0)
        statuses = [await _post(urls[f"row-{i}"], _done(f"job-{i}")) for i in range(6)]
        stop.set()
    assert statuses == [200] * 6
    assert hooks.rejected["secret"] >= flood["404"] > 500
    assert hooks.rejected["rate"] == 0
    for i in range(6):
        taken = hooks.take(f"job-{i}")
        assert taken is not None and taken.video_url == "http://cdn.example/v.mp4"


async def test_slow_loris_connections_filling_the_cap_do_not_keep_out_a_callback(
    make_receiver: Any,
) -> None:
    """Eight connections dripping a head byte by byte fill the cap (8); a genuine callback
    displaces the one waiting longest and is accepted; the other seven stay open."""
    hooks, recorded = await make_receiver(max_open_connections=8)
    url = hooks.url_for("row-1", "render")
    recorded[("row-1", "render")] = "job-1"
    slow = [await _connect(hooks) for _ in range(8)]
    async with asyncio.TaskGroup() as dripping:
        for _, writer in slow:
            dripping.create_task(_drip(writer, url))
        await _until(lambda: hooks.connections.open_count == 8)
        assert await _post(url, _done("job-1")) == 200
        assert await _read_until_closed(slow[0][0]) == b""
        assert hooks.rejected == Counter(too_many_connections=1)
        assert hooks.connections.waiting_count == 7
        await _hang_up(*(writer for _, writer in slow))
    taken = hooks.take("job-1")
    assert taken is not None and taken.job_id == "job-1"


async def test_a_head_sent_byte_by_byte_is_cut_off_at_the_deadline(make_receiver: Any) -> None:
    """Head deadline 0.3 s: five connections dripping a head are closed after it (counted
    ``slow_request``), and so is one that sends nothing (not counted: nothing was refused)."""
    hooks, _ = await make_receiver(request_head_timeout_s=0.3)
    url = hooks.url_for("row-1", "render")
    loop = asyncio.get_running_loop()
    opened_at = loop.time()
    slow = [await _connect(hooks) for _ in range(5)]
    silent = await _connect(hooks)
    async with asyncio.TaskGroup() as dripping:
        for _, writer in slow:
            dripping.create_task(_drip(writer, url))
        for reader, _ in [*slow, silent]:
            assert await _read_until_closed(reader, within_s=10.0) == b""
        closed_after_s = loop.time() - opened_at
    assert 0.3 <= closed_after_s < 10.0
    assert hooks.rejected == Counter(slow_request=5)
    await _hang_up(*(writer for _, writer in [*slow, silent]))


async def test_a_body_with_the_secret_sent_too_slowly_is_408(make_receiver: Any) -> None:
    """Body deadline 0.3 s: ten bytes of a longer body, then nothing: 408, nothing held."""
    hooks, recorded = await make_receiver(request_body_timeout_s=0.3)
    url = hooks.url_for("row-1", "render")
    recorded[("row-1", "render")] = "job-1"
    body = json.dumps(_done("job-1")).encode()
    reader, writer = await _connect(hooks)
    writer.write(_head(url, len(body)) + body[:10])
    assert await reader.readline() == b"HTTP/1.1 408 Request Timeout\r\n"
    assert hooks.rejected == Counter(slow_request=1)
    assert hooks.take("job-1") is None
    await _hang_up(writer)


async def test_over_the_cap_with_none_waiting_a_newcomer_is_closed_at_once(
    make_receiver: Any,
) -> None:
    """Cap 3, all three busy sending a body: a fourth connection is closed without an answer;
    once one of them is answered and gone, a callback gets in again. The two left hang up
    mid-body: counted ``hung_up``."""
    hooks, recorded = await make_receiver(max_open_connections=3)
    bodies: list[bytes] = []
    busy: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for i in range(4):
        recorded[(f"row-{i}", "render")] = f"job-{i}"
        bodies.append(json.dumps(_done(f"job-{i}")).encode())
    for i in range(3):
        reader, writer = await _connect(hooks)
        writer.write(_head(hooks.url_for(f"row-{i}", "render"), len(bodies[i])) + bodies[i][:1])
        busy.append((reader, writer))
    await _until(lambda: (hooks.connections.open_count, hooks.connections.waiting_count) == (3, 0))
    refused, late = await _connect(hooks)
    assert await _read_until_closed(refused) == b""
    assert hooks.rejected == Counter(too_many_connections=1)
    first_reader, first_writer = busy[0]
    first_writer.write(bodies[0][1:])
    assert await first_reader.readline() == b"HTTP/1.1 200 OK\r\n"
    assert await _read_until_closed(first_reader) is not None  # one request per connection
    await _hang_up(first_writer, late)
    await _until(lambda: hooks.connections.open_count == 2)
    assert await _post(hooks.url_for("row-3", "render"), _done("job-3")) == 200
    assert hooks.take("job-0") is not None and hooks.take("job-3") is not None
    await _hang_up(*(writer for _, writer in busy[1:]))
    await _until(lambda: hooks.rejected["hung_up"] == 2)


def test_the_run_secret_is_created_once_private_and_long(tmp_path: Path) -> None:
    first = run_secret(tmp_path)
    assert run_secret(tmp_path) == first
    mode = stat.S_IMODE((tmp_path / "webhook.secret").stat().st_mode)
    assert mode == 0o600
    assert len(first) >= 32  # 256 random bits, URL-safe base64: 43 characters


async def test_a_lost_render_answer_takes_only_a_job_the_api_confirms(make_sim: Any) -> None:
    """The render request's answer was lost; a callback to the row's render hook names a job.
    A job the API does not know is not taken; one it knows is."""
    sim = make_sim()
    sink = ListSink()
    clock = RealClock()
    creds = Credentials(client_id=SecretStr("c"), client_secret=SecretStr("s"), user_id="u")
    async with (
        WebhookReceiver(secret=SECRET, recorded_job=lambda row, stage: None) as hooks,
        PictoryClient(
            ApiConfig(base_url=sim.base_url),
            creds,
            clock=clock,
            limiter=RateLimiter(clock, max_rps=100.0),
            retry_policy=RetryPolicy(max_attempts=2, base_delay_s=0.01),
        ) as client,
    ):
        svc: Any = SimpleNamespace(
            webhooks=hooks, sink=sink, client=client, poll=PollConfig(render_deadline_s=5.0)
        )
        row: Any = SimpleNamespace(row_id="row-1")
        url = hooks.url_for("row-1", "render")
        assert await _post(url, _done("0" * 8 + "-0000-4000-8000-" + "0" * 12)) == 200
        assert await _find_by_webhook(row, svc) is None
        assert "webhook_unconfirmed" in sink.kinds()

        template = await client.upload_template(GREETING.read_bytes())
        real_job = await client.create_preview(template.template_id, {"first_name": "Ann"})
        assert await _post(url, _done(real_job)) == 200
        assert await _find_by_webhook(row, svc) == real_job


def _echoing(job_id: str, webhook_input: Any, *, in_data: bool = False) -> dict[str, Any]:
    """A finished job's callback echoing ``webhook_input`` at the top level or in ``data``."""
    body = _done(job_id)
    if in_data:
        body["data"]["webhookInput"] = webhook_input
    else:
        body["webhookInput"] = webhook_input
    return body


@pytest.mark.parametrize("in_data", [False, True])
async def test_a_callback_is_matched_by_its_echoed_webhook_input(
    receiver: Any, in_data: bool
) -> None:
    """Posted to the bare ``/hooks/{secret}`` (no row or stage in the path), a callback whose
    echoed ``webhookInput`` (top level or in ``data``: where Pictory puts it is unpublished)
    names an awaited row and stage is taken for it; it also wins over the path."""
    hooks, recorded = receiver
    hooks.url_for("row-1", "render")
    url_2 = hooks.url_for("row-2", "render")
    recorded[("row-1", "render")] = "job-1"
    recorded[("row-2", "render")] = "job-2"
    bare = f"{hooks.base_url}/hooks/{SECRET}"
    echo = hooks.input_for("row-1", "render")
    assert echo == {"batch": "", "row": "row-1", "stage": "render"}
    # Row 1's input on row 2's URL: matched to row 1, whose recorded job is not job-2.
    assert await _post(url_2, _echoing("job-2", echo, in_data=in_data)) == 404
    assert hooks.rejected == Counter(other_job=1)
    assert await _post(bare, _echoing("job-1", echo, in_data=in_data)) == 200
    state = hooks.take("job-1")
    assert state is not None and state.video_url == "http://cdn.example/v.mp4"


async def test_webhook_input_never_passes_without_the_secret_or_for_another_batch() -> None:
    """A forged ``webhookInput`` naming an awaited hook is 404 without the secret (body never
    read) and, with it, when it names another batch; with no echo the bare path matches
    nothing. None of them can be taken."""
    recorded = {("row-1", "render"): "job-1"}
    async with WebhookReceiver(
        secret=SECRET,
        recorded_job=lambda row, stage: recorded.get((row, stage)),
        batch="november",
        clock=FrozenClock(),
    ) as hooks:
        hooks.url_for("row-1", "render")
        echo = hooks.input_for("row-1", "render")
        assert echo["batch"] == "november"
        forged = _echoing("job-1", echo)
        assert await _post(f"{hooks.base_url}/hooks/guess", forged) == 404
        assert await _post(f"{hooks.base_url}/hooks/guess/row-1/render", forged) == 404
        bare = f"{hooks.base_url}/hooks/{SECRET}"
        other = _echoing("job-1", {**echo, "batch": "october"})
        assert await _post(bare, other) == 404
        assert await _post(bare, _done("job-1")) == 404  # no echo: no row, no stage
        assert hooks.take("job-1") is None
        assert hooks.rejected == Counter(secret=2, other_batch=1, not_awaited=1)
        assert await _post(bare, forged) == 200
        assert hooks.take("job-1") is not None


@pytest.mark.parametrize(("placement", "taken"), [("top", True), ("data", True), ("none", False)])
async def test_the_simulator_echoes_webhook_input_and_the_receiver_matches_it(
    make_sim: Any, placement: str, taken: bool
) -> None:
    """An API-key client sends ``webhookInput`` with the v2 preview's webhook (§6.3); the
    simulator echoes it where ``webhook_input_placement`` says, and a callback posted to the
    bare hook (no row in its path) is matched by it alone. Without an echo it is not."""
    sim = make_sim(webhook_input_placement=placement)
    clock = RealClock()
    recorded: dict[tuple[str, str], str] = {}
    async with (
        WebhookReceiver(
            secret=SECRET,
            recorded_job=lambda row, stage: recorded.get((row, stage)),
            batch="b-1",
        ) as hooks,
        PictoryClient(
            ApiConfig(base_url=sim.base_url),
            Credentials(api_key=SecretStr("pictai_webhook_input")),
            clock=clock,
            limiter=RateLimiter(clock, max_rps=100.0),
            retry_policy=RetryPolicy(max_attempts=2, base_delay_s=0.01),
        ) as client,
    ):
        hooks.url_for("row-1", "preview")  # awaited, as the stage does
        template = await client.upload_template(GREETING.read_bytes())
        job_id = await client.create_preview(
            template.template_id,
            {"first_name": "Ann"},
            webhook=f"{hooks.base_url}/hooks/{SECRET}",
            webhook_input=hooks.input_for("row-1", "preview"),
        )
        recorded[("row-1", "preview")] = job_id
        for _ in range(200):
            if sim.stats()["webhooks"]["sent"] + sim.stats()["webhooks"]["failed"]:
                break
            await asyncio.sleep(0.01)
        assert (hooks.take(job_id) is not None) is taken
        assert hooks.rejected == (Counter() if taken else Counter(not_awaited=1))
