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
a loose ``style`` key). [choice] No ``voice`` sends ``voiceOver: {"enabled": false}`` explicitly
(a silent video, as v1's ``voiceOver: false`` scenes are); the docs say an omitted ``voiceOver`` is
silent too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.input.flows import DEFAULT_LANGUAGE, script_text
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
    return body
