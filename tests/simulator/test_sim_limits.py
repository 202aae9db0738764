"""One test per limit: rate limit, render cap, token lifetime, retention, link lifetime."""

from __future__ import annotations

import aiohttp
from simkit import Api, MakeSim, ManualClock


async def test_rate_limit_answers_429_with_retry_after(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Past ``rate_limit_rps`` in one second: 429, whole-second Retry-After, RATE_LIMITED."""
    sim = await make_sim(clock=clock, rate_limit_rps=2)
    api = Api(session, sim)
    assert (await api.call("GET", "/v1/quota")).status == 200
    assert (await api.call("GET", "/v1/quota")).status == 200
    limited = await api.call("GET", "/v1/quota")
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.body["error"]["error_code"] == "RATE_LIMITED"
    other = Api(session, sim, headers={"Authorization": "pictai_someone_else"})
    assert (await other.call("GET", "/v1/quota")).status == 200, "the limit is per account"
    clock.advance(1.0)
    assert (await api.call("GET", "/v1/quota")).status == 200
    assert sim.stats()["rate_limited"] == 1


async def _two_capped_renders(api: Api, clock: ManualClock) -> tuple[str, str]:
    template_id = (await api.upload())["templateId"]
    previews = [await api.preview(template_id, {"company": str(i)}) for i in range(2)]
    clock.advance(5)
    first, second = [await api.render(p) for p in previews]
    return first, second


async def test_render_cap_queues_renders_as_in_progress_without_progress(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Beyond ``max_concurrent_renders`` a render says in-progress with no renderProgress (§5.4),
    then starts when a slot frees."""
    sim = await make_sim(clock=clock, max_concurrent_renders=1, render_s=1.0, jitter_frac=0.0)
    api = Api(session, sim)
    first, second = await _two_capped_renders(api, clock)

    async def data(job_id: str) -> dict[str, object]:
        body: dict[str, object] = (await api.job(job_id)).body["data"]
        return body

    clock.advance(0.5)
    assert (await data(first))["status"] == "in-progress"
    assert await data(second) == {"status": "in-progress"}, "queued: no renderProgress"
    clock.advance(1.0)
    assert (await data(first))["status"] == "completed"
    assert (await data(second))["status"] == "in-progress"
    assert (await data(second))["renderProgress"] == 50
    clock.advance(1.0)
    assert (await data(second))["status"] == "completed"


async def test_queued_status_pending_by_setting(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """With ``queued_status="pending"`` a queued render says pending (the documented value)."""
    sim = await make_sim(
        clock=clock,
        max_concurrent_renders=1,
        render_s=1.0,
        jitter_frac=0.0,
        queued_status="pending",
    )
    api = Api(session, sim)
    _, second = await _two_capped_renders(api, clock)
    clock.advance(0.5)
    assert (await api.job(second)).body["data"] == {"status": "pending"}


async def test_render_cap_counts_the_most_renders_waiting(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``renders_waiting_max`` in the stats: how many renders queued behind the cap at once."""
    sim = await make_sim(clock=clock, max_concurrent_renders=1, render_s=1.0, jitter_frac=0.0)
    api = Api(session, sim)
    await _two_capped_renders(api, clock)
    assert sim.stats()["renders_waiting_max"] == 1
    assert sim.stats()["renders_refused"] == 0


async def test_renders_over_cap_refused_by_setting(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``renders_over_cap`` refuses a render past the cap ([choice] 429 with Retry-After, or 409,
    ``RENDER_LIMIT_REACHED`` in the legacy envelope); no job starts, and once a render finishes
    the next one is taken."""
    for refuse, status in (("refuse-429", 429), ("refuse-409", 409)):
        sim = await make_sim(
            clock=clock,
            max_concurrent_renders=1,
            render_s=2.0,
            jitter_frac=0.0,
            renders_over_cap=refuse,
        )
        api = Api(session, sim)
        template_id = (await api.upload())["templateId"]
        previews = [await api.preview(template_id, {"company": str(i)}) for i in range(2)]
        clock.advance(5)
        await api.render(previews[0])
        refused = await api.call("PUT", f"/v1/video/render/{previews[1]}", json_body={})
        assert refused.status == status
        assert refused.body["success"] is False
        assert refused.body["error"]["error_code"] == "RENDER_LIMIT_REACHED"
        assert ("Retry-After" in refused.headers) == (status == 429)
        if status == 429:
            assert refused.headers["Retry-After"] == "2", "when the running render ends"
        stats = sim.stats()
        assert stats["renders_started"] == 1 and stats["renders_refused"] == 1
        clock.advance(2.0)
        await api.render(previews[1])


async def test_token_expires_after_its_lifetime(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A token past ``token_lifetime_s`` is refused with 401; a new one works."""
    sim = await make_sim(clock=clock, token_lifetime_s=60)
    api = Api(session, sim)
    await api.login_legacy()
    assert (await api.call("GET", "/v1/quota")).status == 200
    clock.advance(61)
    expired = await api.call("GET", "/v1/quota")
    assert expired.status == 401 and expired.body == {"message": "Unauthorized"}
    assert expired.headers["X-Simulator-Reason"].startswith("TOKEN_EXPIRED:")
    await api.login_legacy()
    assert (await api.call("GET", "/v1/quota")).status == 200


async def test_jobs_past_retention_answer_cleaned(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``job_retention_s`` after it ends a job answers ``cleaned`` (§5.4) and is purged; an id
    never issued is still 5000/JOB_NOT_FOUND, and so is the purged id for another account."""
    sim = await make_sim(clock=clock, job_retention_s=10)
    api = Api(session, sim)
    template_id = (await api.upload())["templateId"]
    preview_id = await api.preview(template_id)
    clock.advance(5)
    assert (await api.job(preview_id)).status == 200
    clock.advance(10)
    gone = await api.job(preview_id)
    assert gone.status == 200
    assert gone.body == {"job_id": preview_id, "success": True, "data": {"status": "cleaned"}}
    never = await api.job("00000000-0000-4000-8000-000000000000")
    assert never.status == 404
    assert never.body["error"] == {"error_code": "5000", "error_message": "JOB_NOT_FOUND"}
    other = Api(session, sim, headers={"Authorization": "pictai_someone_else"})
    assert (await other.job(preview_id)).status == 404
    await api.preview(template_id)
    assert sim.stats()["jobs"]["live"] == 1
    assert sim.simulator.jobs.tombstones == 1


async def test_video_links_expire_and_rereading_gives_fresh_ones(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A video URL past ``video_link_lifetime_s`` is 403; the job, read again, gives a new one."""
    sim = await make_sim(clock=clock, video_link_lifetime_s=30, rate_limit_rps=1)
    api = Api(session, sim)
    template_id = (await api.upload())["templateId"]
    clock.advance(1)
    preview_id = await api.preview(template_id)
    clock.advance(5)
    render_id = await api.render(preview_id)
    clock.advance(5)
    url = (await api.job(render_id)).body["data"]["videoURL"]
    for _ in range(3):  # downloads are not rate limited (they model a CDN)
        async with session.get(url) as resp:
            assert resp.status == 200
    tampered = url.replace("sig=", "sig=0")
    async with session.get(tampered) as resp:
        assert resp.status == 403
    clock.advance(31)
    async with session.get(url) as resp:
        assert resp.status == 403 and "expired" in await resp.text()
    fresh = (await api.job(render_id)).body["data"]["videoURL"]
    async with session.get(fresh) as resp:
        assert resp.status == 200


async def test_rate_limit_counts_requests_on_arrival_even_when_a_fault_answers(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Like a gateway: requests that then meet a server error still count against the limit."""
    sim = await make_sim(clock=clock, rate_limit_rps=2, fault_server_error_p=1.0)
    api = Api(session, sim)
    assert (await api.call("GET", "/v1/quota")).status >= 500
    assert (await api.call("GET", "/v1/quota")).status >= 500
    assert (await api.call("GET", "/v1/quota")).status == 429


async def test_rate_limit_per_minute_answers_429_until_the_minute_ends(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Past ``rate_limit_rpm`` in one clock minute: 429 with Retry-After to the minute's end,
    whatever the per-second limit allows; a refused request does not count; a new minute serves."""
    sim = await make_sim(clock=clock, rate_limit_rps=10, rate_limit_rpm=3)
    api = Api(session, sim)
    seconds_left = 60 - clock.now_s % 60
    for _ in range(3):
        assert (await api.call("GET", "/v1/quota")).status == 200
        clock.advance(1.0)
    limited = await api.call("GET", "/v1/quota")
    assert limited.status == 429
    assert limited.headers["Retry-After"] == str(int(seconds_left - 3))
    assert limited.body["error"]["error_code"] == "RATE_LIMITED"
    clock.advance(seconds_left - 3)
    assert (await api.call("GET", "/v1/quota")).status == 200
    assert sim.stats()["rate_limited"] == 1
