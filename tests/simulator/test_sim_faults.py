"""One test per fault kind (probability 1.0 makes each deterministic), and seeded repeatability."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from simkit import API_KEY, PROJECT_BYTES, VARIABLES, Api, MakeSim, ManualClock

from orchestrator.simulator import RunningSimulator
from orchestrator.simulator.auth import key_account


def _seed_template(sim: RunningSimulator) -> str:
    """Upload the sample project directly (the HTTP upload would meet the fault under test)."""
    return sim.simulator.templates.add(PROJECT_BYTES, key_account(API_KEY)).template_id


async def test_server_error_fault(make_sim: MakeSim, session: aiohttp.ClientSession) -> None:
    """``fault_server_error_p`` answers 500/502/503 with the error envelope."""
    sim = await make_sim(fault_server_error_p=1.0)
    answer = await Api(session, sim).call("GET", "/v1/quota")
    assert answer.status in (500, 502, 503)
    assert answer.body["error"]["error_code"] == "INTERNAL_SERVER_ERROR"
    assert sim.stats()["faults"] == {"server_error": 1}


async def test_rate_limit_fault(make_sim: MakeSim, session: aiohttp.ClientSession) -> None:
    """``fault_rate_limit_p`` answers 429 with ``Retry-After: fault_retry_after_s``."""
    sim = await make_sim(fault_rate_limit_p=1.0, fault_retry_after_s=3)
    answer = await Api(session, sim).call("GET", "/v1/quota")
    assert answer.status == 429 and answer.headers["Retry-After"] == "3"
    assert answer.body["error"]["error_code"] == "RATE_LIMITED"
    assert sim.stats()["rate_limited"] == 1


async def test_drop_fault_is_ambiguous_for_job_creation(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Dropped connections; for job creation about half happen after the job was created."""
    sim = await make_sim(fault_drop_p=1.0)
    api = Api(session, sim)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("GET", "/v1/quota")
    template_id = _seed_template(sim)
    for _ in range(20):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await api.call(
                "POST",
                "/v1/video/from-template",
                json_body={"templateId": template_id, "variables": VARIABLES},
            )
    stats = sim.stats()
    drops = stats["faults"]["drop_before"] + stats["faults"]["drop_after"]
    assert drops == stats["requests_total"] >= 21  # aiohttp may retry an idempotent GET once
    assert stats["faults"]["drop_after"] >= 3 and stats["faults"]["drop_before"] >= 4
    assert stats["jobs"]["preview"] == stats["faults"]["drop_after"]


async def test_slow_fault_delays_the_answer(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``fault_slow_p`` waits ``fault_slow_delay_s`` and then answers normally."""
    sim = await make_sim(fault_slow_p=1.0, fault_slow_delay_s=0.05)
    started = time.perf_counter()
    answer = await Api(session, sim).call("GET", "/v1/quota")
    assert answer.status == 200
    assert time.perf_counter() - started >= 0.05
    assert sim.stats()["faults"] == {"slow": 1}


async def test_job_failed_fault(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``fault_job_failed_p`` ends the job ``failed`` in the documented shape."""
    sim = await make_sim(clock=clock, fault_job_failed_p=1.0)
    api = Api(session, sim)
    preview_id = await api.preview(_seed_template(sim))
    assert (await api.job(preview_id)).body["data"] == {"status": "in-progress"}
    clock.advance(5)
    failed = await api.job(preview_id)
    assert failed.status == 200
    assert failed.body["success"] is False
    data = failed.body["data"]
    assert data["status"] == "failed" and data["error_code"] == "TEXT_TO_VIDEO_FAILED"
    assert "failed" in data["error_message"]
    render = await api.call("PUT", f"/v1/video/render/{preview_id}", json_body={})
    assert render.status == 409 and render.body["error"]["error_code"] == "PREVIEW_FAILED"


async def test_visual_not_found_fault_fails_a_storyboard_as_pictory_does(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``fault_visual_not_found_p`` fails a storyboard (its scenes search stock visuals) with
    ``TEXT_TO_VIDEO_FAILED`` and a message naming ``SCENE_BACKGROUND_VISUAL_NOT_FOUND``; a
    template preview (its visuals are the template's) is not touched."""
    sim = await make_sim(clock=clock, fault_visual_not_found_p=1.0)
    api = Api(session, sim)
    story = await api.call(
        "POST", "/v1/video/storyboard", json_body={"videoName": "v", "scenes": [{"text": "Hi"}]}
    )
    preview_id = await api.preview(_seed_template(sim))
    clock.advance(5)
    failed = await api.job(story.body["jobId"])
    assert failed.body["success"] is False
    data = failed.body["data"]
    assert data["error_code"] == "TEXT_TO_VIDEO_FAILED"
    assert data["error_message"].startswith("SCENE_BACKGROUND_VISUAL_NOT_FOUND: ")
    assert "renderParams" in (await api.job(preview_id)).body["data"]
    assert sim.stats()["faults"] == {"visual_not_found": 1}


async def test_job_stuck_fault_never_finishes(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``fault_job_stuck_p`` leaves the job in-progress forever (within retention)."""
    sim = await make_sim(clock=clock, fault_job_stuck_p=1.0)
    api = Api(session, sim)
    params: dict[str, Any] = {"scenes": [{"background": {"src": [{"url": "https://x/a.mp4"}]}}]}
    render_id = (await api.call("POST", "/v1/video/render", json_body=params)).body["data"][
        "job_id"
    ]
    clock.advance(3000)
    data = (await api.job(render_id)).body["data"]
    assert data["status"] == "in-progress" and data["renderProgress"] == 99
    assert sim.stats()["videos"] == {}


async def test_download_cut_fault(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """``fault_download_cut_p`` sends the full Content-Length, then closes early."""
    sim = await make_sim(clock=clock, fault_download_cut_p=1.0)
    api = Api(session, sim)
    params: dict[str, Any] = {"scenes": [{"background": {"src": [{"url": "https://x/a.mp4"}]}}]}
    render_id = (await api.call("POST", "/v1/video/render", json_body=params)).body["data"][
        "job_id"
    ]
    clock.advance(5)
    url = (await api.job(render_id)).body["data"]["videoURL"]
    expected = sim.stats()["videos"][render_id]["bytes"]
    async with session.get(url) as resp:
        assert int(resp.headers["Content-Length"]) == expected
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert sim.stats()["faults"] == {"download_cut": 1}


async def test_token_revoked_fault(make_sim: MakeSim, session: aiohttp.ClientSession) -> None:
    """``fault_token_revoked_p`` kills a valid token early: 401 now and afterwards."""
    sim = await make_sim(fault_token_revoked_p=1.0)
    api = Api(session, sim)
    await api.login_legacy()
    revoked = await api.call("GET", "/v1/quota")
    assert revoked.status == 401 and revoked.body == {"message": "Unauthorized"}
    assert revoked.headers["X-Simulator-Reason"].startswith("TOKEN_REVOKED:")
    again = await api.call("GET", "/v1/quota")
    assert again.status == 401 and again.headers["X-Simulator-Reason"].startswith("UNAUTHORIZED:")


async def test_key_refused_fault(make_sim: MakeSim, session: aiohttp.ClientSession) -> None:
    """``fault_key_refused_p`` answers a valid API key 401 in passing (Pictory's body, the
    reason ``KEY_REFUSED``), and the same key is answered again on other requests: it stays
    good, unlike a revoked token."""
    sim = await make_sim(fault_key_refused_p=0.5)
    api = Api(session, sim)
    answers = [await api.call("GET", "/v1/quota") for _ in range(20)]
    refused = [a for a in answers if a.status == 401]
    assert refused and len(refused) < len(answers)
    assert {a.status for a in answers} == {200, 401}
    assert all(a.body == {"message": "Unauthorized"} for a in refused)
    assert all(a.headers["X-Simulator-Reason"].startswith("KEY_REFUSED:") for a in refused)
    assert sim.stats()["faults"] == {"key_refused": len(refused)}


async def _scripted_run(sim: RunningSimulator, session: aiohttp.ClientSession) -> list[Any]:
    """A fixed sequence of requests; returns what each one observed."""
    api = Api(session, sim)
    template_id = _seed_template(sim)
    seen: list[Any] = []
    for i in range(40):
        try:
            answer = await api.call(
                "POST",
                "/v1/video/from-template",
                json_body={"templateId": template_id, "variables": {"company": str(i)}},
            )
            seen.append((answer.status, answer.body))
        except aiohttp.ClientError as exc:
            seen.append(type(exc).__name__)
    seen.append(sim.stats()["faults"])
    seen.append(sorted((j.job_id, j.end_at - j.created_at) for j in _jobs(sim)))
    return seen


def _jobs(sim: RunningSimulator) -> list[Any]:
    return list(sim.simulator.jobs)


@pytest.mark.parametrize("other_seed", [8])
async def test_same_seed_gives_the_same_run(
    make_sim: MakeSim, session: aiohttp.ClientSession, other_seed: int
) -> None:
    """Same requests + same seed → same faults, ids and durations; another seed differs."""
    faults = {
        "fault_server_error_p": 0.2,
        "fault_rate_limit_p": 0.2,
        "fault_drop_p": 0.2,
        "fault_job_failed_p": 0.3,
    }
    clock_a, clock_b, clock_c = ManualClock(), ManualClock(), ManualClock()
    run_a = await _scripted_run(await make_sim(clock=clock_a, seed=7, **faults), session)
    run_b = await _scripted_run(await make_sim(clock=clock_b, seed=7, **faults), session)
    run_c = await _scripted_run(await make_sim(clock=clock_c, seed=other_seed, **faults), session)
    assert run_a == run_b
    assert run_a != run_c
