"""Transcription and highlights jobs as Pictory answers them (``pictory-api.md`` §5.1, §5.2).

- A transcription's ``data`` (§5.2): ``status: completed``, ``transcript[]`` sentences ``{uid,
  speakerId, words[]}`` with words ``{uid, word, start_time, end_time, speakerId,
  sentence_index}`` and pauses (``is_pause: true``, ``word: ""``, ``pause_size``); ``txt``,
  ``srt`` and ``vtt`` as file contents; ``mediaInfo`` [choice: ``duration``, ``width``,
  ``height``, ``aspectRatio``]; ``editVideoUrl`` (a stub page here, ``/__editor__/{jobId}``).
  [choice] The words are made up but deterministic per ``fileUrl``: 6–12 sentences of 4–11
  words, so highlights have something to cut.
- A highlights request (§5.1) carries ``transcript`` either as those sentences or as
  ``[{text, start, end}]`` segments; the answer is the input with a boolean ``highlight`` on every
  word (or segment). [choice] Whole sentences are highlighted in order while their total length
  stays ≤ ``highlight_duration`` (the first sentence that does not fit ends the choice).
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from orchestrator.simulator.answers import invalid_body

_SCRIPT = (
    "welcome everyone today we look at how our team ships video faster with fewer steps and "
    "what customers told us about the new editor the numbers speak for themselves so let us "
    "walk through three examples from real projects before questions at the end thank you"
)
_VOCABULARY = tuple(_SCRIPT.split())
EDITOR_PREFIX = "/__editor__"
WIDTH, HEIGHT = 1280, 720


def transcript_for(file_url: str) -> list[dict[str, Any]]:
    """The made-up but repeatable transcript of ``file_url`` (sentences with words and pauses)."""
    rng = random.Random(hashlib.sha256(file_url.encode()).hexdigest())
    sentences: list[dict[str, Any]] = []
    clock_s, uid = round(rng.uniform(0.2, 0.9), 2), 0
    for index in range(rng.randint(6, 12)):
        words: list[dict[str, Any]] = []
        for n in range(rng.randint(4, 11)):
            uid += 1
            end_s = round(clock_s + rng.uniform(0.2, 0.6), 2)
            text = rng.choice(_VOCABULARY)
            words.append(
                {
                    "uid": f"w{uid}",
                    "word": text.capitalize() if n == 0 else text,
                    "start_time": clock_s,
                    "end_time": end_s,
                    "speakerId": 1,
                    "sentence_index": index,
                }
            )
            clock_s = round(end_s + rng.uniform(0.02, 0.1), 2)
        words[-1]["word"] += "."
        pause_s = round(rng.uniform(0.3, 1.2), 2)
        uid += 1
        words.append(
            {
                "uid": f"w{uid}",
                "word": "",
                "start_time": clock_s,
                "end_time": round(clock_s + pause_s, 2),
                "speakerId": 1,
                "sentence_index": index,
                "is_pause": True,
                "pause_size": pause_s,
            }
        )
        clock_s = round(clock_s + pause_s, 2)
        sentences.append({"uid": f"s{index + 1}", "speakerId": 1, "words": words})
    return sentences


def sentence_cues(transcript: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, text)`` per sentence, pauses left out."""
    cues = []
    for sentence in transcript:
        spoken = [w for w in sentence["words"] if not w.get("is_pause")]
        if spoken:
            text = " ".join(w["word"] for w in spoken)
            cues.append((spoken[0]["start_time"], spoken[-1]["end_time"], text))
    return cues


def subtitle_file(cues: list[tuple[float, float, str]], kind: str) -> str:
    """A ``srt``, ``vtt`` or ``txt`` file's contents for timed cues."""
    if kind == "txt":
        return "\n".join(text for _, _, text in cues) + "\n"
    sep = "," if kind == "srt" else "."
    blocks = [
        f"{i}\n{_stamp(start, sep)} --> {_stamp(end, sep)}\n{text}\n"
        for i, (start, end, text) in enumerate(cues, 1)
    ]
    body = "\n".join(blocks)
    return body if kind == "srt" else "WEBVTT\n\n" + body


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def transcription_data(file_url: str, language: str, editor_url: str) -> dict[str, Any]:
    """A finished transcription job's ``data`` (§5.2)."""
    transcript = transcript_for(file_url)
    cues = sentence_cues(transcript)
    duration_s = transcript[-1]["words"][-1]["end_time"]
    return {
        "status": "completed",
        "language": language,
        "fileUrl": file_url,
        "transcript": transcript,
        "txt": subtitle_file(cues, "txt"),
        "srt": subtitle_file(cues, "srt"),
        "vtt": subtitle_file(cues, "vtt"),
        "mediaInfo": {
            "duration": duration_s,
            "width": WIDTH,
            "height": HEIGHT,
            "aspectRatio": "16:9",
        },
        "editVideoUrl": editor_url,
    }


def check_highlights_body(body: dict[str, Any]) -> None:
    """400 naming the field unless ``body`` is a highlights request of §5.1."""
    transcript = body.get("transcript")
    if not isinstance(transcript, list) or not transcript:
        raise invalid_body(
            "field 'transcript' is required: the transcription job's data.transcript "
            "(sentences with words[]) or [{text, start, end}] segments"
        )
    for i, item in enumerate(transcript):
        where = f"transcript[{i}]"
        if not isinstance(item, dict):
            raise invalid_body(f"field '{where}' must be an object")
        words = item.get("words")
        if words is None:
            if not isinstance(item.get("text"), str):
                raise invalid_body(f"field '{where}' needs 'words' (a list) or 'text'")
            _need_numbers(item, where, ("start", "end"))
            continue
        if not isinstance(words, list):
            raise invalid_body(f"field '{where}.words' must be a list")
        for j, word in enumerate(words):
            if not isinstance(word, dict) or not isinstance(word.get("word"), str):
                raise invalid_body(f"field '{where}.words[{j}].word' must be a string")
            _need_numbers(word, f"{where}.words[{j}]", ("start_time", "end_time"))
    duration = body.get("highlight_duration", 60)
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration <= 0:
        raise invalid_body("field 'highlight_duration' must be a positive number of seconds")


def _need_numbers(item: dict[str, Any], where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_body(f"field '{where}.{key}' must be a number of seconds")


def highlights_data(payload_json: str) -> dict[str, Any]:
    """A finished highlights job's ``data`` (§5.1): the input transcript, flagged."""
    body = json.loads(payload_json)
    budget_s = float(body.get("highlight_duration") or 60)
    transcript: list[dict[str, Any]] = body["transcript"]
    total_s, open_ = 0.0, True
    flagged = []
    for item in transcript:
        length_s = _length_s(item)
        keep = open_ and total_s + length_s <= budget_s
        open_ = keep
        total_s += length_s if keep else 0.0
        if isinstance(item.get("words"), list):
            words = [{**w, "highlight": keep} for w in item["words"]]
            flagged.append({**item, "words": words})
        else:
            flagged.append({**item, "highlight": keep})
    return {"status": "completed", "transcript": flagged}


def _length_s(item: dict[str, Any]) -> float:
    words = item.get("words")
    if not isinstance(words, list):
        return float(item["end"]) - float(item["start"])
    spoken = [w for w in words if not w.get("is_pause")]
    if not spoken:
        return 0.0
    return float(spoken[-1]["end_time"]) - float(spoken[0]["start_time"])


def editor_page(job_id: str) -> str:
    """The stub of Pictory's embeddable editor page (``editVideoUrl``, §5.2)."""
    return (
        "<!doctype html><html><head><title>Pictory editor (simulated)</title></head>"
        f"<body><p>Simulated editor for transcription {job_id}.</p></body></html>\n"
    )
