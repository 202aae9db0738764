"""AI credits as Pictory charges them (``contract.ai_credits``): only for the AI images, AI videos
and avatars a render asks for, in its finished job's ``aiCreditsUsed``, ``GET /v1/quota`` and
one debit each in ``GET /v1/aicredits/usage``."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from simkit import PROJECT, Api, MakeSim, ManualClock

EXACT = {"jitter_frac": 0.0, "video_duration_s": 45.0}
"""Storyboard renders of exactly 45 s: two 30 s blocks of an avatar."""
AI_STORY = {
    "videoName": "ai",
    "voiceOver": {"enabled": True, "aiVoices": [{"speaker": "Brian", "speed": 100}]},
    "avatar": {"avatarId": "Annie_expressive12_public"},
    "scenes": [
        {
            "story": "An AI image.",
            "background": {"type": "image", "aiVisual": {"model": "flux-schnell"}},
        },
        {
            "story": "An AI video.",
            "background": {
                "type": "video",
                "aiVisual": {"model": "veo3.1_fast", "videoDuration": "6s"},
            },
        },
        {"story": "Stock footage.", "background": {"searchFilter": {"query": "city at night"}}},
    ],
}
"""0.6 (flux-schnell) + 10 × 6 (veo3.1_fast) + 15 × 2 (an avatar, 45 s) = 90.6 credits."""


async def _rendered(api: Api, clock: ManualClock, path: str, body: dict[str, Any]) -> Any:
    created = await api.call("POST", path, json_body=body)
    assert created.status == 200, created.body
    job_id = created.body["data"]["jobId"]
    if path == "/v2/video/storyboard":
        clock.advance(60)
        rendered = await api.call("PUT", f"/v2/video/render/{job_id}", json_body={})
        job_id = rendered.body["data"]["jobId"]
    clock.advance(600)
    return (await api.job(job_id)).body["data"]


@pytest.mark.parametrize("path", ["/v2/video/storyboard", "/v2/video/storyboard/render"])
async def test_a_render_is_charged_for_its_ai_visuals_and_avatar_only(
    path: str, make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Per image and per video-second by model, an avatar per started 30 s; a stock scene and
    the AI voice cost nothing. The quota and the month's usage say the same."""
    api = Api(session, await make_sim(clock=clock, **EXACT))
    done = await _rendered(api, clock, path, AI_STORY)
    assert done["videoDuration"] == 45.0
    assert done["aiCreditsUsed"] == pytest.approx(90.6)
    quota = (await api.call("GET", "/v1/quota")).body["aiCredits"]
    assert quota["used"] == pytest.approx(90.6)

    usage = (await api.call("GET", "/v1/aicredits/usage")).body
    debits = [(t["source"], t["amount"]) for t in usage if t["type"] == "debit"]
    assert debits == [("AI Avatar", 30), ("Text-to-Video", 60), ("Text-to-Image", 0.6)]
    grant = usage[-1]
    assert (grant["type"], grant["source"], grant["amount"]) == ("credit", "Monthly Reset", 22000)
    assert len({t["transactionId"] for t in usage}) == len(usage)


async def test_a_render_without_ai_features_uses_no_credits(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A template render and a plain storyboard: ``aiCreditsUsed`` 0, nothing debited; with
    ``ai_credits_field`` ``when-used`` the field is left out."""
    api = Api(session, await make_sim(clock=clock))
    plain = {"videoName": "plain", "scenes": [{"story": "Stock only."}]}
    assert (await _rendered(api, clock, "/v2/video/storyboard", plain))["aiCreditsUsed"] == 0
    preview = await api.preview((await api.upload())["templateId"])
    clock.advance(60)
    render_id = await api.render(preview)
    clock.advance(600)
    assert (await api.job(render_id)).body["data"]["aiCreditsUsed"] == 0
    usage = (await api.call("GET", "/v1/aicredits/usage")).body
    assert [t["type"] for t in usage] == ["credit"]
    assert (await api.call("GET", "/v1/quota")).body["aiCredits"]["used"] == 0

    quiet = Api(session, await make_sim(clock=clock, ai_credits_field="when-used"))
    assert "aiCreditsUsed" not in await _rendered(quiet, clock, "/v2/video/storyboard", plain)
    charged = await _rendered(quiet, clock, "/v2/video/storyboard", AI_STORY)
    assert charged["aiCreditsUsed"] > 0


async def test_a_template_whose_scenes_ask_for_ai_visuals_is_charged_on_each_render(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A ``.pictai`` project with an ``aiVisual`` in a scene: each render of it is charged the
    visual (seedream3.0, the default image model: 2 credits), as the estimate counts it."""
    api = Api(session, await make_sim(clock=clock))
    scenes = [
        {**PROJECT["scenes"][0], "background": {"type": "image", "aiVisual": {"prompt": "a"}}},
        PROJECT["scenes"][1],
    ]
    template = await api.upload(json.dumps({**PROJECT, "scenes": scenes}).encode())
    for _ in range(2):
        preview = await api.preview(template["templateId"])
        clock.advance(60)
        render_id = await api.render(preview)
        clock.advance(600)
        assert (await api.job(render_id)).body["data"]["aiCreditsUsed"] == 2
    assert (await api.call("GET", "/v1/quota")).body["aiCredits"]["used"] == 4


async def test_the_old_flat_rate_is_a_setting(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``ai_credits_per_video_minute`` 44 charges every render by its length (the simulator's
    earlier behaviour, debited as ``Video Render``)."""
    api = Api(session, await make_sim(clock=clock, ai_credits_per_video_minute=44, **EXACT))
    plain = {"videoName": "plain", "scenes": [{"story": "Stock only."}]}
    done = await _rendered(api, clock, "/v2/video/storyboard", plain)
    assert done["aiCreditsUsed"] == round(45 / 60 * 44)
    usage = (await api.call("GET", "/v1/aicredits/usage")).body
    assert [(t["source"], t["amount"]) for t in usage[:-1]] == [("Video Render", 33)]
