"""The video-edit flow: a recording is transcribed and cut.

Fields: ``video`` (a local file or an http(s) URL; required), ``language``, ``highlights`` (seconds
of highlights to keep; empty = the whole video), ``video_name``. Stages: upload → transcription →
highlights (when asked) → render (a renderParams body cutting the source, §5.3 b) → download (the
video and ``.srt``/``.vtt``/``.txt`` beside it). It has no direct route: ``--direct`` leaves it
as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.input.flows import (
    BeforeSend,
    FieldProblem,
    Flow,
    Stage,
    is_url,
    local_path,
)
from orchestrator.input.local_files import LocalFiles
from orchestrator.input.rows import RowJob
from orchestrator.ledger.records import JsonObject
from orchestrator.ledger.row_state import RowState
from orchestrator.run.flows import transcript
from orchestrator.run.flows.transcript import Span
from orchestrator.run.stages.base import Services
from orchestrator.run.stages.download import download
from orchestrator.run.stages.render import render
from orchestrator.run.stages.transcribe import transcribe
from orchestrator.run.stages.upload import upload

FIELDS = ("video", "language", "highlights", "video_name")


def check(fields: Mapping[str, str], manifest_path: Path, files: LocalFiles) -> list[FieldProblem]:
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
    elif refused := files.check(video, manifest_path, "video"):
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


def render_body(
    fields: Mapping[str, str], source_url: str, spans: list[Span], default_name: str
) -> JsonObject:
    """The ``POST /v1/video/render`` body for a video-edit row: the source video cut to ``spans``
    (every sentence, or the highlights), its own sound kept (§5.3 b, see ``transcript``)."""
    name = fields.get("video_name", "").strip() or default_name
    return transcript.render_body(source_url, spans, name)


def stages(direct: bool) -> Sequence[tuple[str, Stage]]:
    return [
        ("upload", upload),
        ("transcribe", transcribe),
        ("render", render),
        ("download", partial(download, with_subtitles=True)),
    ]


async def send_render(
    row: RowJob, svc: Services, webhook: str | None, before_send: BeforeSend
) -> str:
    """``POST /v1/video/render`` (v2 with an API key): the source cut to the row's spans."""
    source_url = svc.state(row).source_url
    assert source_url is not None  # the upload stage recorded it
    body = render_body(
        row.variables, source_url, row.progress.spans or [], Path(row.output_name).stem
    )
    return await svc.client.render_params(body, webhook=webhook, before_send=before_send)


def progress(state: RowState) -> str | None:
    if state.aux_jobs:
        return "transcribing"
    if state.source_url is not None:
        return "uploaded"
    return None


FLOW = Flow(
    name="video-edit",
    fields=FIELDS,
    stages=stages,
    send_render=send_render,
    check=check,
    progress=progress,
)
