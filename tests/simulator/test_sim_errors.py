"""Error answers (401/403/404/409/400), webhooks, and the real sample project."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from simkit import API_KEY, OTHER_API_KEY, SAMPLE_PROJECT, Api, MakeSim, ManualClock


def _error(body: Any) -> tuple[str, str]:
    assert body["success"] is False
    assert set(body) == {"success", "error"}
    return body["error"]["error_code"], body["error"]["error_message"]


def _refusal(answer: Any) -> str:
    """A 401 as Pictory answers it (§6.1 [S2]); the simulator's reason code from its header."""
    assert answer.status == 401
    assert answer.body == {"message": "Unauthorized"}
    reason: str = answer.headers["X-Simulator-Reason"]
    return reason.split(":", 1)[0]


async def test_auth_errors_answer_401(make_sim: MakeSim, session: aiohttp.ClientSession) -> None:
    """Missing and unknown credentials are 401s with Pictory's body ``{"message":
    "Unauthorized"}``, the reason in ``X-Simulator-Reason``; a token without a user id is served
    (the user id is optional, §6.1)."""
    sim = await make_sim()
    api = Api(session, sim, headers={})
    missing = await api.call("GET", "/v1/quota")
    assert _refusal(missing) == "UNAUTHORIZED"
    assert "Authorization" in missing.headers["X-Simulator-Reason"]
    unknown = await api.call("GET", "/v1/quota", headers={"Authorization": "nope"})
    assert _refusal(unknown) == "UNAUTHORIZED"
    token = await api.login_legacy()
    no_user = await api.call(
        "GET", "/v1/quota", headers={"Authorization": token, "X-Pictory-User-Id": ""}
    )
    assert no_user.status == 200, no_user.body
    no_creds = await api.call("POST", "/v1/oauth2/token", json_body={"client_id": "x"})
    assert no_creds.status == 400


async def test_token_call_and_requests_need_no_user_id(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Client id + secret alone get a token, and the token alone (no ``X-Pictory-User-Id``,
    bare or ``Bearer``) is served on v1 and v2 routes, as Pictory's Getting Started and its own
    v2 example do (§6.1)."""
    sim = await make_sim()
    api = Api(session, sim, headers={})
    got = await api.call(
        "POST", "/v1/oauth2/token", json_body={"client_id": "c", "client_secret": "s"}
    )
    assert got.status == 200
    token = got.body["access_token"]
    for auth in (token, f"Bearer {token}"):
        quota = await api.call("GET", "/v1/quota", headers={"Authorization": auth})
        assert quota.status == 200, quota.body
    api.headers = {"Authorization": token}
    template_id = (await api.upload())["templateId"]
    created = await api.call(
        "POST",
        "/v2/video/storyboard",
        json_body={"videoName": "v", "templateId": template_id, "variables": {}},
    )
    assert created.status == 200, created.body


async def test_require_user_id_refuses_a_token_without_one(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``require_user_id``: the token call still needs none, but a token-authenticated request
    without the header is a 401 (reason ``MISSING_USER_ID``); with it, served; a key never needs
    one."""
    sim = await make_sim(require_user_id=True)
    api = Api(session, sim, headers={})
    token = await api.login_legacy()
    no_user = await api.call(
        "GET", "/v1/quota", headers={"Authorization": token, "X-Pictory-User-Id": ""}
    )
    assert _refusal(no_user) == "MISSING_USER_ID"
    assert "--require-user-id" in no_user.headers["X-Simulator-Reason"]
    with_user = await api.call(
        "GET", "/v1/quota", headers={"Authorization": token, "X-Pictory-User-Id": "u"}
    )
    assert with_user.status == 200
    keyed = await api.call("GET", "/v1/quota", headers={"Authorization": API_KEY})
    assert keyed.status == 200


async def test_other_accounts_template_is_403(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """A template is visible only to the account that uploaded it."""
    sim = await make_sim()
    owner = Api(session, sim, headers={"Authorization": API_KEY})
    stranger = Api(session, sim, headers={"Authorization": OTHER_API_KEY})
    template_id = (await owner.upload())["templateId"]
    for method, path, body in (
        ("GET", f"/v1/templates/{template_id}", None),
        ("POST", "/v1/video/from-template", {"templateId": template_id}),
    ):
        answer = await stranger.call(method, path, json_body=body)
        assert answer.status == 403, (method, path)
    assert (await stranger.call("GET", "/v1/templates")).body == {"items": []}
    preview_id = await owner.preview(template_id)
    hidden = await stranger.job(preview_id)
    assert hidden.status == 404


async def test_not_found_conflict_and_bad_bodies(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Unknown job → 5000/JOB_NOT_FOUND; unknown template 404; bad bodies 400."""
    sim = await make_sim(preview_s=60.0)
    api = Api(session, sim)
    job = await api.job("00000000-0000-4000-8000-000000000000")
    assert job.status == 404 and _error(job.body) == ("5000", "JOB_NOT_FOUND")
    template = await api.call(
        "POST", "/v1/video/from-template", json_body={"templateId": "missing"}
    )
    assert template.status == 404 and _error(template.body)[0] == "TEMPLATE_NOT_FOUND"
    no_id = await api.call("POST", "/v1/video/from-template", json_body={"variables": {}})
    assert no_id.status == 400 and _error(no_id.body)[0] == "INVALID_REQUEST_BODY"
    not_json = await api.call("POST", "/v1/video/from-template", data=b"{nope")
    assert not_json.status == 400 and _error(not_json.body)[0] == "INVALID_JSON"
    not_project = await api.call("POST", "/v1/templates", data=b"[1, 2]")
    assert not_project.status == 400
    template_id = (await api.upload())["templateId"]
    unknown_var = await api.call(
        "POST",
        "/v1/video/from-template",
        json_body={"templateId": template_id, "variables": {"shoe_size": "9"}},
    )
    assert unknown_var.status == 400 and "shoe_size" in _error(unknown_var.body)[1]
    bad_scene = await api.call(
        "POST",
        "/v1/video/from-template",
        json_body={"templateId": template_id, "scenes": [{"insertAfterSceneId": 99, "text": "x"}]},
    )
    assert bad_scene.status == 400
    preview_id = await api.preview(template_id)
    early = await api.call("PUT", f"/v1/video/render/{preview_id}", json_body={})
    assert early.status == 409 and _error(early.body)[0] == "PREVIEW_NOT_READY"
    nowhere = await api.call("GET", "/v1/nowhere")
    assert nowhere.status == 404 and _error(nowhere.body)[0] == "NOT_FOUND"


async def test_webhooks_post_the_job_json_when_jobs_finish(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """A job created with ``webhook`` is POSTed, when done, exactly as GET /v1/jobs answers it."""
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        sim = await make_sim()
        api = Api(session, sim)
        template_id = (await api.upload())["templateId"]
        created = await api.call(
            "POST",
            "/v1/video/from-template",
            json_body={"templateId": template_id, "variables": {}, "webhook": hook_url},
        )
        preview_id = created.body["data"]["jobId"]
        preview_hook = await asyncio.wait_for(received.get(), timeout=5)
        polled = (await api.job(preview_id)).body
        assert preview_hook["job_id"] == preview_id
        assert preview_hook["data"]["renderParams"] == polled["data"]["renderParams"]
        assert "status" not in preview_hook["data"]
        render_id = await api.render(preview_id, {"webhook": hook_url})
        render_hook = await asyncio.wait_for(received.get(), timeout=5)
        polled = (await api.job(render_id)).body
        assert set(render_hook["data"]) == set(polled["data"])
        assert (
            urlsplit(render_hook["data"]["videoURL"]).path
            == urlsplit(polled["data"]["videoURL"]).path
        )
        async with session.get(render_hook["data"]["videoURL"]) as resp:
            assert resp.status == 200
        assert sim.stats()["webhooks"] == {"sent": 2, "failed": 0, "skipped": 0}
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("placement", ["top", "data", "none"])
async def test_webhook_input_is_echoed_in_the_webhook_post(
    make_sim: MakeSim, session: aiohttp.ClientSession, placement: str
) -> None:
    """A v2 storyboard request's ``webhookInput`` (any JSON object, §6.3) comes back in its
    webhook POST: beside ``job_id``/``data`` by default ([choice]), inside ``data``, or not at
    all, as ``webhook_input_placement`` says; the rest is the job's answer."""
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        sim = await make_sim(webhook_input_placement=placement)
        api = Api(session, sim)
        template_id = (await api.upload())["templateId"]
        echo = {"batch": "nov", "row": "cust-7", "nested": {"n": [1, 2]}}
        body = {"videoName": "v", "templateId": template_id, "variables": {}}
        created = await api.call(
            "POST",
            "/v2/video/storyboard",
            json_body={**body, "webhook": hook_url, "webhookInput": echo},
        )
        assert created.status == 200, created.body
        posted = await asyncio.wait_for(received.get(), timeout=5)
        assert posted["job_id"] == created.body["data"]["jobId"]
        expected = {"top": (echo, None), "data": (None, echo), "none": (None, None)}[placement]
        assert (posted.get("webhookInput"), posted["data"].get("webhookInput")) == expected
    finally:
        await runner.cleanup()


async def test_remote_webhooks_are_skipped(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Only loopback webhook URLs are called unless ``webhook_allow_remote`` is set."""
    sim = await make_sim()
    api = Api(session, sim)
    answer = await api.call(
        "POST",
        "/v2/transcription",
        json_body={"fileUrl": "https://x/a.mp3", "webhook": "https://example.com/hook"},
    )
    await api.wait(answer.body["data"]["jobId"])
    for _ in range(200):
        if sim.stats()["webhooks"]["skipped"]:
            break
        await asyncio.sleep(0.005)
    assert sim.stats()["webhooks"] == {"sent": 0, "failed": 0, "skipped": 1}


@pytest.mark.skipif(not SAMPLE_PROJECT.exists(), reason="shared sample project not present")
async def test_sample_project_uploads_and_parses(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """The real .pictai saved from Pictory uploads, and renders end to end."""
    raw = SAMPLE_PROJECT.read_bytes()
    project = json.loads(raw)
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    await api.login_legacy()
    template = await api.upload(raw)
    assert template["name"] == project["projectName"]
    assert template["language"] == project["scriptLanguage"]
    assert len(template["scenes"]) == len(project["scenes"])
    first = template["scenes"][0]
    assert first["subtitles"][0]["text"] == project["scenes"][0]["lines"][0]["text"]
    assert first["backgroundVisual"]["type"] == "video"
    assert template["variables"] == {}
    preview_id = await api.preview(template["templateId"], {})
    clock.advance(5)
    assert "renderParams" in (await api.job(preview_id)).body["data"]
    render_id = await api.render(preview_id)
    clock.advance(5)
    assert (await api.job(render_id)).body["data"]["status"] == "completed"


def test_a_client_hanging_up_is_not_logged_as_a_server_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A double Ctrl-C cuts requests mid-body; the simulator must not print a traceback for it,
    while its other errors are still logged."""
    from orchestrator.simulator.server import create_app

    create_app()
    log = logging.getLogger("aiohttp.server")
    with caplog.at_level(logging.ERROR, logger="aiohttp.server"):
        for exc in (ConnectionResetError("Connection lost"), ValueError("a real bug")):
            try:
                raise exc
            except Exception:
                log.exception("Error handling request from 127.0.0.1")
    assert [r.exc_info[1].__class__ for r in caplog.records if r.exc_info] == [ValueError]
