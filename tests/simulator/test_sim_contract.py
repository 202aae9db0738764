"""The documented shapes of every flow, over loopback, with plain aiohttp requests."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import pytest
from simkit import (
    VARIABLES,
    Api,
    MakeSim,
    ManualClock,
)

DONE_RENDER_KEYS = {
    "status",
    "renderProgress",
    "videoURL",
    "shareVideoURL",
    "videoShareURL",
    "thumbnail",
    "audioURL",
    "srtFile",
    "vttFile",
    "txtFile",
    "videoDuration",
    "progress",
    "aiCreditsUsed",
}


async def test_legacy_bulk_flow_has_documented_shapes(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """token → upload → from-template → preview (no status) → PUT render → poll → download."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    token_answer = await api.call(
        "POST", "/v1/oauth2/token", json_body={"client_id": "c", "client_secret": "s"}
    )
    assert token_answer.status == 200
    assert set(token_answer.body) == {"access_token", "expires_in", "token_type"}
    assert token_answer.body["expires_in"] == 3600
    assert token_answer.body["token_type"] == "Bearer"
    api.headers = {"Authorization": token_answer.body["access_token"], "X-Pictory-User-Id": "u"}

    template = await api.upload()
    assert template["variables"] == {
        "customer_name": "CUSTOMER_NAME",
        "company": "COMPANY",
        "first name": "FIRST NAME",
    }
    assert {"templateId", "name", "language", "audio", "scenes"} <= set(template)
    assert template["scenes"][0] == {
        "sceneId": 1,
        "subtitles": [{"text": "Hello {{ customer_name }}, welcome to {{company}}!"}],
        "backgroundVisual": {"visualUrl": "https://cdn.example/clip.mp4?x=1", "type": "video"},
    }
    assert template["scenes"][1]["backgroundVisual"]["type"] == "image"

    created = await api.call(
        "POST",
        "/v1/video/from-template",
        json_body={"templateId": template["templateId"], "variables": VARIABLES},
    )
    assert created.status == 200
    assert created.body == {"success": True, "data": {"jobId": created.body["data"]["jobId"]}}
    preview_id = created.body["data"]["jobId"]

    running = await api.job(preview_id)
    assert running.body == {
        "job_id": preview_id,
        "success": True,
        "data": {"status": "in-progress"},
    }
    not_ready = await api.call("PUT", f"/v1/video/render/{preview_id}", json_body={})
    assert not_ready.status == 409
    assert not_ready.body["error"]["error_code"] == "PREVIEW_NOT_READY"

    clock.advance(5)
    done = await api.job(preview_id)
    assert set(done.body["data"]) == {"preview", "renderParams"}, "legacy shape has no status"
    params = done.body["data"]["renderParams"]
    assert params["next_generation_video"] is True and params["containsTextToImage"] is True
    assert {"audio", "output", "scenes"} <= set(params)
    assert params["scenes"][0]["sub_scenes"][0]["text_lines"] == [
        {"text": "Hello Ada, welcome to Acme!"}
    ]

    rendered = await api.call("PUT", f"/v1/video/render/{preview_id}", json_body=params)
    assert rendered.status == 200
    render_id = rendered.body["data"]["job_id"]
    assert rendered.body == {"success": True, "data": {"job_id": render_id}}

    progress = (await api.job(render_id)).body["data"]
    assert progress["status"] == "in-progress"
    assert progress["renderState"] == "RUNNING"
    assert 0 <= progress["renderProgress"] <= 100
    assert isinstance(progress["renderProgressMessage"], str)

    clock.advance(5)
    finished = (await api.job(render_id)).body
    assert finished["success"] is True
    assert set(finished["data"]) == DONE_RENDER_KEYS
    assert finished["data"]["status"] == "completed"
    assert isinstance(finished["data"]["videoDuration"], float)
    assert finished["data"]["progress"] == 100
    assert finished["data"]["aiCreditsUsed"] == 0, "no AI visual or avatar: Pictory charges none"

    async with session.get(finished["data"]["videoURL"]) as resp:
        assert resp.status == 200
        video = await resp.read()
        assert resp.headers["Content-Type"] == "video/mp4"
        assert int(resp.headers["Content-Length"]) == len(video)
        etag = resp.headers["ETag"]
    assert video[4:8] == b"ftyp"
    expected = sim.stats()["videos"][render_id]
    assert expected == {"bytes": len(video), "sha256": hashlib.sha256(video).hexdigest()}

    url = finished["data"]["videoURL"]
    async with session.get(url, headers={"Range": "bytes=10-19"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 10-19/{len(video)}"
        assert await resp.read() == video[10:20]
    async with session.get(url, headers={"Range": "bytes=-5"}) as resp:
        assert resp.status == 206 and await resp.read() == video[-5:]
    async with session.get(url, headers={"Range": f"bytes={len(video) - 3}-"}) as resp:
        assert resp.status == 206 and await resp.read() == video[-3:]
    async with session.get(url, headers={"Range": f"bytes={len(video)}-"}) as resp:
        assert resp.status == 416
        assert resp.headers["Content-Range"] == f"bytes */{len(video)}"
    async with session.get(url, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304

    for key, marker in (("srtFile", "-->"), ("vttFile", "WEBVTT"), ("txtFile", "Hello Ada")):
        async with session.get(finished["data"][key]) as resp:
            assert resp.status == 200
            assert marker in await resp.text()
    assert finished["data"]["thumbnail"].split("?")[0].endswith(".jpg")
    async with session.get(finished["data"]["thumbnail"]) as resp:  # a JPEG (§6.2)
        assert resp.headers["Content-Type"] == "image/jpeg"
        assert (await resp.read()).startswith(b"\xff\xd8\xff")

    stats = sim.stats()
    assert stats["requests"]["POST /v1/video/from-template"] == 1
    assert stats["requests"]["GET /v1/jobs/{id}"] == 4
    assert stats["renders_started"] == 1
    assert stats["duplicate_renders"] == 0
    assert stats["renders_per_preview"] == {preview_id: 1}


async def test_bearer_token_and_api_key_are_both_accepted(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``Bearer <token>`` works like the bare token; an API key works bare without a user id."""
    sim = await make_sim()
    legacy = Api(session, sim)
    token = await legacy.login_legacy()
    legacy.headers["Authorization"] = f"Bearer {token}"
    assert (await legacy.call("GET", "/v1/templates")).status == 200
    keyed = Api(session, sim)
    assert (await keyed.call("GET", "/v1/templates")).body == {"items": []}
    bearer_key = await keyed.call(
        "GET", "/v1/templates", headers={"Authorization": "Bearer pictai_x"}
    )
    assert bearer_key.status == 401


async def test_new_shapes_add_status_and_use_jobid_everywhere(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """With ``new_shapes`` a finished preview says completed and render answers data.jobId."""
    sim = await make_sim(clock=clock, new_shapes=True)
    api = Api(session, sim)
    preview_id = await api.preview((await api.upload())["templateId"])
    clock.advance(5)
    done = (await api.job(preview_id)).body["data"]
    assert done["status"] == "completed" and "renderParams" in done
    answer = await api.call("PUT", f"/v1/video/render/{preview_id}", json_body={})
    assert set(answer.body["data"]) == {"jobId"}


async def test_templates_list_get_update_delete(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """The template endpoints answer bare objects, spelled as each page documents: the create
    answer ``deprecated``, the get and update answers the API's ``depricated``."""
    sim = await make_sim()
    api = Api(session, sim)
    created = await api.upload()
    assert created["deprecated"] is False and "depricated" not in created
    template_id = created["templateId"]
    listed = await api.call("GET", "/v1/templates")
    assert listed.body == {
        "items": [
            {
                "templateId": template_id,
                "name": "Welcome",
                "language": "en",
                "published": True,
                "deprecated": False,
            }
        ]
    }
    got = (await api.call("GET", f"/v1/templates/{template_id}")).body
    assert got["depricated"] is False and got["templateId"] == template_id
    new_scenes = [{"sceneId": 7, "subtitles": [{"text": "Hi {{ city }}"}]}]
    updated = await api.call(
        "PUT", f"/v1/templates/{template_id}", json_body={"scenes": new_scenes}
    )
    assert updated.status == 200
    assert updated.body["variables"] == {"customer_name": "CUSTOMER_NAME", "city": "CITY"}
    assert updated.body["scenes"][0]["sceneId"] == 7
    assert updated.body["depricated"] is False
    bad = await api.call("PUT", f"/v1/templates/{template_id}", json_body={"scenes": 3})
    assert bad.status == 400
    assert (await api.call("DELETE", f"/v1/templates/{template_id}")).status == 200
    gone = await api.call("GET", f"/v1/templates/{template_id}")
    assert gone.status == 404 and gone.body["error"]["error_code"] == "TEMPLATE_NOT_FOUND"


async def test_post_render_with_full_params(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``POST /v1/video/render`` with a renderParams body answers data.job_id and completes."""
    sim = await make_sim()
    api = Api(session, sim)
    scene = {"background": {"src": [{"url": "https://x/a.mp4", "type": "video"}]}, "time": 2}
    params: dict[str, Any] = {"audio": {}, "output": {"name": "x"}, "scenes": [scene]}
    answer = await api.call("POST", "/v1/video/render", json_body=params)
    assert answer.status == 200
    done = await api.wait(answer.body["data"]["job_id"])
    assert done.body["data"]["status"] == "completed"
    again = await api.call("POST", "/v1/video/render", json_body=params)
    await api.wait(again.body["data"]["job_id"])
    assert sim.stats()["duplicate_renders"] == 1
    missing = await api.call("POST", "/v1/video/render", json_body={"output": {}})
    assert missing.status == 400


async def test_generate_url_and_signed_put(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Both spellings sign a PUT URL; the PUT needs the same Content-Type and no auth."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    for path in ("/v1/media/generateUrl", "/v1/media/generateurl"):
        answer = await api.call(
            "POST", path, json_body={"fileName": "my clip.mp4", "contentType": "video/mp4"}
        )
        assert answer.status == 200
        assert set(answer.body["data"]) == {"signedUrl", "url", "key"}
    signed = answer.body["data"]["signedUrl"]
    body = b"x" * 300_000
    async with session.put(signed, data=body, headers={"Content-Type": "video/mp4"}) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"].strip('"') == hashlib.sha256(body).hexdigest()[:32]
    async with session.put(signed, data=b"y", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 403
    async with session.put(answer.body["data"]["url"], data=b"y") as resp:
        assert resp.status == 403
    assert sim.stats()["uploads"] == {"count": 1, "bytes": 300_000}
    clock.advance(86_401)
    async with session.put(signed, data=b"z", headers={"Content-Type": "video/mp4"}) as resp:
        assert resp.status == 403 and "expired" in await resp.text()


async def test_storyboard_answers_top_level_and_data_job_id(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Storyboard makes a preview job; renders of it are keyed on the storyboard body."""
    sim = await make_sim()
    api = Api(session, sim)
    story = {"videoName": "demo", "scenes": [{"text": "One.", "voiceOver": True}]}
    answer = await api.call("POST", "/v1/video/storyboard", json_body=story)
    assert answer.status == 200
    assert answer.body["jobId"] == answer.body["data"]["jobId"]
    done = await api.wait(answer.body["jobId"])
    scenes = done.body["data"]["renderParams"]["scenes"]
    assert [s["sub_scenes"][0]["text_lines"][0]["text"] for s in scenes] == ["One."]
    await api.wait(await api.render(answer.body["jobId"]))
    second = await api.call("POST", "/v1/video/storyboard", json_body=story)
    await api.wait(second.body["jobId"])
    await api.wait(await api.render(second.body["jobId"]))
    stats = sim.stats()
    assert stats["renders_started"] == 2 and stats["duplicate_renders"] == 1
    bad = await api.call("POST", "/v1/video/storyboard", json_body={"scenes": []})
    assert bad.status == 400 and bad.body["error"]["error_code"] == "INVALID_REQUEST_BODY"


async def test_quota_grows_with_each_render(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``videoMinutes.used`` grows by the render's videoDuration."""
    sim = await make_sim(quota_video_minutes=100)
    api = Api(session, sim)
    before = await api.call("GET", "/v1/quota")
    assert set(before.body) == {  # bare, the four entries of the "Get Current Quota" page
        "videoMinutes",
        "transcriptionMinutes",
        "elevenLabsVoiceOverMinutes",
        "aiCredits",
    }
    assert before.body["videoMinutes"] == {"used": 0, "limit": 100}
    assert before.body["aiCredits"]["used"] == 0
    preview_id = await api.preview((await api.upload())["templateId"])
    await api.wait(preview_id)
    done = await api.wait(await api.render(preview_id))
    after = (await api.call("GET", "/v1/quota")).body
    assert after["videoMinutes"]["used"] == round(done.body["data"]["videoDuration"] / 60, 3)
    assert after["aiCredits"]["used"] == done.body["data"]["aiCreditsUsed"]


async def test_accounting_counts_duplicate_renders_and_serves_stats(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Re-rendering a preview, or the same variables again, counts as a duplicate render."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    template_id = (await api.upload())["templateId"]
    first, same, other = [
        await api.preview(template_id, {"customer_name": name}) for name in ("Ada", "Ada", "Bob")
    ]
    clock.advance(5)
    for preview_id in (first, first, same, other):
        await api.render(preview_id)
    clock.advance(5)
    async with session.get(sim.stats_url) as resp:
        stats = await resp.json()
    assert stats["renders_started"] == 4
    assert stats["duplicate_renders"] == 2
    assert stats["renders_per_preview"] == {first: 2, same: 1, other: 1}
    assert len(stats["videos"]) == 4
    assert stats["requests"]["PUT /v1/video/render/{id}"] == 4
    assert stats["jobs"] == {"preview": 3, "render": 4, "transcription": 0, "live": 7}


@pytest.mark.parametrize("spelling", ["depricated", "deprecated"])
async def test_template_spelling_is_a_setting(
    make_sim: MakeSim, session: aiohttp.ClientSession, spelling: str
) -> None:
    """``template_spelling`` answers one spelling on every template answer."""
    sim = await make_sim(template_spelling=spelling)
    api = Api(session, sim)
    created = await api.upload()
    got = (await api.call("GET", f"/v1/templates/{created['templateId']}")).body
    assert created[spelling] is False and got[spelling] is False
