"""The webhook receiver through real HTTP on loopback: a callback needs the run's secret, must be
for a hook this run handed out, and must name the job the ledger records for that row and stage;
anything else is refused (404, counted) and changes nothing a waiter can take."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.webhooks import WebhookReceiver, run_secret
from orchestrator.clock import RealClock
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
    """The clock is frozen, so after the burst no token comes back."""
    hooks, _ = receiver
    url = hooks.url_for("row-1", "render")
    statuses = [await _post(url, {}) for _ in range(410)]
    assert statuses.count(400) == 400 and statuses.count(429) == 10
    assert hooks.rejected["rate"] == 10


async def test_a_flood_without_the_secret_never_refuses_a_genuine_callback(
    receiver: Any,
) -> None:
    """Wrong-secret POSTs are refused before they cost the budget: after 1,000 of them (more
    than the burst, on a frozen clock) the genuine callback is still accepted."""
    hooks, recorded = receiver
    url = hooks.url_for("row-1", "render")
    recorded[("row-1", "render")] = "job-1"
    forged = url.replace(SECRET, "not-the-secret")
    statuses = [await _post(forged, _done("job-1")) for _ in range(1000)]
    assert set(statuses) == {404} and hooks.rejected["secret"] == 1000
    assert await _post(url, _done("job-1")) == 200
    assert hooks.rejected["rate"] == 0
    taken = hooks.take("job-1")
    assert taken is not None and taken.job_id == "job-1"


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
