"""A Pictory transcript read as words, cut into scenes, and turned into a render body and subtitles.

Shapes (``../shared/pictory-api.md``):

- §5.2: a transcription job's ``data.transcript`` is a list of sentences ``{uid, speakerId,
  words[]}``; a word is ``{uid, word, start_time, end_time, speakerId, sentence_index}``; a pause
  is a word with ``is_pause: true``, ``word: ""`` and ``pause_size`` (skipped here).
- §5.1: a highlights job answers the same sentences, each word with a boolean ``highlight``. One
  doc page gives a transcript as ``[{text, start, end}]`` segments; a segment is read as one word.
- §5.3 (b): the cut is a direct ``POST /v1/video/render`` renderParams body (Postman "Video
  Editing" Step 6): per kept span one scene ``{background: {src: [{url, type: "video", start,
  end, mute: false}]}, time, sub_scenes: [{time, text_lines: [{text}]}]}``, ``audio: {}`` to keep
  the source's own sound, ``output``, and the flags ``next_generation_video`` and
  ``containsTextToImage``.

A whole-video edit keeps everything: one scene per sentence, each running to the next sentence's
start, so the cut has the source's timings. A highlights edit keeps only the highlighted words:
adjacent highlighted words (a pause between two of them does not break the run) are merged into
one span, and each span is one scene.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

OUTPUT = {"format": "mp4", "width": 1280, "height": 720}
"""The cut's output size. [choice] §5.3 (b)'s example; Pictory publishes no default."""
SUBTITLE_KINDS = ("srt", "vtt", "txt")


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start_s: float
    end_s: float
    sentence: int
    highlight: bool


@dataclass(frozen=True, slots=True)
class Span:
    """One kept stretch of the source: ``[start_s, end_s)`` and the words spoken in it."""

    start_s: float
    end_s: float
    words: tuple[Word, ...]

    @property
    def length_s(self) -> float:
        return round(self.end_s - self.start_s, 3)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def words(transcript: Iterable[Any]) -> list[Word]:
    """Every spoken word, in order; pauses and items without timings are skipped."""
    found: list[Word] = []
    for index, sentence in enumerate(transcript):
        if not isinstance(sentence, dict):
            continue
        items = sentence.get("words")
        if not isinstance(items, list):  # the ``[{text, start, end}]`` segment form (§5.1)
            start, end = sentence.get("start"), sentence.get("end")
            flag = sentence.get("highlight")
            items = [
                {
                    "word": sentence.get("text"),
                    "start_time": start,
                    "end_time": end,
                    "highlight": flag,
                }
            ]
        for item in items:
            word = _word(item, index)
            if word is not None:
                found.append(word)
    return found


def _word(item: Any, sentence: int) -> Word | None:
    if not isinstance(item, dict) or item.get("is_pause") is True:
        return None
    text = item.get("word")
    start, end = _number(item.get("start_time")), _number(item.get("end_time"))
    if not isinstance(text, str) or not text.strip() or start is None or end is None:
        return None
    return Word(text.strip(), start, max(start, end), sentence, item.get("highlight") is True)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def whole_spans(transcript: Iterable[Any], duration_s: float | None = None) -> list[Span]:
    """One span per sentence, from its first word to the next sentence's first word (the first
    from 0, the last to ``duration_s`` when known): the whole video, cut at sentence starts."""
    by_sentence: dict[int, list[Word]] = {}
    for word in words(transcript):
        by_sentence.setdefault(word.sentence, []).append(word)
    groups = list(by_sentence.values())
    spans = []
    for i, group in enumerate(groups):
        start = 0.0 if i == 0 else group[0].start_s
        end = groups[i + 1][0].start_s if i + 1 < len(groups) else group[-1].end_s
        if i + 1 == len(groups) and duration_s is not None:
            end = max(end, duration_s)
        if end > start:
            spans.append(Span(start, end, tuple(group)))
    return spans


def highlight_spans(transcript: Iterable[Any]) -> list[Span]:
    """The highlighted words merged into runs, one per scene: a run ends at a word that is not
    highlighted or at the end of its sentence (scenes are built from sentences)."""
    spans: list[Span] = []
    run: list[Word] = []
    for word in [*words(transcript), None]:
        if word is not None and word.highlight and (not run or run[-1].sentence == word.sentence):
            run.append(word)
            continue
        if run and run[-1].end_s > run[0].start_s:
            spans.append(Span(run[0].start_s, run[-1].end_s, tuple(run)))
        run = [word] if word is not None and word.highlight else []
    return spans


def render_body(source_url: str, spans: list[Span], name: str) -> dict[str, Any]:
    """The direct renderParams body of §5.3 (b): the source cut to ``spans``, its sound kept."""
    return {
        "audio": {},
        "output": {"name": name, **OUTPUT},
        "scenes": [
            {
                "background": {
                    "src": [
                        {
                            "url": source_url,
                            "type": "video",
                            "start": span.start_s,
                            "end": span.end_s,
                            "mute": False,
                        }
                    ]
                },
                "time": span.length_s,
                "sub_scenes": [{"time": span.length_s, "text_lines": [{"text": span.text}]}],
            }
            for span in spans
        ],
        "next_generation_video": True,
        "containsTextToImage": True,
    }


def subtitles(spans: list[Span], kind: str) -> str:
    """A ``srt``, ``vtt`` or ``txt`` file for the cut made of ``spans``: each kept span's words,
    timed on the cut's own clock (the spans played one after the other)."""
    cues: list[tuple[float, float, str]] = []
    offset = 0.0
    for span in spans:
        for sentence in _by_sentence(span.words):
            start = offset + max(0.0, sentence[0].start_s - span.start_s)
            end = offset + min(span.length_s, sentence[-1].end_s - span.start_s)
            cues.append((start, max(start, end), " ".join(w.text for w in sentence)))
        offset += span.length_s
    if kind == "txt":
        return "\n".join(text for _, _, text in cues) + "\n"
    sep = "," if kind == "srt" else "."
    blocks = [
        f"{i}\n{_stamp(start, sep)} --> {_stamp(end, sep)}\n{text}\n"
        for i, (start, end, text) in enumerate(cues, 1)
    ]
    body = "\n".join(blocks)
    return body if kind == "srt" else "WEBVTT\n\n" + body


def _by_sentence(kept: tuple[Word, ...]) -> list[list[Word]]:
    groups: list[list[Word]] = []
    for word in kept:
        if groups and groups[-1][-1].sentence == word.sentence:
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"
