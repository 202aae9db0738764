"""The storyboard body for API-key accounts: ``POST /v2/video/storyboard`` (contract §5.6, §5.9).

The v2 storyboard speaks another scene shape than v1's (``storyboard_v1.payload``): the text
of a scene is ``story`` (v1: ``text``), splitting is ``createSceneOnNewLine`` /
``createSceneOnEndOfSentence`` (v1: ``splitTextOnNewLine`` / ``splitTextOnPeriod``), and the
voice is one top-level ``voiceOver {enabled, aiVoices[{speaker, speed}]}`` (v1:
``audio.aiVoiceOver`` plus a per-scene ``voiceOver`` flag). Sources: docs.pictory.ai "Create
Storyboard Preview" (the top-level fields), ``pictoryai/pictory-claude-skills``
``references/request-schema.md`` (scene fields; "exactly one content source: story, ..."),
sample N ``text_to_video_v2/bulletin_style`` (``story``, ``videoName``, ``language``).

The row's fields map as in v1: one scene per paragraph, split into scenes at sentence ends
(v1 sends ``splitTextOnPeriod: true``); ``voice`` names the AI speaker. [choice] The row's
``style`` becomes ``subtitleStyleName`` (the v2 routes take a subtitle style by name; v1 had only
a loose ``style`` key). ``ai_visual`` (an AI model) gives every scene a ``background`` with an
``aiVisual`` of that model, its prompt left to Pictory (made from the scene's story [doc]);
``avatar_id`` (an avatar id, ``GET /v1/avatars``) is the top-level ``avatar.avatarId``: both cost AI
credits (``contract.ai_credits``). [choice] No ``voice`` sends ``voiceOver: {"enabled": false}``
explicitly (a silent video, as v1's ``voiceOver: false`` scenes are); the docs say an omitted
``voiceOver`` is silent too.

``rule_problems`` checks the body a row would send against Pictory's rules
(``contract.storyboard_body``, §6.3), the same model the simulator answers 400 from, and names
each problem by the row's column. [choice] ``validate`` applies it to every storyboard row,
whatever the account: the v1 storyboard route publishes no limits of its own, and a batch may
move to an API key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.contract import ai_credits, storyboard_body
from orchestrator.input.flows import DEFAULT_LANGUAGE, FieldProblem, script_text
from orchestrator.input.local_files import LocalFiles

VOICE_SPEED = 100
"""``aiVoices[].speed``: 100 is the documented default (50–200), as v1 sends it."""


def script_paragraphs(
    fields: Mapping[str, str], manifest_path: Path, files: LocalFiles
) -> list[str]:
    """The row's script (``text``, else the ``text_file`` it names) split at blank lines."""
    text = script_text(fields, manifest_path, files)
    return [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def payload(
    fields: Mapping[str, str], manifest_path: Path, default_name: str, files: LocalFiles
) -> dict[str, Any]:
    """The ``POST /v2/video/storyboard`` body of a storyboard row."""
    voice = fields.get("voice", "").strip()
    body: dict[str, Any] = {
        "videoName": fields.get("video_name", "").strip() or default_name,
        "language": fields.get("language", "").strip() or DEFAULT_LANGUAGE,
        "voiceOver": (
            {"enabled": True, "aiVoices": [{"speaker": voice, "speed": VOICE_SPEED}]}
            if voice
            else {"enabled": False}
        ),
        "scenes": [
            {"story": p, "createSceneOnNewLine": False, "createSceneOnEndOfSentence": True}
            for p in script_paragraphs(fields, manifest_path, files)
        ],
    }
    style = fields.get("style", "").strip()
    if style:
        body["subtitleStyleName"] = style
    model = fields.get("ai_visual", "").strip()
    if model:
        for scene in body["scenes"]:
            scene["background"] = ai_credits.background(model)
    avatar = fields.get("avatar_id", "").strip()
    if avatar:
        body["avatar"] = {"avatarId": avatar}
    return body


_COLUMNS = {
    "videoName": "video_name",
    "language": "language",
    "subtitleStyleName": "style",
    "avatar": "avatar_id",
}
"""The body fields a storyboard row's columns fill (besides the script and the voice)."""
_HINTS = {
    "story": "shorten it, or split it with blank lines: each paragraph becomes a scene",
    "avatar": "give the row a voice: the avatar speaks the voice-over",
}


def rule_problems(
    fields: Mapping[str, str], manifest_path: Path, files: LocalFiles
) -> list[FieldProblem]:
    """Every rule of Pictory's the row's body would break, by column: ``(column, "story: 15,342
    characters, Pictory allows 15,000", hint, "pictory-rule")``."""
    body = payload(fields, manifest_path, "row", files)
    _, problems = storyboard_body.check(body)
    script = "text" if fields.get("text", "").strip() else "text_file"
    many = len(body["scenes"]) > 1
    found: list[FieldProblem] = []
    for problem in problems:
        head, _, rest = problem.name.partition(".")
        column: str | None = _COLUMNS.get(problem.name)
        name, leaf = problem.name, problem.name.rpartition(".")[2]
        if head.startswith("scenes["):  # scenes[3].story: "story (paragraph 4)"
            column = script
            name = rest or "scene"
            index = head[len("scenes[") : -1]
            if many and index.isdigit():
                name += f" (paragraph {int(index) + 1})"
        elif head == "scenes":
            column = script
        elif head == "voiceOver":
            column = "voice"
        message = problem.text if name == column else f"{name}: {problem.text}"
        found.append((column, message, _HINTS.get(leaf), "pictory-rule"))
    return found
