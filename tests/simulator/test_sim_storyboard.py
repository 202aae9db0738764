"""``POST /v1/video/storyboard`` accepts every body Pictory's samples send and refuses malformed
ones with the documented error envelope (contract §1, §3, §5.3). The bodies are written here in
our own words after the samples' requests."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from simkit import Api, MakeSim

VOICE = {"speaker": "Jackson", "speed": 100, "amplifyLevel": 0}
AUDIO = {"autoBackgroundMusic": "true", "backGroundMusicVolume": 0.5, "aiVoiceOver": VOICE}
STYLED_SCENE = {
    "fontFamily": "Roboto",
    "textColor": "#00FF00",
    "fontSize": 32,
    "textBackgroundColor": "#000000",
    "voiceOver": True,
    "splitTextOnNewLine": False,
    "splitTextOnPeriod": True,
}

SAMPLE_BODIES: dict[str, dict[str, Any]] = {
    "text_to_video/basic, introoutro": {
        "videoName": "t2v",
        "videoDescription": "t2v",
        "language": "en",
        "audio": AUDIO,
        "scenes": [{"text": "First one. Second one.", **STYLED_SCENE}],
    },
    "text_to_video/addbrandlogo": {
        "videoName": "logo",
        "audio": AUDIO,
        "scenes": [{"text": "A scene.", **STYLED_SCENE}],
        "brandLogo": {"url": "https://x/l.jpg", "verticalAlignment": "top"},
    },
    "text_to_video/addtextstyles": {
        "videoName": "styles",
        "audio": AUDIO,
        "scenes": [{"text": "A scene.", **STYLED_SCENE}],
        "textStyles": {"textColor": "#FFFF00", "fontSize": 20},
    },
    "blogtovideo (article_url scenes)": {
        "videoName": "blog",
        "audio": AUDIO,
        "scenes": [
            {"article_url": "https://blog.example/a", **STYLED_SCENE},
            {"article_url": "https://blog.example/b", **STYLED_SCENE},
        ],
    },
    "audiotovideobroll (voiceOverUri, minimumDuration)": {
        "videoName": "broll",
        "videoWidth": 1920,
        "videoHeight": 1080,
        "audio": {"voiceOverUri": "https://x/voice.mp3"},
        "scenes": [
            {
                "text": "Once again",
                "splitTextOnNewLine": False,
                "splitTextOnPeriod": False,
                "subtitle": True,
                "backgroundUri": "https://x/1.jpg",
                "backgroundType": "image",
                "minimumDuration": 7.5,
                "voiceOver": True,
            }
        ],
    },
    "videohighlights, visualtovideo (backgroundVideoSegments)": {
        "videoName": "hl",
        "scenes": [
            {
                "text": "Once again",
                "backgroundUri": "https://x/up.mp4",
                "backgroundType": "video",
                "backgroundVideoSegments": [{"start": 0, "end": 0.48}, {"start": 1, "end": 3}],
                "voiceOver": False,
                "splitTextOnNewLine": False,
                "splitTextOnPeriod": False,
                "subtitle": True,
            }
        ],
    },
    "story-board-with-visual-search (loop/mute flags)": {
        "videoName": "ai",
        "audio": {**AUDIO, "autoBackgroundMusic": True},
        "scenes": [
            {
                "text": "AI is here.",
                "voiceOver": True,
                "splitTextOnNewLine": False,
                "splitTextOnPeriod": False,
                "backgroundUri": "https://x/stock_P480.mp4",
                "backgroundType": "video",
                "loopBackgroundVideo": True,
                "muteBackgroundVideo": True,
            }
        ],
    },
    "update-voiceover-text (backgroundVisualFilter)": {
        "videoName": "ai",
        "audio": AUDIO,
        "scenes": [{"text": "AI. More AI.", "backgroundVisualFilter": {"category": "Technology"}}],
    },
}


@pytest.mark.parametrize("body", SAMPLE_BODIES.values(), ids=SAMPLE_BODIES.keys())
async def test_storyboard_accepts_every_sample_body(
    make_sim: MakeSim, session: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    """Each body a sample sends makes a preview: top-level jobId, renderParams with scenes."""
    api = Api(session, await make_sim())
    answer = await api.call("POST", "/v1/video/storyboard", json_body=body)
    assert answer.status == 200, answer.body
    assert answer.body["success"] is True and isinstance(answer.body["jobId"], str)
    params = (await api.wait(answer.body["jobId"])).body["data"]["renderParams"]
    assert params["scenes"] and all(s["background"]["src"] for s in params["scenes"])


async def test_storyboard_scene_timing_follows_segments_and_minimum_duration(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Without voice-over a scene lasts the sum of its segments, cut with src start/end; a
    ``minimumDuration`` lengthens a scene; an ``article_url`` scene is split into sentences."""
    api = Api(session, await make_sim())
    segmented = SAMPLE_BODIES["videohighlights, visualtovideo (backgroundVideoSegments)"]
    answer = await api.call("POST", "/v1/video/storyboard", json_body=segmented)
    scene = (await api.wait(answer.body["jobId"])).body["data"]["renderParams"]["scenes"][0]
    assert scene["time"] == 2.48
    src = scene["background"]["src"][0]
    assert (src["url"], src["start"], src["end"], src["mute"]) == ("https://x/up.mp4", 0, 3, False)
    broll = SAMPLE_BODIES["audiotovideobroll (voiceOverUri, minimumDuration)"]
    answer = await api.call("POST", "/v1/video/storyboard", json_body=broll)
    params = (await api.wait(answer.body["jobId"])).body["data"]["renderParams"]
    assert params["scenes"][0]["time"] == 7.5
    assert params["audio"]["tts"] == "https://x/voice.mp3"
    assert params["output"]["width"] == 1920
    blog = SAMPLE_BODIES["blogtovideo (article_url scenes)"]
    answer = await api.call("POST", "/v1/video/storyboard", json_body=blog)
    params = (await api.wait(answer.body["jobId"])).body["data"]["renderParams"]
    assert len(params["scenes"]) == 4


REFUSED: dict[str, Any] = {
    "no scenes": {"videoName": "x"},
    "empty scenes": {"scenes": []},
    "scenes not a list": {"scenes": {"text": "x"}},
    "scene not an object": {"scenes": ["text"]},
    "scene without text or article_url": {"scenes": [{"voiceOver": True}]},
    "blank text": {"scenes": [{"text": "  "}]},
    "text not a string": {"scenes": [{"text": 5}]},
    "bad backgroundType": {"scenes": [{"text": "x", "backgroundType": "gif"}]},
    "backgroundUri not a string": {"scenes": [{"text": "x", "backgroundUri": 3}]},
    "segments not a list": {"scenes": [{"text": "x", "backgroundVideoSegments": {"start": 0}}]},
    "segment end before start": {
        "scenes": [{"text": "x", "backgroundVideoSegments": [{"start": 2, "end": 1}]}]
    },
    "segment missing end": {"scenes": [{"text": "x", "backgroundVideoSegments": [{"start": 0}]}]},
    "audio not an object": {"audio": "loud", "scenes": [{"text": "x"}]},
    "videoName not a string": {"videoName": 7, "scenes": [{"text": "x"}]},
    "body not an object": [{"text": "x"}],
}


@pytest.mark.parametrize("body", REFUSED.values(), ids=REFUSED.keys())
async def test_storyboard_refuses_malformed_bodies(
    make_sim: MakeSim, session: aiohttp.ClientSession, body: Any
) -> None:
    """A malformed body: 400 with the legacy error envelope and no job created."""
    sim = await make_sim()
    api = Api(session, sim)
    answer = await api.call("POST", "/v1/video/storyboard", json_body=body)
    assert answer.status == 400
    assert answer.body["success"] is False
    assert answer.body["error"]["error_code"] == "INVALID_REQUEST_BODY"
    assert answer.body["error"]["error_message"]
    assert sim.stats()["jobs"]["preview"] == 0


async def test_visual_search_results_feed_a_storyboard(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """The ``story-board-with-visual-search`` flow: each scene's ``backgroundUri`` is a search
    result's ``preview.url``; the preview's renderParams keep it as ``background.src[0].url``,
    and both renders (renderParams POST and PUT by preview id) complete."""
    api = Api(session, await make_sim())
    found = await api.call("GET", "/v1/media/search?keyword=artificial%20intelligence")
    urls = [r["preview"]["url"] for r in found.body["data"]["searchResults"]][:2]
    body = {
        "videoName": "ai",
        "scenes": [
            {
                "text": f"Scene {i}.",
                "splitTextOnPeriod": False,
                "backgroundUri": url,
                "backgroundType": "video",
                "loopBackgroundVideo": True,
                "muteBackgroundVideo": True,
            }
            for i, url in enumerate(urls)
        ],
    }
    answer = await api.call("POST", "/v1/video/storyboard", json_body=body)
    params = (await api.wait(answer.body["jobId"])).body["data"]["renderParams"]
    assert [s["background"]["src"][0]["url"] for s in params["scenes"]] == urls
    posted = await api.call("POST", "/v1/video/render", json_body=params)
    for render_id in (posted.body["data"]["job_id"], await api.render(answer.body["jobId"])):
        assert (await api.wait(render_id)).body["data"]["status"] == "completed"
