"""The pieces of cost estimation (docs/cost.md): a project's and a script's length, the AI
credits a payload asks for, the quota answer read in its documented shape and tolerated in
others, and the spend caps of ``Admission`` on virtual time."""

from __future__ import annotations

import anyio
import pytest
from memory_transport import API_KEY, MemoryTransport, memory_client, reply

from orchestrator.api.quota import Allowance, Quota, month_usage, parse_quota, read_quota
from orchestrator.clock import VirtualClock
from orchestrator.events import ListSink
from orchestrator.input.estimate import ai_credits_asked, project_length_s, speech_s
from orchestrator.run.admission import Admission
from orchestrator.run.cost import CostModel, Spend


def test_a_project_is_as_long_as_its_timed_lines() -> None:
    """Σ ``lines[].time`` per scene (Pictory's sample project), else ``sceneTime``, else the
    scene's text at 2.5 words a second (at least 2 s)."""
    project = {
        "scenes": [
            {"lines": [{"time": 4}, {"time": 6.5}]},
            {"sceneTime": 3, "lines": [{"text": "no time"}]},
            {"sentence": " ".join(["word"] * 10)},
            {"sentence": "Hi"},
        ]
    }
    assert project_length_s(project) == 4 + 6.5 + 3 + 4.0 + 2.0
    assert project_length_s({"scenes": []}) is None
    assert speech_s("<strong>one</strong> two three four five") == 2.0


PIXVERSE_5S = {"model": "pixverse5.5", "videoDuration": "5s"}
VEO_8S = {"model": "veo3.1", "videoDuration": "8s"}


def test_ai_credits_are_counted_where_the_payload_asks_for_them() -> None:
    """Pictory's published rates (``contract.ai_credits``): an AI image by model (an unknown one
    as the default seedream3.0, 2), an AI video its rate × seconds (an unknown model as the
    default pixverse5.5, its first duration 5 s), an avatar 15 per started 30 s of video; a
    voice-over, a stock scene and a per-scene avatar placement none."""
    body = {
        "voiceOver": {"enabled": True, "aiVoices": [{"speaker": "Jenny"}]},
        "scenes": [
            {"background": {"type": "image", "aiVisual": {"prompt": "p", "model": "flux"}}},
            {"background": {"type": "video", "aiVisual": PIXVERSE_5S}},
            {"background": {"type": "video", "aiVisual": {"model": "other"}}},
            {"story": "stock", "avatar": {"position": "bottom-left"}},
        ],
        "avatar": {"avatarId": "a"},
    }  # fmt: skip
    assert ai_credits_asked(body) == pytest.approx(2 + 1.6 * 5 + 1.6 * 5 + 15)
    assert ai_credits_asked(body, 61.0) == pytest.approx(2 + 1.6 * 5 + 1.6 * 5 + 15 * 3)
    assert ai_credits_asked({"scenes": [{"story": "text"}]}) == 0
    priced = {
        "scenes": [
            {"background": {"type": "image", "aiVisual": {"model": "nanobanana-pro"}}},
            {"elements": [{"type": "image", "aiVisual": {"model": "flux-schnell"}}]},
            {"background": {"type": "video", "aiVisual": {"model": "veo3.1_fast"}}},
            {"background": {"type": "video", "aiVisual": VEO_8S}},
        ]
    }  # fmt: skip
    assert ai_credits_asked(priced) == pytest.approx(14 + 0.6 + 10 * 4 + 20 * 8)


def test_the_quota_is_read_bare_or_enveloped() -> None:
    """The documented bare object, or its ``data``; a missing entry is None, not an error."""
    bare = {
        "videoMinutes": {"used": 98, "limit": 14400},
        "aiCredits": {"used": 690, "limit": 22000},
    }
    quota = parse_quota(bare)
    assert quota.video_minutes == Allowance(98, 14400)
    assert quota.credits_left == 21310
    assert (
        quota.line() == "quota: 14302 of 14400 video minutes left, 21310 of 22000 AI credits left"
    )
    assert parse_quota({"videoMinutes": {"used": "?"}}).video_minutes is None
    assert month_usage([
        {"type": "debit", "amount": 0.6}, {"type": "credit", "amount": 100}, {"type": "x"},
    ]) == (100, 0.6)  # fmt: skip


@pytest.mark.parametrize("status", [403, 404])
async def test_an_account_that_does_not_publish_its_quota_is_no_error(status: int) -> None:
    """404 or 403 → ``Quota(published=False)``; without ``aiCredits`` the month's AI-credit
    usage is read instead (enveloped or bare)."""
    refused = MemoryTransport()
    refused.on("GET", "/v1/quota", reply({"message": "Not Found"}, status))
    async with memory_client(refused, API_KEY) as client:
        assert await read_quota(client) == Quota(published=False)
    partial = MemoryTransport()
    enveloped = {"success": True, "data": {"videoMinutes": {"used": 1, "limit": 9}}}
    partial.on("GET", "/v1/quota", reply(enveloped))
    partial.on("GET", "/v1/aicredits/usage", reply([{"type": "credit", "amount": 100}]))
    async with memory_client(partial, API_KEY) as client:
        quota = await read_quota(client)
    assert quota.line() == (
        "quota: 8 of 9 video minutes left, AI credits this month: 100 granted, 0 spent"
    )


async def test_a_row_in_flight_counts_its_expected_spend_until_its_render_says() -> None:
    """Under ``max_minutes`` 1.0: one row at a time until a render tells its spend; then a row
    is admitted only while committed + held + its expected spend fit; a row that sent its
    render but never heard stays committed at its expected spend; the cap is reached when
    nothing is in flight."""
    sink = ListSink()
    admission = Admission(VirtualClock(), sink, max_minutes=1.0, cost=CostModel(0.5))
    assert await admission.reserve_render("a")
    admitted: list[bool] = []

    async def second() -> None:
        admitted.append(await admission.reserve_render("b"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert admitted == []  # waits: no render has said what a row costs
        assert admission.take_render("a")
        admission.render_settled("a", 24.0, 10.0)  # 0.4 min
    assert admitted == [True]  # 0.4 committed + 0.4 expected
    assert admission.committed == Spend(24.0, 10.0)
    assert admission.take_render("b")
    admission.row_left("b")  # sent, never told: 0.4 min committed
    assert admission.committed.minutes == pytest.approx(0.8)
    assert not await admission.reserve_render("c")
    assert admission.stop_reason is not None and "--max-minutes 1" in admission.stop_reason
