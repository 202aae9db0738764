"""The v2 video routes of API-key accounts (contract §5.6, §5.9); strict_credential_routes."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
from simkit import VARIABLES, Api, MakeSim, ManualClock

BULLETIN = {
    "videoName": "AP news",
    "language": "en",
    "scenes": [
        {
            "story": "Thunderbolts top the charts. Sinners follow close behind.",
            "background": {"visualUrl": "https://cdn.example/still.png", "type": "image"},
            "subtitleStyle": {"animations": [{"name": "bulletin", "type": "entry"}]},
        }
    ],
}
"""A storyboard in the shape of sample N ``text_to_video_v2/bulletin_style``, in our own words."""

V1_VIDEO_ROUTES = (
    "POST /v1/video/from-template",
    "POST /v1/video/storyboard",
    "PUT /v1/video/render/{id}",
    "POST /v1/video/render",
)


async def _job_id(api: Api, method: str, path: str, body: Any = None) -> str:
    answer = await api.call(method, path, json_body=body)
    assert answer.status == 200, answer.body
    assert answer.body == {"success": True, "data": {"jobId": answer.body["data"]["jobId"]}}
    job_id: str = answer.body["data"]["jobId"]
    return job_id


async def _video(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as resp:
        assert resp.status == 200
        return await resp.read()


async def test_template_preview_and_render_on_v2_answer_data_jobid(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Key: POST /v2/video/storyboard {videoName, templateId, variables} → poll → PUT
    /v2/video/render/{preview} with no body → the MP4, counted like a v1 render."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    template_id = (await api.upload())["templateId"]
    body = {"videoName": "row-1", "templateId": template_id, "variables": VARIABLES}
    preview_id = await _job_id(api, "POST", "/v2/video/storyboard", body)
    not_ready = await api.call("PUT", f"/v2/video/render/{preview_id}")
    assert not_ready.status == 409
    clock.advance(5)
    done = (await api.job(preview_id)).body["data"]
    assert "renderParams" in done
    render_id = await _job_id(api, "PUT", f"/v2/video/render/{preview_id}")
    clock.advance(5)
    finished = (await api.job(render_id)).body["data"]
    assert finished["status"] == "completed"
    video = await _video(session, finished["videoURL"])
    assert video[4:8] == b"ftyp"
    stats = sim.stats()
    assert stats["videos"][render_id]["sha256"] == hashlib.sha256(video).hexdigest()
    assert stats["renders_per_preview"] == {preview_id: 1}
    assert stats["duplicate_renders"] == 0
    assert stats["requests"]["POST /v2/video/storyboard"] == 1
    assert stats["requests"]["PUT /v2/video/render/{id}"] == 2
    assert not set(V1_VIDEO_ROUTES) & set(stats["requests"])


async def test_v2_render_of_the_same_template_and_variables_is_a_duplicate(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """The v2 routes share the duplicate-render accounting with v1: one (template, variables)
    rendered through from-template, then through v2 preview, then directly, counts two
    duplicates; the render cap queues them like v1 renders."""
    sim = await make_sim(clock=clock, max_concurrent_renders=1)
    api = Api(session, sim)
    template_id = (await api.upload())["templateId"]
    v1_preview = await api.preview(template_id)
    body = {"videoName": "row-1", "templateId": template_id, "variables": VARIABLES}
    v2_preview = await _job_id(api, "POST", "/v2/video/storyboard", body)
    clock.advance(5)
    await api.render(v1_preview)
    await _job_id(api, "PUT", f"/v2/video/render/{v2_preview}", {"webhook": None})
    direct = await _job_id(api, "POST", "/v2/video/storyboard/render", body)
    queued = (await api.job(direct)).body["data"]
    assert queued["status"] != "completed" and queued.get("renderState") != "RUNNING"
    stats = sim.stats()
    assert stats["renders_started"] == 3
    assert stats["duplicate_renders"] == 2
    assert stats["renders_per_preview"] == {v1_preview: 1, v2_preview: 1}


async def test_storyboard_scenes_preview_then_render_with_a_token_too(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A v2 storyboard from ``scenes`` (``story``, ``background``) makes a preview whose
    renderParams carry the story; tokens are served on v2 as documented."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    await api.login_legacy()
    preview_id = await _job_id(api, "POST", "/v2/video/storyboard", BULLETIN)
    clock.advance(5)
    params = (await api.job(preview_id)).body["data"]["renderParams"]
    assert "Thunderbolts" in str(params["scenes"])
    render_id = await _job_id(api, "PUT", f"/v2/video/render/{preview_id}", {})
    clock.advance(5)
    finished = (await api.job(render_id)).body["data"]
    async with session.get(finished["txtFile"]) as resp:
        assert "Thunderbolts" in await resp.text()


async def test_direct_storyboard_render_is_a_billed_render_job(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """POST /v2/video/storyboard/render (the bulletin sample's request) → a render job that
    completes with an MP4, spends quota and is counted, with no preview job."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    render_id = await _job_id(api, "POST", "/v2/video/storyboard/render", BULLETIN)
    clock.advance(5)
    finished = (await api.job(render_id)).body["data"]
    assert finished["status"] == "completed"
    video = await _video(session, finished["videoURL"])
    stats = sim.stats()
    assert stats["videos"][render_id]["bytes"] == len(video)
    assert stats["renders_started"] == 1 and stats["renders_per_preview"] == {}
    assert stats["jobs"]["preview"] == 0
    used = (await api.call("GET", "/v1/quota")).body["videoMinutes"]["used"]
    assert used > 0


async def test_v2_bad_body_answers_code_message_fields(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """A 400 on the v2 routes is {code, message, fields[{name, errors}]}; unknown fields are
    dropped, not refused."""
    sim = await make_sim()
    api = Api(session, sim)
    no_name = await api.call("POST", "/v2/video/storyboard/render", json_body={"scenes": []})
    assert no_name.status == 400
    assert no_name.body["code"] == "INVALID_REQUEST_BODY"
    assert no_name.body["fields"][0]["name"] == "videoName"
    assert isinstance(no_name.body["message"], str) and no_name.body["fields"][0]["errors"]
    two_sources = {"videoName": "x", "scenes": [{"story": "Hi.", "blogUrl": "https://b.example"}]}
    refused = await api.call("POST", "/v2/video/storyboard", json_body=two_sources)
    assert refused.status == 400 and refused.body["fields"][0]["name"] == "scenes[0]"
    template_id = (await api.upload())["templateId"]
    wrong_var = {"videoName": "x", "templateId": template_id, "variables": {"nmae": "Ann"}}
    refused = await api.call("POST", "/v2/video/storyboard", json_body=wrong_var)
    assert refused.status == 400 and refused.body["fields"][0]["name"] == "variables"
    extra = {**BULLETIN, "notAField": {"x": 1}}
    assert (await api.call("POST", "/v2/video/storyboard", json_body=extra)).status == 200
    missing = await api.call(
        "POST", "/v2/video/storyboard", json_body={"videoName": "x", "templateId": "nope"}
    )
    assert missing.status == 404


async def test_v2_render_params_route_renders_a_body(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """POST /v2/video/render takes a renderParams body, as POST /v1/video/render does."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    template_id = (await api.upload())["templateId"]
    preview_id = await api.preview(template_id)
    clock.advance(5)
    params = (await api.job(preview_id)).body["data"]["renderParams"]
    render_id = await _job_id(api, "POST", "/v2/video/render", params)
    clock.advance(5)
    assert (await api.job(render_id)).body["data"]["status"] == "completed"
    refused = await api.call("POST", "/v2/video/render", json_body={"output": {}})
    assert refused.status == 400 and refused.body["code"] == "INVALID_REQUEST_BODY"


async def test_strict_credential_routes_refuse_a_key_on_v1_video_routes_only(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """strict_credential_routes: a key gets 401 on each v1 video-creation route and is served
    on templates, jobs and v2; a token is served on v1; by default a key is served on v1."""
    strict = await make_sim(strict_credential_routes=True)
    keyed = Api(session, strict)
    template_id = (await keyed.upload())["templateId"]
    body = {"templateId": template_id, "variables": VARIABLES, "scenes": [{"text": "Hi"}]}
    for route in V1_VIDEO_ROUTES:
        method, path = route.split(" ")
        refused = await keyed.call(method, path.replace("{id}", "x"), json_body=body)
        assert refused.status == 401, route
        assert refused.body == {"message": "Unauthorized"}  # Pictory's 401 (§6.1)
        assert "/v2/video/storyboard" in refused.headers["X-Simulator-Reason"]
    v2 = {"videoName": "x", "templateId": template_id, "variables": VARIABLES}
    assert (await keyed.call("POST", "/v2/video/storyboard", json_body=v2)).status == 200
    legacy = Api(session, strict)
    await legacy.login_legacy()
    legacy_template = (await legacy.upload())["templateId"]
    await legacy.preview(legacy_template)
    lenient = Api(session, await make_sim())
    await lenient.preview((await lenient.upload())["templateId"])
