"""A finished preview's ``renderParams`` in the legacy shape (contract §5.7), and the v1 storyboard
body rules (§3, §5.3).

Legacy shape [doc Postman Text-to-Video Step 3/4;
sample N ``text_to_video/update-voiceover-text``]::

    {"audio": {"video_volume": 1, "src": "<music>", "track_volume": 0.5, "tts": "<voice>"},
     "output": {...},
     "scenes": [{"background": {"src": [{"url", "type", "loop_video", "mute"}]},
                 "time": 7.368,
                 "sub_scenes": [{"time": 7.368, "text_lines": [{"text": "..."}]}],
                 "subtitles": [{"text": "...", "time": 7.368}]}],
     "next_generation_video": true, "containsTextToImage": true}

Everything here is a pure function of the preview's stored request, so a preview keeps no copy of
its renderParams. Timings and stock visuals are [choice]s (nothing public says how Pictory picks
them): a scene lasts ``SECONDS_PER_WORD`` per spoken word (at least ``MIN_SCENE_S``), or the sum
of its ``backgroundVideoSegments`` when it has no voice-over, or its ``minimumDuration`` if longer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.simulator.answers import invalid_body

SECONDS_PER_WORD = 0.4
"""[choice] Voice-over pace used to time a scene from its text."""
MIN_SCENE_S = 2.0
"""[choice] The shortest scene."""
OUTPUT = {"format": "mp4", "width": 1920, "height": 1080}
"""[choice] ``output`` of a preview without ``videoWidth``/``videoHeight``."""
VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".m4v")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")
_TAG_RE = re.compile(r"<[^>]*>")

LinkMaker = Callable[[str], str]
"""``stock_url(seed)``: a deterministic stock visual URL for a scene without one."""


def _words(text: str) -> int:
    return len(_TAG_RE.sub(" ", text).split())


def scene_time_s(text: str) -> float:
    return round(max(MIN_SCENE_S, SECONDS_PER_WORD * _words(text)), 3)


def _legacy_scene(text_lines: list[str], visual: dict[str, Any], time_s: float) -> dict[str, Any]:
    return {
        "background": {"src": [visual]},
        "time": time_s,
        "sub_scenes": [{"time": time_s, "text_lines": [{"text": t} for t in text_lines]}],
        "subtitles": [{"text": t, "time": round(time_s / len(text_lines), 3)} for t in text_lines]
        if text_lines
        else [],
    }


def _visual(url: str, kind: str, *, loop: bool, mute: bool) -> dict[str, Any]:
    return {"url": url, "type": kind, "loop_video": loop, "mute": mute}


def _kind_of(url: str) -> str:
    return "video" if url.split("?", 1)[0].lower().endswith(VIDEO_EXTENSIONS) else "image"


def template_render_params(
    name: str,
    audio: Mapping[str, Any],
    scene_texts: list[tuple[list[str], Mapping[str, Any]]],
    *,
    tts_url: str,
    stock_url: LinkMaker,
) -> dict[str, Any]:
    """renderParams of a from-template preview: one legacy scene per template scene.

    ``scene_texts`` holds, per scene, its filled-in subtitle lines and its ``backgroundVisual``.
    [choice] ``tts`` is present when the project chose a voice-over track, ``src`` (music) when it
    chose a music track (keys of the ``.pictai`` project's ``audio``, as in Pictory's sample).
    """
    scenes = []
    for i, (lines, visual) in enumerate(scene_texts):
        url = str(visual.get("visualUrl") or "") or stock_url(f"{name}:{i}")
        kind = str(visual.get("type") or _kind_of(url))
        time_s = scene_time_s(" ".join(lines))
        src = _visual(url, kind, loop=kind == "video", mute=True)
        scenes.append(_legacy_scene(lines, src, time_s))
    voice = bool(audio.get("selectedVoiceOverTrack") or audio.get("aiVoiceOver"))
    music = str(audio.get("selectedTrackUrl") or "")
    return _envelope(name, _audio(music, tts_url if voice else ""), dict(OUTPUT), scenes)


def _audio(music_url: str, tts_url: str, music_volume: float = 0.5) -> dict[str, Any]:
    audio: dict[str, Any] = {"video_volume": 1}
    if music_url:
        audio["src"] = music_url
        audio["track_volume"] = music_volume
    if tts_url:
        audio["tts"] = tts_url
    return audio


def _envelope(
    name: str, audio: dict[str, Any], output: dict[str, Any], scenes: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "audio": audio,
        "output": {"name": name, **output},
        "scenes": scenes,
        "next_generation_video": True,
        "containsTextToImage": True,
    }


def split_scene_text(scene: Mapping[str, Any]) -> list[str]:
    """The scene's text as the storyboard splits it into scenes.

    [choice] ``splitTextOnPeriod`` (default true, as the samples send it) splits after ``.``, ``!``
    or ``?``; ``splitTextOnNewLine`` (default false) splits on new lines. A scene from an
    ``article_url`` [sample P ``blogtovideo``] becomes one scene of simulated article text.
    """
    text = scene.get("text")
    if not isinstance(text, str):
        url = str(scene.get("article_url") or "")
        text = f"This is the simulated article at {url}. It has two sentences."
    parts = [text]
    if scene.get("splitTextOnNewLine", False) is True:
        parts = [p for part in parts for p in part.splitlines()]
    if scene.get("splitTextOnPeriod", True) is True:
        parts = [p for part in parts for p in _SENTENCE_RE.split(part)]
    return [p.strip() for p in parts if p.strip()] or [text]


def _segments_s(scene: Mapping[str, Any]) -> float:
    total = 0.0
    for seg in scene.get("backgroundVideoSegments") or []:
        total += max(0.0, float(seg["end"]) - float(seg["start"]))
    return total


def storyboard_render_params(
    body: Mapping[str, Any], *, tts_url: str, music_url: str, stock_url: LinkMaker
) -> dict[str, Any]:
    """renderParams of a v1 storyboard preview (body already checked by ``check_storyboard``)."""
    name = str(body.get("videoName") or "storyboard")
    scenes: list[dict[str, Any]] = []
    any_voice = False
    for i, scene in enumerate(body["scenes"]):
        voice = scene.get("voiceOver", True) is not False
        any_voice = any_voice or voice
        uri = scene.get("backgroundUri") or ""
        kind = str(scene.get("backgroundType") or (_kind_of(uri) if uri else "video"))
        for j, text in enumerate(split_scene_text(scene)):
            url = uri or stock_url(hashlib.sha256(f"{name}:{i}:{j}:{text}".encode()).hexdigest())
            src = _visual(
                url,
                kind,
                loop=scene.get("loopBackgroundVideo", kind == "video") is not False,
                mute=scene.get("muteBackgroundVideo", voice) is not False,
            )
            segments = [
                {"start": float(s["start"]), "end": float(s["end"])}
                for s in scene.get("backgroundVideoSegments") or []
            ]
            if segments:
                src["start"], src["end"] = segments[0]["start"], segments[-1]["end"]
            silent_cut = bool(segments) and not voice
            time_s = round(_segments_s(scene), 3) if silent_cut else scene_time_s(text)
            minimum = scene.get("minimumDuration")
            if isinstance(minimum, int | float) and minimum > time_s:
                time_s = round(float(minimum), 3)
            scenes.append(_legacy_scene([text], src, time_s))
    audio_in = body.get("audio") if isinstance(body.get("audio"), dict) else {}
    assert isinstance(audio_in, dict)
    music = music_url if audio_in.get("autoBackgroundMusic") in (True, "true") else ""
    voice_uri = str(audio_in.get("voiceOverUri") or "")
    tts = voice_uri or (tts_url if any_voice and audio_in.get("aiVoiceOver") else "")
    volume = audio_in.get("backGroundMusicVolume", 0.5)
    audio = _audio(music, tts, float(volume) if isinstance(volume, int | float) else 0.5)
    output = dict(OUTPUT)
    for key, field in (("width", "videoWidth"), ("height", "videoHeight")):
        if isinstance(body.get(field), int):
            output[key] = body[field]
    return _envelope(name, audio, output, scenes)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_storyboard(body: Mapping[str, Any]) -> None:
    """Refuse a v1 storyboard body the way the API documents (400 INVALID_REQUEST_BODY, §1).

    Required [sample N ``text_to_video/*``, P ``blogtovideo``, ``audiotovideobroll``, N
    ``videohighlights``, ``visualtovideo``]: ``scenes``, a non-empty list of objects, each with a
    non-empty ``text`` or an ``article_url``. Checked where present: ``videoName`` a string,
    ``backgroundUri`` a string, ``backgroundType`` ``image``|``video``,
    ``backgroundVideoSegments`` a list of ``{start, end}`` numbers with ``0 <= start < end``,
    ``audio`` an object. [choice] Other fields are accepted and ignored, like the v2 routes'
    "unknown fields dropped" [sample S].
    """
    name = body.get("videoName")
    if name is not None and not isinstance(name, str):
        raise invalid_body("field 'videoName' must be a string")
    if "audio" in body and not isinstance(body["audio"], dict):
        raise invalid_body("field 'audio' must be an object")
    scenes = body.get("scenes")
    if not isinstance(scenes, list) or not scenes:
        raise invalid_body(
            "field 'scenes' is required: a non-empty list of {\"text\": ...} "
            'or {"article_url": ...}'
        )
    for i, scene in enumerate(scenes):
        where = f"scenes[{i}]"
        if not isinstance(scene, dict):
            raise invalid_body(f"{where} must be an object")
        text, article = scene.get("text"), scene.get("article_url")
        if not (isinstance(text, str) and text.strip()) and not (
            isinstance(article, str) and article.strip()
        ):
            raise invalid_body(f"{where} needs a non-empty 'text' (or an 'article_url')")
        uri = scene.get("backgroundUri")
        if uri is not None and not isinstance(uri, str):
            raise invalid_body(f"{where}.backgroundUri must be a URL string")
        kind = scene.get("backgroundType")
        if kind is not None and kind not in ("image", "video"):
            raise invalid_body(f"{where}.backgroundType must be 'image' or 'video'")
        segments = scene.get("backgroundVideoSegments")
        if segments is None:
            continue
        if not isinstance(segments, list):
            raise invalid_body(f"{where}.backgroundVideoSegments must be a list of {{start, end}}")
        for j, seg in enumerate(segments):
            if not (
                isinstance(seg, dict)
                and _number(seg.get("start"))
                and _number(seg.get("end"))
                and 0 <= seg["start"] < seg["end"]
            ):
                raise invalid_body(
                    f"{where}.backgroundVideoSegments[{j}] must be {{start, end}} seconds "
                    "with 0 <= start < end"
                )
