"""The storyboard body for client-credential accounts: ``POST /v1/video/storyboard`` (contract
§5.6): one scene per paragraph of the row's script. The v2 body: ``storyboard_v2``.

Kept apart from the flow module so the storyboard stage, which the flow module imports, can build
the body without importing the flow back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import PermanentError
from orchestrator.input.flows import DEFAULT_LANGUAGE, script_text
from orchestrator.input.local_files import LocalFiles
from orchestrator.ledger.records import JsonObject


def payload(
    fields: Mapping[str, str], manifest_path: Path, default_name: str, files: LocalFiles
) -> JsonObject:
    """The ``POST /v1/video/storyboard`` body: one scene per paragraph of the script.

    [choice] Pictory documents AI visuals and avatars (``ai_visual``, ``avatar_id``) only on the v2
    storyboard routes (§6.3), so a row asking for them fails here, before anything is sent, with
    what to do: the v1 body has no published place for them."""
    asked = [name for name in ("ai_visual", "avatar_id") if fields.get(name, "").strip()]
    if asked:
        raise PermanentError(
            f"{' and '.join(asked)} need Pictory's v2 storyboard route: run with an API key "
            "(PICTORY_API_KEY) or with --direct",
            endpoint="POST /v1/video/storyboard",
        )
    text = script_text(fields, manifest_path, files)
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    voice = fields.get("voice", "").strip()
    body: JsonObject = {
        "videoName": fields.get("video_name", "").strip() or default_name,
        "language": fields.get("language", "").strip() or DEFAULT_LANGUAGE,
        "scenes": [
            {
                "text": p,
                "voiceOver": bool(voice),
                "splitTextOnNewLine": False,
                "splitTextOnPeriod": True,
            }
            for p in paragraphs
        ],
    }
    if voice:
        body["audio"] = {"aiVoiceOver": {"speaker": voice, "speed": 100}}
    style = fields.get("style", "").strip()
    if style:
        body["style"] = style
    return body
