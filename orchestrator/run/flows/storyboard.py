"""The storyboard flow: a script becomes a video.

Fields: ``text`` or ``text_file`` (one of them, required), ``video_name``, ``voice``, ``language``,
``style``, ``ai_visual`` (an AI model: every scene's visual made by it) and ``avatar_id`` (an avatar
id), which cost AI credits (``contract.ai_credits``) and need the v2 storyboard route (an API
key, or ``--direct``). Stages: storyboard preview → render → download; with ``--direct``:
render (one ``POST /v2/video/storyboard/render`` with the v2 storyboard body, §5.9) → download.

The preview body is v1's with client credentials (``storyboard_v1``) and v2's with an API key
(``storyboard_v2.payload``): the client's ``video_routes`` picks (contract §5.6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.contract import ai_credits
from orchestrator.input.flows import (
    MAX_TEXT_FILE_BYTES,
    BeforeSend,
    FieldProblem,
    Flow,
    Stage,
    local_path,
)
from orchestrator.input.local_files import LocalFiles
from orchestrator.input.rows import RowJob
from orchestrator.run.flows import storyboard_v2
from orchestrator.run.flows.template import preview_progress
from orchestrator.run.stages.base import Services
from orchestrator.run.stages.download import download
from orchestrator.run.stages.render import render, render_preview
from orchestrator.run.stages.storyboard import storyboard_preview

FIELDS = ("text", "text_file", "video_name", "voice", "language", "style", "ai_visual", "avatar_id")


def check(fields: Mapping[str, str], manifest_path: Path, files: LocalFiles) -> list[FieldProblem]:
    text = fields.get("text", "").strip()
    text_file = fields.get("text_file", "").strip()
    if text and text_file:
        return [("text_file", "give either text or text_file, not both", None, "flow")]
    if not text and not text_file:
        return [
            (
                "text",
                "a storyboard row needs its script in 'text' (or a 'text_file' path)",
                "paste the script, or name a UTF-8 .txt file",
                "missing",
            )
        ]
    if text_file:
        refused = files.check(text_file, manifest_path, "text")
        if refused is not None:
            return [("text_file", refused, None, "path")]
        path = local_path(text_file, manifest_path)
        if not path.is_file():
            return [
                (
                    "text_file",
                    f"text file {text_file!r} not found",
                    "check the path (relative paths start at the manifest's folder)",
                    "file",
                )
            ]
        if path.stat().st_size > MAX_TEXT_FILE_BYTES:
            return [("text_file", f"text file {text_file!r} is over 1 MiB", None, "file")]
        try:
            if not path.read_text(encoding="utf-8").strip():
                return [("text_file", f"text file {text_file!r} is empty", None, "empty")]
        except UnicodeDecodeError:
            return [
                ("text_file", f"text file {text_file!r} is not UTF-8", "save it as UTF-8", "file")
            ]
    model = fields.get("ai_visual", "").strip()
    if model and model not in ai_credits.MODELS:
        models = ", ".join(ai_credits.MODELS)
        return [("ai_visual", f"unknown AI model {model!r}", f"use one of: {models}", "flow")]
    return storyboard_v2.rule_problems(fields, manifest_path, files)


def stages(direct: bool) -> Sequence[tuple[str, Stage]]:
    if direct:
        return [("render", render), ("download", download)]
    return [("preview", storyboard_preview), ("render", render), ("download", download)]


async def send_direct(
    row: RowJob, svc: Services, webhook: str | None, before_send: BeforeSend
) -> str:
    """``POST /v2/video/storyboard/render`` with the row's v2 storyboard body (§5.9)."""
    body = storyboard_v2.payload(
        row.variables, row.manifest or Path("."), Path(row.output_name).stem, svc.files(row)
    )
    return await svc.client.render_direct(
        body,
        webhook=webhook,
        webhook_input=svc.webhook_input(row, "render"),
        before_send=before_send,
    )


FLOW = Flow(
    name="storyboard",
    fields=FIELDS,
    stages=stages,
    send_render=render_preview,
    send_direct=send_direct,
    check=check,
    progress=preview_progress,
)
