"""The simulator's v2 storyboard routes check the body with ``contract.storyboard_body`` (§6.3):
400 ``INVALID_REQUEST_BODY`` with every offending field in ``fields[]``; unknown fields stripped."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest
from simkit import Api, MakeSim, ManualClock

ROUTES = ("/v2/video/storyboard", "/v2/video/storyboard/render")
BODY: dict[str, Any] = {
    "videoName": "Spring launch",
    "language": "en",
    "scenes": [{"story": "Spring is here.", "createSceneOnEndOfSentence": True}],
}
# the faults → (changed fields, the field the 400 names)
FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "story of 16,000 chars": ({"scenes": [{"story": "x" * 16_000}]}, "scenes[0].story"),
    "aspectRatio 2:1": ({"aspectRatio": "2:1"}, "aspectRatio"),
    "videoWidth without videoHeight": ({"videoWidth": 1920}, "videoHeight"),
    "brandId with brandName": ({"brandId": "b1", "brandName": "Acme"}, "brandName"),
    "empty scenes": ({"scenes": []}, "scenes"),
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_each_fault_is_a_400_naming_its_field(
    route: str, fault: str, make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Both storyboard routes answer {code, message, fields[{name, errors}]} for each fault the
    issue lists; nothing is created or billed."""
    sim = await make_sim()
    changes, name = FAULTS[fault]
    answer = await Api(session, sim).call("POST", route, json_body={**BODY, **changes})
    assert answer.status == 400
    assert answer.body["code"] == "INVALID_REQUEST_BODY"
    assert answer.body["fields"] == [{"name": name, "errors": answer.body["fields"][0]["errors"]}]
    assert isinstance(answer.body["fields"][0]["errors"], str)
    assert name in answer.body["message"]
    stats = sim.stats()
    assert stats["renders_started"] == 0 and stats["jobs"]["preview"] == 0


async def test_a_body_with_several_faults_lists_every_field(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """One 400 lists every offending field, with Pictory's wording of each rule."""
    sim = await make_sim()
    body = {**BODY, **{k: v for changes, _ in FAULTS.values() for k, v in changes.items()}}
    body["scenes"] = [{"story": "x" * 16_000}, {"story": "Two.", "pptUrl": "https://p.example"}]
    answer = await Api(session, sim).call("POST", ROUTES[1], json_body=body)
    assert answer.status == 400
    fields = {f["name"]: f["errors"] for f in answer.body["fields"]}
    assert set(fields) == {
        "aspectRatio",
        "videoHeight",
        "brandName",
        "scenes[0].story",
        "scenes[1]",
    }
    assert fields["scenes[0].story"] == "16,000 characters, Pictory allows 15,000"
    assert "story and pptUrl" in fields["scenes[1]"]


async def test_unknown_fields_are_stripped_and_the_video_made(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Typos and unknown fields are dropped, not refused: the render completes from the rest."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    body = copy.deepcopy(BODY)
    body["colour"] = "red"
    body["scenes"][0]["sotry"] = "typo"
    answer = await api.call("POST", ROUTES[1], json_body=body)
    assert answer.status == 200, answer.body
    clock.advance(5)
    job = (await api.job(answer.body["data"]["jobId"])).body["data"]
    assert job["status"] == "completed"
    async with session.get(job["txtFile"]) as resp:
        text = await resp.text()
    assert "Spring is here." in text and "typo" not in text


async def test_rules_off_takes_the_body_as_sent(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``storyboard_body_rules=False`` plays a lax service: a 16,000-character story renders."""
    sim = await make_sim(storyboard_body_rules=False)
    body = {**BODY, "scenes": [{"story": "x" * 16_000}], "aspectRatio": "2:1"}
    answer = await Api(session, sim).call("POST", ROUTES[1], json_body=body)
    assert answer.status == 200, answer.body
