"""Preview ``renderParams`` in the legacy shape (contract §5.7), for template and v1 storyboard
previews, and the round trip Pictory's ``update-voiceover-text`` sample makes with them."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from simkit import PROJECT, Api, MakeSim, ManualClock

VOICE_STORYBOARD: dict[str, Any] = {
    "videoName": "ai",
    "audio": {
        "autoBackgroundMusic": True,
        "backGroundMusicVolume": 0.5,
        "aiVoiceOver": {"speaker": "Jackson", "speed": 100, "amplifyLevel": 1},
    },
    "scenes": [
        {
            "text": "Machines can learn. They can also decide! Can they judge?",
            "voiceOver": True,
            "splitTextOnNewLine": False,
            "splitTextOnPeriod": True,
        }
    ],
}


def assert_legacy_scene(scene: dict[str, Any]) -> None:
    """Every key Pictory's samples read from a legacy scene is there, with the right types."""
    src = scene["background"]["src"]
    assert len(src) >= 1
    assert {"url", "type", "loop_video", "mute"} <= set(src[0])
    assert src[0]["type"] in ("image", "video") and isinstance(src[0]["url"], str)
    assert isinstance(scene["time"], float) and scene["time"] > 0
    assert scene["sub_scenes"] and all(
        isinstance(line["text"], str) for sub in scene["sub_scenes"] for line in sub["text_lines"]
    )
    assert scene["subtitles"] and {"text", "time"} <= set(scene["subtitles"][0])


async def _preview_params(api: Api, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    answer = await api.call("POST", "/v1/video/storyboard", json_body=body)
    assert answer.status == 200, answer.body
    done = await api.wait(answer.body["jobId"])
    params: dict[str, Any] = done.body["data"]["renderParams"]
    return answer.body["jobId"], params


async def test_storyboard_preview_has_legacy_render_params_with_tts(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """A voiced storyboard: audio.tts, music src, one scene per sentence, every legacy key."""
    api = Api(session, await make_sim())
    _, params = await _preview_params(api, VOICE_STORYBOARD)
    assert params["next_generation_video"] is True and params["containsTextToImage"] is True
    audio = params["audio"]
    assert audio["tts"].startswith("http") and audio["src"].startswith("http")
    assert audio["video_volume"] == 1 and audio["track_volume"] == 0.5
    assert params["output"]["name"] == "ai"
    texts = [s["sub_scenes"][0]["text_lines"][0]["text"] for s in params["scenes"]]
    assert texts == ["Machines can learn.", "They can also decide!", "Can they judge?"]
    for scene in params["scenes"]:
        assert_legacy_scene(scene)
    async with session.get(audio["tts"]) as resp:
        assert resp.status == 200 and resp.content_type == "audio/mp4"
    async with session.get(params["scenes"][0]["background"]["src"][0]["url"]) as resp:
        assert resp.status == 200 and resp.content_type == "video/mp4"


async def test_storyboard_without_voice_over_has_no_tts(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """No ``aiVoiceOver`` and no voiced scene: ``audio`` carries no ``tts``; the silent scene
    still lasts as long as its text takes to read."""
    api = Api(session, await make_sim())
    body = {"scenes": [{"text": "Quiet.", "voiceOver": False}]}
    _, params = await _preview_params(api, body)
    assert "tts" not in params["audio"]
    assert params["scenes"][0]["time"] == 2.0


async def test_template_preview_has_legacy_render_params(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """A from-template preview: one legacy scene per template scene, its visual as ``src[0]``,
    filled-in text, and ``tts`` when the project chose a voice-over track."""
    api = Api(session, await make_sim())
    project = {**PROJECT, "audio": {"selectedVoiceOverTrack": "Adam, male"}}
    template_id = (await api.upload(json.dumps(project).encode()))["templateId"]
    done = await api.wait(await api.preview(template_id))
    params = done.body["data"]["renderParams"]
    assert params["audio"]["tts"].startswith("http")
    assert len(params["scenes"]) == 2
    for scene in params["scenes"]:
        assert_legacy_scene(scene)
    first = params["scenes"][0]
    assert first["background"]["src"][0]["url"] == "https://cdn.example/clip.mp4?x=1"
    assert first["background"]["src"][0]["type"] == "video"
    assert first["sub_scenes"][0]["text_lines"] == [{"text": "Hello Ada, welcome to Acme!"}]
    plain = (await api.upload())["templateId"]
    plain_params = (await api.wait(await api.preview(plain))).body["data"]["renderParams"]
    assert "tts" not in plain_params["audio"], "the sample project has no voice-over"


async def test_update_voiceover_round_trip_renders(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """The ``update-voiceover-text`` flow: scenes rebuilt from renderParams (text_lines,
    background.src[0]) make a second storyboard with as many scenes; its tts, sub_scenes, time
    and subtitles copied into the first renderParams render through ``POST /v1/video/render``,
    and the first preview's renderParams are accepted back by ``PUT /v1/video/render/{id}``."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    first_id, params = await _preview_params_clocked(api, clock, VOICE_STORYBOARD)
    scenes = [
        {
            "text": " ".join(line["text"] for sub in s["sub_scenes"] for line in sub["text_lines"])
            + " Updated.",
            "splitTextOnNewLine": False,
            "splitTextOnPeriod": False,
            "backgroundUri": s["background"]["src"][0]["url"],
            "backgroundType": s["background"]["src"][0]["type"],
            "loopBackgroundVideo": s["background"]["src"][0]["loop_video"],
            "muteBackgroundVideo": s["background"]["src"][0]["mute"],
        }
        for s in params["scenes"]
    ]
    _, updated = await _preview_params_clocked(api, clock, {**VOICE_STORYBOARD, "scenes": scenes})
    assert len(updated["scenes"]) == len(params["scenes"])
    assert updated["scenes"][0]["background"]["src"][0]["url"] == scenes[0]["backgroundUri"]
    params["audio"]["tts"] = updated["audio"]["tts"]
    for old, new in zip(params["scenes"], updated["scenes"], strict=True):
        old.update(sub_scenes=new["sub_scenes"], time=new["time"], subtitles=new["subtitles"])
    rendered = await api.call("POST", "/v1/video/render", json_body=params)
    assert rendered.status == 200 and "job_id" in rendered.body["data"]
    by_preview = await api.render(first_id, params)
    clock.advance(60)
    done = (await api.job(by_preview)).body["data"]
    async with session.get(done["videoURL"]) as resp:
        video = await resp.read()
    assert f'"preview_job_id":"{first_id}"'.encode() in video, "the MP4 names its preview"


async def _preview_params_clocked(
    api: Api, clock: ManualClock, body: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    answer = await api.call("POST", "/v1/video/storyboard", json_body=body)
    assert answer.status == 200, answer.body
    clock.advance(60)
    data = (await api.job(answer.body["jobId"])).body["data"]
    return answer.body["jobId"], data["renderParams"]
