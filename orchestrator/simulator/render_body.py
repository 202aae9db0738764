"""``POST /v1/video/render`` bodies: checked, measured, summarised (``pictory-api.md`` §5.3, §5.7).

Two documented shapes arrive here, both renderParams: the direct video-edit body of §5.3 (b)
(``audio: {}``, ``scenes[].background.src[{url, type: "video", start, end, mute}]``, ``time``,
``sub_scenes[].text_lines[]``, ``output``, flags) and a legacy preview's renderParams (§5.7),
which a sample program posts back (§5.3 a). [choice] The checks: ``scenes`` a non-empty list of
objects; each scene's ``background.src`` a non-empty list of objects with a non-empty ``url``;
``start``/``end`` numbers with 0 ≤ start < end when given; ``time`` a positive number when
given; ``sub_scenes`` a list of objects whose ``text_lines`` are ``{text: string}``; ``audio``
and ``output`` objects when given. A malformed body is 400 ``INVALID_REQUEST_BODY`` naming the
field.

[choice] The video's length is Σ scene ``time`` (a scene without ``time``: its first source's
``end − start``, else 0). The render's MP4 carries the cut (each scene's first source ``url``,
``start``, ``end``, ``time`` and text) so a test can see which segments were kept.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.simulator.answers import invalid_body


def check(body: dict[str, Any]) -> None:
    """400 naming the first malformed field, else nothing."""
    scenes = body.get("scenes")
    if not isinstance(scenes, list) or not scenes:
        raise invalid_body("field 'scenes' is required: a non-empty list of scenes")
    for key in ("audio", "output"):
        if key in body and not isinstance(body[key], dict):
            raise invalid_body(f"field '{key}' must be an object")
    for i, scene in enumerate(scenes):
        _check_scene(scene, f"scenes[{i}]")


def _check_scene(scene: Any, where: str) -> None:
    if not isinstance(scene, dict):
        raise invalid_body(f"field '{where}' must be an object")
    background = scene.get("background")
    src = background.get("src") if isinstance(background, dict) else None
    if not isinstance(src, list) or not src:
        raise invalid_body(
            f"field '{where}.background.src' is required: a non-empty list of "
            '{"url", "type", ...}'
        )
    for j, item in enumerate(src):
        here = f"{where}.background.src[{j}]"
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
            raise invalid_body(f"field '{here}.url' is required (a non-empty string)")
        start, end = item.get("start"), item.get("end")
        for key, value in (("start", start), ("end", end)):
            if value is not None and not _is_number(value):
                raise invalid_body(f"field '{here}.{key}' must be a number of seconds")
        if isinstance(start, int | float) and isinstance(end, int | float) and not 0 <= start < end:
            raise invalid_body(f"fields '{here}.start'/'end' must satisfy 0 <= start < end")
    time_s = scene.get("time")
    if time_s is not None and (not _is_number(time_s) or time_s <= 0):
        raise invalid_body(f"field '{where}.time' must be a positive number of seconds")
    sub_scenes = scene.get("sub_scenes", [])
    if not isinstance(sub_scenes, list):
        raise invalid_body(f"field '{where}.sub_scenes' must be a list")
    for k, sub in enumerate(sub_scenes):
        lines = sub.get("text_lines", []) if isinstance(sub, dict) else None
        if not isinstance(lines, list) or not all(
            isinstance(line, dict) and isinstance(line.get("text"), str) for line in lines
        ):
            raise invalid_body(
                f"field '{where}.sub_scenes[{k}].text_lines' must be a list of {{\"text\": ...}}"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cut(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Per scene: its first source's ``url``, ``start``, ``end``, its length ``time`` and text."""
    summary = []
    for scene in body["scenes"]:
        first = scene["background"]["src"][0]
        start, end = first.get("start"), first.get("end")
        time_s = scene.get("time")
        if time_s is None:
            time_s = end - start if _is_number(start) and _is_number(end) else 0
        texts = [
            line["text"]
            for sub in scene.get("sub_scenes", [])
            for line in sub.get("text_lines", [])
        ]
        summary.append(
            {
                "url": first["url"],
                "start": start,
                "end": end,
                "time": time_s,
                "text": " ".join(texts),
            }
        )
    return summary


def length_s(scenes: list[dict[str, Any]]) -> float:
    """The video's length: Σ scene ``time`` of ``cut``."""
    return round(sum(float(s["time"]) for s in scenes), 3)


def cues(payload_json: str) -> list[tuple[float, float, str]] | None:
    """``(start_s, end_s, text)`` per scene of a params render, from its recorded cut; None if
    ``payload_json`` (a render's payload fragment) has no cut."""
    scenes = json.loads("{" + payload_json + "}").get("scenes") if payload_json else None
    if not isinstance(scenes, list):
        return None
    found, clock_s = [], 0.0
    for scene in scenes:
        end_s = clock_s + float(scene["time"])
        if scene["text"]:
            found.append((round(clock_s, 3), round(end_s, 3), scene["text"]))
        clock_s = end_s
    return found
