"""Video-edit on Pictory's shapes: transcripts read from ``words[]`` (pictory-api.md §5.1–5.2),
the cut as a direct renderParams body (§5.3 b), subtitles re-timed to the cut, and the highlights
request on ``/v2/transcription/highlights`` with the transcript unchanged."""

from __future__ import annotations

import types
from typing import Any

from memory_transport import API_KEY, MemoryTransport, memory_client, reply

from orchestrator.api.responses import parse_job
from orchestrator.run.flows import transcript, video_edit
from orchestrator.run.stages.base import RowJob
from orchestrator.run.stages.transcribe import cut_subtitles


def _word(uid: int, text: str, start: float, end: float, sentence: int, **extra: Any) -> dict:
    return {
        "uid": f"w{uid}",
        "word": text,
        "start_time": start,
        "end_time": end,
        "speakerId": 1,
        "sentence_index": sentence,
        **extra,
    }


def _pause(uid: int, start: float, size: float, sentence: int, **extra: Any) -> dict:
    return _word(uid, "", start, start + size, sentence, is_pause=True, pause_size=size, **extra)


def _sentences(flags: list[list[bool]] | None = None) -> list[dict[str, Any]]:
    """Three sentences of §5.2's shape, with a pause inside the second; ``flags`` adds §5.1's
    ``highlight`` per spoken word."""
    spoken = [
        [("Once", 0.5, 0.9), ("again", 1.0, 1.4)],
        [("We", 2.0, 2.2), ("ship", 2.3, 2.6), ("video", 3.4, 3.9), ("fast.", 4.0, 4.5)],
        [("Thank", 5.5, 5.8), ("you.", 5.9, 6.3)],
    ]
    sentences = []
    uid = 0
    for i, words in enumerate(spoken):
        items = []
        for j, (text, start, end) in enumerate(words):
            uid += 1
            extra = {"highlight": flags[i][j]} if flags else {}
            items.append(_word(uid, text, start, end, i, **extra))
            if i == 1 and j == 1:
                uid += 1
                items.append(_pause(uid, 2.6, 0.8, i, **({"highlight": True} if flags else {})))
        sentences.append({"uid": f"s{i + 1}", "speakerId": 1, "words": items})
    return sentences


TRANSCRIPTION_ANSWER = {
    "job_id": "t1",
    "success": True,
    "data": {
        "status": "completed",
        "transcript": _sentences(),
        "txt": "Once again",
        "srt": "1\n00:00:00,500 --> 00:00:01,400\nOnce again\n",
        "vtt": "WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.400\nOnce again\n",
        "mediaInfo": {"duration": 7.0, "width": 1280, "height": 720, "aspectRatio": "16:9"},
    },
}


def test_transcription_answer_keeps_sentences_and_subtitle_contents() -> None:
    """§5.2: the sentences are kept exactly (words and pauses), srt/vtt/txt are contents and
    mediaInfo.duration is read; the old parser dropped every item (it looked for ``text``)."""
    job = parse_job("t1", TRANSCRIPTION_ANSWER)
    assert job.status == "completed"
    assert job.transcript == _sentences()
    assert job.subtitle_texts == {
        k: TRANSCRIPTION_ANSWER["data"][k]  # type: ignore[index]
        for k in ("srt", "vtt", "txt")
    }
    assert job.media_duration_s == 7.0
    legacy = parse_job("t1", {"success": True, "data": {"transcript": _sentences()}})
    assert legacy.status == "completed" and legacy.transcript == _sentences()


def test_words_skip_pauses_and_read_segments() -> None:
    """Pauses (``is_pause``) are not words; a ``[{text,start,end}]`` segment reads as one word."""
    found = transcript.words(_sentences())
    assert [w.text for w in found] == [
        "Once",
        "again",
        "We",
        "ship",
        "video",
        "fast.",
        "Thank",
        "you.",
    ]
    segments = transcript.words([{"text": "Hello there", "start": 1, "end": 2.5}])
    assert [(w.text, w.start_s, w.end_s) for w in segments] == [("Hello there", 1.0, 2.5)]
    flagged = [
        {"text": "Kept.", "start": 0, "end": 2, "highlight": True},
        {"text": "Dropped.", "start": 2, "end": 3, "highlight": False},
    ]
    assert [s.text for s in transcript.highlight_spans(flagged)] == ["Kept."]


def test_whole_video_cut_keeps_every_sentence_on_the_source_clock() -> None:
    """A whole-video edit: one span per sentence, back to back from 0 to mediaInfo.duration."""
    spans = transcript.whole_spans(_sentences(), 7.0)
    assert [(s.start_s, s.end_s) for s in spans] == [(0.0, 2.0), (2.0, 5.5), (5.5, 7.0)]
    assert [s.text for s in spans] == ["Once again", "We ship video fast.", "Thank you."]


def test_highlight_spans_merge_adjacent_words_within_a_sentence() -> None:
    """Adjacent highlighted words form one span (a pause between them does not break it); a word
    not highlighted or a sentence's end closes it."""
    flags = [[False, True], [True, True, True, False], [True, True]]
    spans = transcript.highlight_spans(_sentences(flags))
    assert [(s.start_s, s.end_s, s.text) for s in spans] == [
        (1.0, 1.4, "again"),
        (2.0, 3.9, "We ship video"),
        (5.5, 6.3, "Thank you."),
    ]
    assert transcript.highlight_spans(_sentences([[False] * 2, [False] * 4, [False] * 2])) == []


def test_render_body_is_the_documented_direct_cut() -> None:
    """§5.3 (b): one scene per span with background.src[{url,type,start,end,mute}], time and
    sub_scenes[].text_lines[]; audio {} keeps the source's sound; no invented keys."""
    flags = [[False, True], [True, True, True, False], [False, False]]
    spans = transcript.highlight_spans(_sentences(flags))
    body = video_edit.render_body({"video_name": "Talk"}, "https://up/v.mp4", spans, "row")
    assert body == {
        "audio": {},
        "output": {"name": "Talk", "format": "mp4", "width": 1280, "height": 720},
        "scenes": [
            {
                "background": {
                    "src": [
                        {
                            "url": "https://up/v.mp4",
                            "type": "video",
                            "start": 1.0,
                            "end": 1.4,
                            "mute": False,
                        }
                    ]
                },
                "time": 0.4,
                "sub_scenes": [{"time": 0.4, "text_lines": [{"text": "again"}]}],
            },
            {
                "background": {
                    "src": [
                        {
                            "url": "https://up/v.mp4",
                            "type": "video",
                            "start": 2.0,
                            "end": 3.9,
                            "mute": False,
                        }
                    ]
                },
                "time": 1.9,
                "sub_scenes": [{"time": 1.9, "text_lines": [{"text": "We ship video"}]}],
            },
        ],
        "next_generation_video": True,
        "containsTextToImage": True,
    }
    name = video_edit.render_body({}, "https://up/v.mp4", spans, "row-7")["output"]["name"]
    assert name == "row-7"


def test_cut_subtitles_are_timed_on_the_cut() -> None:
    """Subtitles for a highlights cut run on the cut's clock: span after span, from 0."""
    flags = [[False, True], [True, True, True, False], [True, True]]
    spans = transcript.highlight_spans(_sentences(flags))
    assert transcript.subtitles(spans, "srt") == (
        "1\n00:00:00,000 --> 00:00:00,400\nagain\n\n"
        "2\n00:00:00,400 --> 00:00:02,300\nWe ship video\n\n"
        "3\n00:00:02,300 --> 00:00:03,100\nThank you.\n"
    )
    assert transcript.subtitles(spans, "vtt").startswith(
        "WEBVTT\n\n1\n00:00:00.000 --> 00:00:00.400\nagain\n"
    )
    assert transcript.subtitles(spans, "txt") == "again\nWe ship video\nThank you.\n"


async def test_highlights_request_sends_the_transcript_unchanged() -> None:
    """§5.1: ``POST /v2/transcription/highlights`` with ``transcript`` exactly as the
    transcription answered it (pauses included) and ``highlight_duration``; not /v2/highlights."""
    api = MemoryTransport()
    api.on(
        "POST", "/v2/transcription/highlights", reply({"success": True, "data": {"jobId": "h1"}})
    )
    async with memory_client(api, API_KEY, max_attempts=1) as client:
        job = parse_job("t1", TRANSCRIPTION_ANSWER)
        assert job.transcript is not None
        assert await client.create_highlights(job.transcript, 30.0) == "h1"
    assert api.bodies("POST", "/v2/transcription/highlights") == [
        {"transcript": _sentences(), "highlight_duration": 30.0}
    ]


class _Jobs:
    """Reads jobs from canned answers, as ``PictoryClient.get_job`` would."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.reads: list[str] = []

    async def get_job(self, job_id: str, *, useful_from: Any = None) -> Any:
        self.reads.append(job_id)
        return parse_job(job_id, self.answers[job_id])


def _resumed(aux_jobs: dict[str, str], answers: dict[str, Any]) -> tuple[Any, Any]:
    row = RowJob("r1", 2, {"highlights": "5"}, None, "r1.mp4", flow="video-edit")
    state = types.SimpleNamespace(aux_jobs=aux_jobs)
    svc = types.SimpleNamespace(state=lambda _row: state, client=_Jobs(answers))
    return row, svc


async def test_resumed_row_rebuilds_cut_subtitles_from_its_ledger_jobs() -> None:
    """A row resumed after its render (empty scratch) whose render offers no subtitles gets them
    from the transcription and highlights jobs the ledger names: re-timed to the cut."""
    flags = [[False, True], [True, True, True, False], [False, False]]
    data = {"status": "completed", "transcript": _sentences(flags)}
    answers = {"t1": TRANSCRIPTION_ANSWER, "h1": {"success": True, "data": data}}
    row, svc = _resumed({"transcription": "t1", "highlights": "h1"}, answers)
    found = await cut_subtitles(row, svc)
    assert found["txt"] == "again\nWe ship video\n"
    assert found["srt"].startswith("1\n00:00:00,000 --> 00:00:00,400\nagain\n")
    assert svc.client.reads == ["t1", "h1"]


async def test_whole_video_row_uses_the_transcription_subtitles() -> None:
    """A whole-video cut keeps the source's timings, so the transcription's own srt/vtt/txt
    contents (§5.2) are its subtitles."""
    row, svc = _resumed({"transcription": "t1"}, {"t1": TRANSCRIPTION_ANSWER})
    found = await cut_subtitles(row, svc)
    assert found["srt"] == TRANSCRIPTION_ANSWER["data"]["srt"]  # type: ignore[index]
    gone = {"success": True, "data": {"status": "cleaned"}}
    row, svc = _resumed({"transcription": "t1"}, {"t1": gone})
    assert await cut_subtitles(row, svc) == {}
