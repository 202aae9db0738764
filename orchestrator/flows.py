"""The three flows a row can take, what each needs from the row, and what it sends.

A row's flow comes from its ``flow`` column, else ``--flow`` (default ``template``):

- ``template``: every non-reserved column is a variable.
  Stages: preview (from-template) → render → download.
- ``storyboard``: ``text`` or ``text_file`` (one of them, required), ``video_name``, ``voice``,
  ``language``, ``style``. Stages: storyboard preview → render → download.
- ``video-edit``: ``video`` (a local file or an http(s) URL; required), ``language``,
  ``highlights`` (seconds of highlights to keep; empty = the whole video), ``video_name``.
  Stages: upload → transcription → highlights (when asked) → render (a direct renderParams body
  cutting the source, §5.3 b) → download (the video and ``.srt``/``.vtt``/``.txt`` beside it).

In a manifest that mixes flows every row has every column; a column that belongs to another
flow is ignored when it is empty and is an error ("mixes flows") when it holds a value. Relative
``text_file`` and ``video`` paths are taken from the manifest's folder.

A storyboard or video-edit row's identity (when it has no ``id``) is a digest of its flow and its
fields as written, so editing a text file a row points to does not make it a new row.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator import transcript
from orchestrator.local_files import LocalFiles
from orchestrator.manifest_row import ManifestRow
from orchestrator.transcript import Span

FLOWS = ("template", "storyboard", "video-edit")
FLOW_FIELDS: dict[str, tuple[str, ...]] = {
    "template": (),
    "storyboard": ("text", "text_file", "video_name", "voice", "language", "style"),
    "video-edit": ("video", "language", "highlights", "video_name"),
}
OTHER_FLOW_FIELDS = frozenset(f for fields in FLOW_FIELDS.values() for f in fields)
MAX_TEXT_FILE_BYTES = 1024 * 1024
DEFAULT_LANGUAGE = "en"

FieldProblem = tuple[str | None, str, str | None, str]
"""``(field, message, hint, kind)``, as ``validate`` reports them."""


def row_flow(flow_column: str | None, default_flow: str) -> str:
    return (flow_column or default_flow).strip().lower()


def identity_salt(flow: str) -> str:
    """Stands in for a template's content hash in the identity of non-template rows."""
    return hashlib.sha256(f"flow:{flow}".encode()).hexdigest()


def template_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """A template row's variables, without the empty columns other flows own."""
    return {k: v for k, v in variables.items() if v.strip() or k not in OTHER_FLOW_FIELDS}


def template_row(row: ManifestRow) -> ManifestRow:
    """The row with ``template_variables``: itself when it has no such columns (most rows; a
    pydantic copy per row was a sixth of the time ``validate`` takes over a million rows)."""
    variables = template_variables(row.variables)
    if len(variables) == len(row.variables):
        return row
    return row.model_copy(update={"variables": variables})


def check_fields(
    flow: str,
    fields: Mapping[str, str],
    manifest_path: Path,
    template_vars: frozenset[str],
    files: LocalFiles | None = None,
) -> list[FieldProblem]:
    """Every problem with a row's flow-specific fields (no network; files are looked at, and
    must be files the manifest may name: see ``local_files``)."""
    if flow not in FLOWS:
        return [("flow", f"unknown flow {flow!r}", f"use one of: {', '.join(FLOWS)}", "flow")]
    problems: list[FieldProblem] = []
    own = FLOW_FIELDS[flow]
    for name, value in fields.items():
        if name in own or not value.strip():
            continue
        if flow == "template" and (name in template_vars or name not in OTHER_FLOW_FIELDS):
            continue  # a template variable (or an unknown column, reported by validate)
        owner = next((f for f, names in FLOW_FIELDS.items() if name in names), None)
        problems.append(
            (
                name,
                f"this {flow} row fills {name!r}"
                + (f", a field of the {owner} flow" if owner else ", which the flow does not use"),
                "a row takes one flow: empty that cell, or set the row's flow column",
                "flow-mix",
            )
        )
    if flow in ("storyboard", "video-edit"):
        files = files or LocalFiles.for_manifest(manifest_path)
    if flow == "storyboard":
        problems += _check_storyboard(fields, manifest_path, files)
    elif flow == "video-edit":
        problems += _check_video_edit(fields, manifest_path, files)
    return problems


def _check_storyboard(
    fields: Mapping[str, str], manifest_path: Path, files: LocalFiles | None
) -> list[FieldProblem]:
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
        refused = files.check(text_file, manifest_path, "text") if files else None
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
    return []


def _check_video_edit(
    fields: Mapping[str, str], manifest_path: Path, files: LocalFiles | None
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    video = fields.get("video", "").strip()
    if not video:
        problems.append(
            (
                "video",
                "a video-edit row needs 'video': a file path or an http(s) URL",
                None,
                "missing",
            )
        )
    elif is_url(video):
        if urlsplit(video).scheme.lower() not in ("http", "https"):
            problems.append(
                ("video", f"{video!r}: only http(s) URLs can be read by Pictory", None, "file")
            )
    elif files is not None and (refused := files.check(video, manifest_path, "video")):
        problems.append(("video", refused, None, "path"))
    elif not local_path(video, manifest_path).is_file():
        problems.append(
            (
                "video",
                f"video file {video!r} not found",
                "check the path (relative paths start at the manifest's folder)",
                "file",
            )
        )
    seconds = fields.get("highlights", "").strip()
    if seconds:
        try:
            ok = float(seconds) > 0
        except ValueError:
            ok = False
        if not ok:
            problems.append(
                (
                    "highlights",
                    f"{seconds!r} is not a number of seconds",
                    "e.g. 60 for a one-minute highlight clip; leave empty for the whole video",
                    "flow",
                )
            )
    return problems


def is_url(value: str) -> bool:
    return "://" in value


def local_path(value: str, manifest_path: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else manifest_path.parent / path


def script_text(fields: Mapping[str, str], manifest_path: Path, files: LocalFiles) -> str:
    """A storyboard row's script: its ``text``, or its ``text_file`` (guarded by ``files``)."""
    text = fields.get("text", "").strip()
    if text:
        return text
    return files.path(fields["text_file"].strip(), manifest_path, "text").read_text("utf-8")


def storyboard_payload(
    fields: Mapping[str, str], manifest_path: Path, default_name: str, files: LocalFiles
) -> dict[str, Any]:
    """The ``POST /v1/video/storyboard`` body: one scene per paragraph of the script."""
    text = script_text(fields, manifest_path, files)
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    voice = fields.get("voice", "").strip()
    payload: dict[str, Any] = {
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
        payload["audio"] = {"aiVoiceOver": {"speaker": voice, "speed": 100}}
    style = fields.get("style", "").strip()
    if style:
        payload["style"] = style
    return payload


def video_edit_render_body(
    fields: Mapping[str, str], source_url: str, spans: list[Span], default_name: str
) -> dict[str, Any]:
    """The ``POST /v1/video/render`` body for a video-edit row: the source video cut to ``spans``
    (every sentence, or the highlights), its own sound kept (§5.3 b, see ``transcript``)."""
    name = fields.get("video_name", "").strip() or default_name
    return transcript.render_body(source_url, spans, name)


def content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "video/mp4"
