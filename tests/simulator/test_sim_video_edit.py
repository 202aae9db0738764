"""The simulator's video-edit endpoints on Pictory's documented shapes (pictory-api.md §5.1–5.3)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from simkit import Api, MakeSim

from orchestrator.simulator import media

FILE_URL = "https://media.example/talk.mp4"


async def _transcribe(api: Api, file_url: str = FILE_URL) -> tuple[str, dict[str, Any]]:
    answer = await api.call(
        "POST", "/v2/transcription", json_body={"fileUrl": file_url, "language": "en-US"}
    )
    assert answer.status == 200
    job_id = answer.body["data"]["jobId"]
    return job_id, (await api.wait(job_id)).body["data"]


async def test_transcription_job_answers_words_pauses_and_subtitle_contents(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """A finished transcription has §5.2's sentences of words (with pauses), srt/vtt/txt as
    contents, mediaInfo and an editVideoUrl page; the same file gives the same transcript."""
    sim = await make_sim()
    api = Api(session, sim)
    _, data = await _transcribe(api)
    assert data["status"] == "completed"
    sentences = data["transcript"]
    assert 6 <= len(sentences) <= 12
    assert set(sentences[0]) == {"uid", "speakerId", "words"}
    word = sentences[0]["words"][0]
    assert set(word) == {"uid", "word", "start_time", "end_time", "speakerId", "sentence_index"}
    pauses = [w for s in sentences for w in s["words"] if w.get("is_pause")]
    assert pauses and all(p["word"] == "" and p["pause_size"] > 0 for p in pauses)
    assert all(len([w for w in s["words"] if not w.get("is_pause")]) >= 4 for s in sentences)
    assert data["srt"].startswith("1\n00:00:") and " --> " in data["srt"]
    assert data["vtt"].startswith("WEBVTT\n\n1\n")
    assert word["word"] in data["txt"] and "://" not in data["txt"]
    assert {"duration", "width", "height", "aspectRatio"} <= set(data["mediaInfo"])
    async with session.get(data["editVideoUrl"]) as page:
        assert page.status == 200 and page.content_type == "text/html"
    _, again = await _transcribe(api)
    assert again["transcript"] == sentences
    _, other = await _transcribe(api, "https://media.example/other.mp4")
    assert other["transcript"] != sentences


async def test_highlights_flag_whole_sentences_within_the_duration(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``POST /v2/transcription/highlights`` with the transcript unchanged answers the same
    sentences with a boolean ``highlight`` per word: whole sentences, in order, within budget."""
    sim = await make_sim()
    api = Api(session, sim)
    _, data = await _transcribe(api)
    sentences = data["transcript"]
    spoken = [[w for w in s["words"] if not w.get("is_pause")] for s in sentences]
    lengths = [ws[-1]["end_time"] - ws[0]["start_time"] for ws in spoken]
    budget = lengths[0] + lengths[1] + 0.01
    body = {"transcript": sentences, "highlight_duration": budget, "webhook": None}
    answer = await api.call("POST", "/v2/transcription/highlights", json_body=body)
    assert answer.status == 200
    result = (await api.wait(answer.body["data"]["jobId"])).body["data"]
    assert result["status"] == "completed"
    flags = [{w["highlight"] for w in s["words"]} for s in result["transcript"]]
    assert flags[:3] == [{True}, {True}, {False}] and all(f == {False} for f in flags[2:])
    stripped = [
        {**s, "words": [{k: v for k, v in w.items() if k != "highlight"} for w in s["words"]]}
        for s in result["transcript"]
    ]
    assert stripped == sentences


async def test_highlights_accept_segments_and_a_transcription_id(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """The ``[{text,start,end}]`` form gets ``highlight`` per segment; the
    ``/v2/transcription/{id}/highlights`` route highlights that transcription's words."""
    sim = await make_sim()
    api = Api(session, sim)
    segments = [{"text": "One.", "start": 0, "end": 4}, {"text": "Two.", "start": 4, "end": 9}]
    answer = await api.call(
        "POST",
        "/v2/transcription/highlights",
        json_body={"transcript": segments, "highlight_duration": 5},
    )
    result = (await api.wait(answer.body["data"]["jobId"])).body["data"]
    assert [s["highlight"] for s in result["transcript"]] == [True, False]
    job_id, data = await _transcribe(api)
    by_id = await api.call(
        "POST", f"/v2/transcription/{job_id}/highlights", json_body={"highlight_duration": 600}
    )
    assert by_id.status == 200
    flagged = (await api.wait(by_id.body["data"]["jobId"])).body["data"]["transcript"]
    assert len(flagged) == len(data["transcript"])
    assert all(w["highlight"] for s in flagged for w in s["words"])


async def test_highlights_refuse_malformed_bodies_and_the_invented_route(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """Bad transcripts are 400 naming the field; ``/v2/highlights`` does not exist (404)."""
    sim = await make_sim()
    api = Api(session, sim)
    path = "/v2/transcription/highlights"
    cases = [
        ({"highlight_duration": 60}, "'transcript'"),
        ({"transcript": [{"words": [{"word": "a"}]}]}, "'transcript[0].words[0].start_time'"),
        ({"transcript": [{"speakerId": 1}]}, "'transcript[0]'"),
        ({"transcript": [{"text": "a", "start": 0, "end": 1}], "highlight_duration": 0}, "'highl"),
    ]
    for body, field in cases:
        answer = await api.call("POST", path, json_body=body)
        assert answer.status == 400, body
        assert answer.body["error"]["error_code"] == "INVALID_REQUEST_BODY"
        assert field in answer.body["error"]["error_message"]
    old = await api.call("POST", "/v2/highlights", json_body={"transcript": [], "x": 1})
    assert old.status == 404


def _render_body(cuts: list[tuple[float, float]]) -> dict[str, Any]:
    scenes = [
        {
            "background": {
                "src": [{"url": FILE_URL, "type": "video", "start": s, "end": e, "mute": False}]
            },
            "time": round(e - s, 3),
            "sub_scenes": [{"time": round(e - s, 3), "text_lines": [{"text": f"cut {s}"}]}],
        }
        for s, e in cuts
    ]
    return {
        "audio": {},
        "output": {"name": "cut.mp4", "format": "mp4", "width": 1280, "height": 720},
        "scenes": scenes,
        "next_generation_video": True,
        "containsTextToImage": True,
    }


async def test_direct_render_body_cuts_the_source(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """§5.3 (b): the video lasts Σ scene time and its MP4 names every kept segment; the
    render's subtitles follow the cut."""
    sim = await make_sim()
    api = Api(session, sim)
    answer = await api.call(
        "POST", "/v1/video/render", json_body=_render_body([(4.14, 17.26), (20.0, 21.5)])
    )
    assert answer.status == 200
    data = (await api.wait(answer.body["data"]["job_id"])).body["data"]
    assert data["videoDuration"] == 14.62
    async with session.get(data["videoURL"]) as resp:
        video = await resp.read()
    payload = json.loads(video[len(media.clip_bytes()) + 8 :])
    assert [(s["url"], s["start"], s["end"]) for s in payload["scenes"]] == [
        (FILE_URL, 4.14, 17.26),
        (FILE_URL, 20.0, 21.5),
    ]
    async with session.get(data["srtFile"]) as resp:
        srt = await resp.text()
    assert "00:00:13,120 --> 00:00:14,620\ncut 20.0" in srt


async def test_render_subtitle_form_is_a_setting(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """``render_subtitle_form``: a render's srtFile/vttFile/txtFile as contents, or absent."""
    for form, expect in (("content", str), ("none", type(None))):
        sim = await make_sim(render_subtitle_form=form)
        api = Api(session, sim)
        answer = await api.call("POST", "/v1/video/render", json_body=_render_body([(1, 3)]))
        data = (await api.wait(answer.body["data"]["job_id"])).body["data"]
        assert isinstance(data.get("vttFile"), expect)
        if form == "content":
            assert data["vttFile"].startswith("WEBVTT") and data["txtFile"] == "cut 1\n"


async def test_direct_render_refuses_malformed_bodies(
    make_sim: MakeSim, session: aiohttp.ClientSession
) -> None:
    """A body that is not renderParams is 400 INVALID_REQUEST_BODY naming the field; no render."""
    sim = await make_sim()
    api = Api(session, sim)
    good = _render_body([(1, 3)])
    scene = good["scenes"][0]
    cases = [
        ({"output": {}}, "'scenes'"),
        ({"scenes": [{"text": "hi"}]}, "'scenes[0].background.src'"),
        ({"scenes": [{"background": {"src": [{"type": "video"}]}}]}, "src[0].url"),
        ({"scenes": [{**scene, "time": -1}]}, "'scenes[0].time'"),
        ({"scenes": [{**scene, "sub_scenes": [{"text_lines": ["x"]}]}]}, "text_lines"),
        ({**good, "audio": "on"}, "'audio'"),
        (
            {"scenes": [{"background": {"src": [{"url": "u", "start": 5, "end": 2}]}}]},
            "start < end",
        ),
    ]
    for body, field in cases:
        answer = await api.call("POST", "/v1/video/render", json_body=body)
        assert answer.status == 400, body
        assert answer.body["error"]["error_code"] == "INVALID_REQUEST_BODY"
        assert field in answer.body["error"]["error_message"], answer.body
    assert sim.stats()["renders_started"] == 0
