"""``DELETE /v1/jobs/{id}/clean`` (§5.4), share URLs as HTML pages (§5.5) and
``GET /v1/media/search`` (§5.8)."""

from __future__ import annotations

import sys

import aiohttp
from simkit import Api, MakeSim, ManualClock

from orchestrator.simulator import SimSettings
from orchestrator.simulator.core import Simulator


async def _finished_render(api: Api, clock: ManualClock) -> tuple[str, str, dict[str, str]]:
    preview_id = await api.preview((await api.upload())["templateId"])
    clock.advance(5)
    render_id = await api.render(preview_id)
    clock.advance(10)
    data = (await api.job(render_id)).body["data"]
    assert data["status"] == "completed"
    return preview_id, render_id, data


async def _status(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as resp:
        await resp.read()
        return resp.status, resp.content_type


async def test_share_urls_are_html_pages_and_video_url_is_the_mp4(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``videoURL`` serves video/mp4; ``shareVideoURL``, ``videoShareURL`` and a preview's
    ``preview`` serve text/html pages; a tampered share id is 404."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    preview_id, _, data = await _finished_render(api, clock)
    assert await _status(session, data["videoURL"]) == (200, "video/mp4")
    for key in ("shareVideoURL", "videoShareURL"):
        async with session.get(data[key]) as resp:
            assert (resp.status, resp.content_type) == (200, "text/html")
            page = await resp.text()
        assert page.startswith("<!DOCTYPE html>") and "<video" in page
    preview_page = (await api.job(preview_id)).body["data"]["preview"]
    assert await _status(session, preview_page) == (200, "text/html")
    assert (await _status(session, data["shareVideoURL"][:-1] + "x"))[0] == 404


async def test_clean_deletes_outputs_and_answers_cleaned(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Clean after completion: ``{"success": true}``, idempotent; the job then answers
    ``cleaned`` and its video, share and preview links stop serving."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    preview_id, render_id, data = await _finished_render(api, clock)
    preview_page = (await api.job(preview_id)).body["data"]["preview"]
    for job_id in (render_id, render_id, preview_id):
        cleaned = await api.call("DELETE", f"/v1/jobs/{job_id}/clean")
        assert (cleaned.status, cleaned.body) == (200, {"success": True})
    after = await api.job(render_id)
    assert after.body == {"job_id": render_id, "success": True, "data": {"status": "cleaned"}}
    for url in (data["videoURL"], data["shareVideoURL"], data["videoShareURL"], preview_page):
        assert (await _status(session, url))[0] == 404, url


async def test_clean_refuses_running_jobs_and_unknown_ids(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A running job cannot be cleaned (409, still readable); an id never issued is
    5000/JOB_NOT_FOUND, and so is another account's job."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    preview_id = await api.preview((await api.upload())["templateId"])
    running = await api.call("DELETE", f"/v1/jobs/{preview_id}/clean")
    assert running.status == 409 and running.body["error"]["error_code"] == "JOB_NOT_FINISHED"
    assert (await api.job(preview_id)).body["data"] == {"status": "in-progress"}
    unknown = await api.call("DELETE", "/v1/jobs/00000000-0000-4000-8000-000000000000/clean")
    assert unknown.status == 404 and unknown.body["error"]["error_message"] == "JOB_NOT_FOUND"
    clock.advance(5)
    other = Api(session, sim, headers={"Authorization": "pictai_someone_else"})
    assert (await other.call("DELETE", f"/v1/jobs/{preview_id}/clean")).status == 404


def test_purged_jobs_leave_compact_tombstones(clock: ManualClock) -> None:
    """Jobs past retention are dropped; each leaves one int-sized tombstone (well under 150
    bytes with its set slot) that still tells its account ``cleaned`` from never issued."""
    sim = Simulator(SimSettings.for_profile("test", job_retention_s=1.0), clock=clock)
    ids = [
        sim.create_storyboard("key:a", {"scenes": [{"text": str(i)}]}, None).job_id
        for i in range(5_000)
    ]
    clock.advance(10)
    sim.jobs.purge(clock())
    assert len(sim.jobs) == 0 and sim.jobs.tombstones == len(ids)
    assert sim.cleaned(ids[0], "key:a") and not sim.cleaned(ids[0], "key:b")
    tombstones = sim.jobs._tombstones  # measuring the representation
    per_id = (sys.getsizeof(tombstones) + sum(sys.getsizeof(t) for t in tombstones)) / len(ids)
    assert per_id < 150, per_id


async def test_media_search_is_deterministic_per_keyword(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Same keyword, same results; videos from story_blocks and images from getty, each
    preview served; ``success: true``."""
    sim = await make_sim()
    api = Api(session, sim)
    first = await api.call("GET", "/v1/media/search?keyword=artificial%20intelligence")
    again = await api.call("GET", "/v1/media/search?keyword=artificial+intelligence")
    other = await api.call("GET", "/v1/media/search?keyword=business&category=Business")
    assert first.status == 200 and first.body["success"] is True
    assert first.body == again.body
    results = first.body["data"]["searchResults"]
    assert first.body["data"]["page"] == 1
    assert results != other.body["data"]["searchResults"]
    kinds = {(r["mediaType"], r["searchLibrary"]) for r in results}
    assert kinds == {("video", "story_blocks"), ("image", "getty")}
    for item in results:
        keys = {"assetId", "id", "keyword", "mediaType", "mediaDescription", "preview"}
        assert keys <= set(item) and item["assetId"] == item["id"]
        assert {"jpg", "url"} <= set(item["preview"]) and {"jpg", "url"} <= set(item["thumbnail"])
    video = next(r for r in results if r["mediaType"] == "video")
    assert video["duration"] == 15 and video["preview"]["url"].endswith("_P480.mp4")
    assert await _status(session, video["preview"]["url"]) == (200, "video/mp4")
    assert await _status(session, video["thumbnail"]["jpg"]) == (200, "image/png")


async def test_media_search_needs_a_keyword(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """No keyword (or a blank one, or a bad page): 400 INVALID_REQUEST_BODY."""
    api = Api(session, await make_sim())
    for query in ("", "?keyword=", "?keyword=%20", "?keyword=x&page=0"):
        answer = await api.call("GET", "/v1/media/search" + query)
        assert answer.status == 400, query
        assert answer.body["error"]["error_code"] == "INVALID_REQUEST_BODY"
