"""The look-up and list routes (contract §6.2, §6.4; ``simulator/routes_lookup``)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from simkit import API_KEY, OTHER_API_KEY, Api, MakeSim, ManualClock

STORY = {"videoName": "saved", "scenes": [{"story": "One short scene."}]}


async def _finished(api: Api, clock: ManualClock, job_id: str) -> dict[str, Any]:
    clock.advance(60)
    answer = await api.job(job_id)
    assert answer.status == 200, answer.body
    data: dict[str, Any] = answer.body["data"]
    return data


async def test_list_jobs_is_this_accounts_jobs_newest_first_a_page_at_a_time(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``GET /v1/jobs``: ``items`` of job answers (with ``data.jobId``), newest first, only the
    caller's, paged by ``nextPageKey``; a made-up key is a 400."""
    sim = await make_sim(clock=clock)
    api, other = Api(session, sim), Api(session, sim, {"Authorization": OTHER_API_KEY})
    created = []
    for i in range(52):
        answer = await api.call(
            "POST", "/v2/video/storyboard", json_body={**STORY, "videoName": f"v{i}"}
        )
        created.append(answer.body["data"]["jobId"])
        clock.advance(0.001)
    await other.call("POST", "/v2/video/storyboard", json_body=STORY)
    first = await api.call("GET", "/v1/jobs")
    assert first.status == 200
    items = first.body["items"]
    assert [item["data"]["jobId"] for item in items] == created[::-1][:50]
    assert items[0]["job_id"] == created[-1] and items[0]["success"] is True
    assert first.body["nextPageKey"]
    second = await api.call("GET", f"/v1/jobs?nextPageKey={first.body['nextPageKey']}")
    assert [item["data"]["jobId"] for item in second.body["items"]] == created[1::-1]
    assert second.body["nextPageKey"] is None
    assert (await api.call("GET", "/v1/jobs?nextPageKey=bm9wZQ==")).status == 400
    assert len((await other.call("GET", "/v1/jobs")).body["items"]) == 1


async def test_saved_projects_are_listed_and_render(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A v2 preview or direct render with ``saveProject: true`` is a project of
    ``GET /v2/projects``; ``POST /v2/projects/{id}/render`` renders it; others are not listed."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    saved = {**STORY, "videoName": "Saved preview", "saveProject": True}
    preview = (await api.call("POST", "/v2/video/storyboard", json_body=saved)).body["data"]
    await api.call("POST", "/v2/video/storyboard", json_body=STORY)  # not saved
    direct = {**STORY, "videoName": "Saved render", "saveProject": True}
    render = (await api.call("POST", "/v2/video/storyboard/render", json_body=direct)).body
    not_ready = await api.call("POST", f"/v2/projects/{preview['jobId']}/render")
    assert not_ready.status == 409
    await _finished(api, clock, render["data"]["jobId"])
    listed = await api.call("GET", "/v2/projects")
    assert listed.status == 200 and listed.body["pageKey"] is None
    items = listed.body["items"]
    assert [p["name"] for p in items] == ["Saved render", "Saved preview"]
    assert items[0]["projectPreview"] and items[1]["projectPreview"] is None
    assert {p["type"] for p in items} == {"project"} and items[1]["id"] == preview["jobId"]
    for project in items:
        again = await api.call("POST", f"/v2/projects/{project['id']}/render", json_body={})
        assert again.status == 200, again.body
        assert (await _finished(api, clock, again.body["data"]["jobId"]))["videoURL"]
    unknown = await api.call("POST", "/v2/projects/no-such-project/render")
    assert unknown.status == 404 and unknown.body["error"]["error_code"] == "PROJECT_NOT_FOUND"
    other = Api(session, sim, {"Authorization": OTHER_API_KEY})
    assert (await other.call("GET", "/v2/projects")).body["items"] == []


async def test_music_search_filters_sorts_pages_and_refuses_bad_values(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Filters keep tracks with any value and combine with AND, ``not*`` excludes, durations
    bound, ``latest`` sorts by id, pages follow ``pageSize``; out-of-range values are 400s."""
    api = Api(session, await make_sim())

    async def search(**body: Any) -> list[dict[str, Any]]:
        answer = await api.call("POST", "/v1/music/search", json_body=body)
        assert answer.status == 200, answer.body
        items: list[dict[str, Any]] = answer.body["items"]
        return items

    everything = await search(pageSize=100)
    assert len(everything) == 60 and len(await search()) == 20
    assert await search(page=2, pageSize=20) == everything[20:40]
    calm = await search(mood=["Calm / Serene"], pageSize=100)
    assert calm and all("Calm / Serene" in t["moods"] for t in calm)
    not_calm = await search(notMood=["Calm / Serene"], pageSize=100)
    assert len(calm) + len(not_calm) == 60
    both = await search(mood=["Calm / Serene"], purpose=["Technology"], pageSize=100)
    assert all("Technology" in t["purposes"] for t in both) and len(both) < len(calm)
    short = await search(maxDuration=120, minDuration=90, pageSize=100)
    assert short and all(90 <= t["duration"] <= 120 for t in short)
    latest = await search(sort="latest", pageSize=100)
    assert [t["id"] for t in latest] == sorted((t["id"] for t in everything), reverse=True)
    for bad in ({"pageSize": 10}, {"pageSize": 101}, {"page": 0}, {"sort": "loudest"}):
        refused = await api.call("POST", "/v1/music/search", json_body=bad)
        assert refused.status == 400 and refused.body["error"]["error_code"] == (
            "INVALID_REQUEST_BODY"
        )
    genres = (await api.call("GET", "/v1/music/genres/groups")).body
    instruments = (await api.call("GET", "/v1/music/instruments")).body
    assert isinstance(genres, list) and isinstance(instruments, list)
    grouped = await search(genreGroup=[genres[0]], instrument=[instruments[0]], pageSize=100)
    assert grouped and all(instruments[0] in t["instruments"] for t in grouped)


async def test_catalogue_routes_answer_the_documented_shapes(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Avatars, brands, smart layouts and text styles answer Pictory's documented shapes."""
    api = Api(session, await make_sim())
    avatars = (await api.call("GET", "/v1/avatars")).body
    assert avatars["nextPageKey"] is None
    look = avatars["items"][0]["looks"][0]
    assert set(look) == {"id", "name", "previewImage", "previewVideo"}
    async with session.get(look["previewImage"]) as image:
        assert image.status == 200
    for path in ("/v1/brands/video", "/v1/styles"):
        listed = (await api.call("GET", path)).body
        assert listed and all(set(item) == {"id", "name"} for item in listed)
    layouts = (await api.call("GET", "/v1/smartlayouts")).body["items"]
    assert layouts and set(layouts[0]) == {"templateId", "templateName", "schemaVersion"}
    voices = (await api.call("GET", "/v1/voiceovers/tracks")).body
    fields = {"id", "name", "voice", "gender", "accent", "language", "engine", "service", "sample"}
    assert all(fields <= set(v) for v in voices)


async def test_ai_credits_usage_by_month(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """This month holds one credit; a future month none; a year without a month is a 400."""
    api = Api(session, await make_sim(clock=clock))
    now = await api.call("GET", "/v1/aicredits/usage")
    assert now.status == 200 and [t["type"] for t in now.body] == ["credit"]
    assert set(now.body[0]) == {
        "transactionId",
        "type",
        "amount",
        "source",
        "description",
        "plan",
        "transactionDate",
    }
    assert (await api.call("GET", "/v1/aicredits/usage?month=12&year=2999")).body == []
    refused = await api.call("GET", "/v1/aicredits/usage?year=2026")
    assert refused.status == 400 and refused.body["error"]["error_code"] == "INVALID_REQUEST"
    assert (await api.call("GET", "/v1/aicredits/usage?month=13")).status == 400


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs",
        "/v2/projects",
        "/v1/voiceovers/tracks",
        "/v1/music/moods",
        "/v1/music/genres",
        "/v1/music/genres/groups",
        "/v1/music/instruments",
        "/v1/music/purposes",
        "/v1/avatars",
        "/v1/brands/video",
        "/v1/smartlayouts",
        "/v1/styles",
        "/v1/aicredits/usage",
    ],
)
async def test_lookups_take_both_credentials_and_count_against_the_rate_limit(
    path: str, make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Every look-up answers a key and a token (with or without a user id), 401 without
    credentials, and is refused 429 once the account's requests this second are spent."""
    sim = await make_sim(clock=clock, profile="demo")
    keyed = Api(session, sim, {"Authorization": API_KEY})
    assert (await keyed.call("GET", path)).status == 200
    tokened = Api(session, sim)
    await tokened.login_legacy()
    assert (await tokened.call("GET", path)).status == 200
    assert (await Api(session, sim, {}).call("GET", path)).status == 401
    statuses = [(await keyed.call("GET", path)).status for _ in range(25)]
    assert statuses.count(429) >= 5 and sim.stats()["requests"][f"GET {path}"] >= 27
    clock.advance(1.0)
    assert (await keyed.call("GET", path)).status == 200


async def test_music_search_is_a_post_counted_like_the_rest(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``POST /v1/music/search`` with no body uses the defaults; a GET there is a 405."""
    sim = await make_sim()
    api = Api(session, sim)
    assert len((await api.call("POST", "/v1/music/search")).body["items"]) == 20
    assert (await api.call("GET", "/v1/music/search")).status == 405
    assert sim.stats()["requests"]["POST /v1/music/search"] == 1
