"""Jobs as ``GET /v1/jobs/{id}`` answers them (webhooks carry the same JSON).

A finished v1 preview keeps the legacy shape (§2 step 4): no ``status``, only ``preview`` (a
player page, §5.5) and ``renderParams`` (the legacy shape of §5.7, built in ``render_params``).
A v2 preview (``POST /v2/video/storyboard``) also says ``status: completed``, as documented and as
Pictory's own helper waits for (§6.2); with ``new_shapes`` every preview does. A render queued
behind the account's render cap says ``settings.queued_status`` without ``renderProgress``
(§5.4). A finished render's ``videoURL`` is the MP4; ``shareVideoURL`` and ``videoShareURL`` are
HTML viewing pages (§5.5); it also says ``progress: 100``, a JPEG ``thumbnail``, the subtitle
files, ``videoDuration`` and ``aiCreditsUsed`` (§6.2). A failed preview or render says
``TEXT_TO_VIDEO_FAILED`` with a message naming the cause (``failure_message``).
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.simulator import media, pages, render_body, render_params, stock, transcripts
from orchestrator.simulator.core import Simulator
from orchestrator.simulator.jobs import VISUAL_NOT_FOUND, Job, JobKind, Phase
from orchestrator.simulator.renders import render_box_payload

OUTPUT = render_params.OUTPUT
"""Kept under its old name for code that renders without a preview."""
TEXT_TO_VIDEO_FAILED = "TEXT_TO_VIDEO_FAILED"
"""The ``error_code`` of a failed preview or render (§6.2)."""
SUBTITLE_KINDS = ("srt", "vtt", "txt")
_SUBTITLE_KEYS = {"srt": "srtFile", "vtt": "vttFile", "txt": "txtFile"}


def job_body(sim: Simulator, job: Job, now: float) -> dict[str, Any]:
    """The whole answer for ``job`` at ``now``."""
    phase = job.phase(now)
    if phase is Phase.FAILED:
        return {
            "job_id": job.job_id,
            "success": False,
            "data": {
                "status": "failed",
                "error_code": failure_code(job),
                "error_message": failure_message(job),
            },
        }
    return {"job_id": job.job_id, "success": True, "data": _data(sim, job, phase, now)}


def _data(sim: Simulator, job: Job, phase: Phase, now: float) -> dict[str, Any]:
    if phase is Phase.PENDING:
        return {"status": sim.settings.queued_status}
    if phase is Phase.RUNNING:
        if job.kind is not JobKind.RENDER:
            return {"status": "in-progress"}
        return {
            "status": "in-progress",
            "renderProgress": job.progress_pct(now),
            "renderProgressMessage": "Rendering scenes",
            "renderState": "RUNNING",
        }
    if job.kind is JobKind.PREVIEW:
        data: dict[str, Any] = {
            "preview": pages.page_url(sim, job),
            "renderParams": preview_render_params(sim, job, now),
        }
        if sim.settings.new_shapes or job.v2:  # v2 previews: the documented shape (§6.2)
            data = {"status": "completed", **data}
        return data
    if job.kind is JobKind.TRANSCRIPTION:  # §5.2
        editor = f"{sim.public_url}{transcripts.EDITOR_PREFIX}/{job.job_id}"
        return transcripts.transcription_data(job.file_url, job.language, editor)
    if job.kind is JobKind.HIGHLIGHTS:  # §5.1
        return transcripts.highlights_data(job.payload_json)
    video = sim.link("videos", f"{job.job_id}.mp4", now)
    answer: dict[str, Any] = {
        "status": "completed",
        "renderProgress": 100,
        "videoURL": video,
        "shareVideoURL": pages.page_url(sim, job),
        "videoShareURL": pages.page_url(sim, job),
        "thumbnail": sim.link("thumbnails", f"{job.job_id}.jpg", now),
        "audioURL": sim.link("audio", f"{job.job_id}.m4a", now),
    }
    form = sim.settings.render_subtitle_form
    for kind in SUBTITLE_KINDS if form != "none" else ():
        answer[_SUBTITLE_KEYS[kind]] = (
            sim.link("subtitles", f"{job.job_id}.{kind}", now)
            if form == "url"
            else render_subtitles(job, kind)
        )
    answer["videoDuration"] = job.video_duration_s
    answer["progress"] = 100
    if job.ai_credits_used or sim.settings.ai_credits_field == "always":
        answer["aiCreditsUsed"] = ai_credits(job)
    return answer


def failure_code(job: Job) -> str:
    """A failed job's ``error_code``: Pictory's ``TEXT_TO_VIDEO_FAILED`` for previews and renders
    (§6.2); [choice] ``TRANSCRIPTION_FAILED`` / ``HIGHLIGHTS_FAILED`` for the others (no
    published example)."""
    if job.kind in (JobKind.PREVIEW, JobKind.RENDER):
        return TEXT_TO_VIDEO_FAILED
    return f"{job.kind.value.upper()}_FAILED"


def failure_message(job: Job) -> str:
    """A failed job's ``error_message``, naming the cause as Pictory's do (§6.2: "The AI voice
    speaker [Timm] is invalid..."). [choice] A scene without a stock visual says
    ``SCENE_BACKGROUND_VISUAL_NOT_FOUND: ...`` (the name first, then which scene)."""
    if job.cause == VISUAL_NOT_FOUND:
        return (
            f"{VISUAL_NOT_FOUND}: no stock visual matches the search of scene 1; change the "
            "scene's text or give it a background"
        )
    return f"The simulated {job.kind.value} failed (fault job_failed); create the job again"


def ai_credits(job: Job) -> float | int:
    """A finished render's ``aiCreditsUsed``: what it was charged as it started
    (``contract.ai_credits``; setting ``ai_credits_field``), a whole number when it is one."""
    used = job.ai_credits_used
    return int(used) if used == int(used) else used


def preview_render_params(sim: Simulator, preview: Job, now: float) -> dict[str, Any]:
    """What a finished preview offers to render with (legacy shape, §5.7)."""
    tts_url = sim.link("tts", f"{preview.job_id}.m4a", now)
    if preview.storyboard:
        return render_params.storyboard_render_params(
            json.loads(preview.payload_json),
            tts_url=tts_url,
            music_url=stock.music_url(sim),
            stock_url=lambda seed: stock.stock_url(sim, seed),
        )
    template = preview.template
    assert template is not None
    variables = json.loads(preview.payload_json)
    return render_params.template_render_params(
        template.name,
        template.audio,
        [(template.texts_of(s, variables), s["backgroundVisual"]) for s in template.scenes],
        tts_url=tts_url,
        stock_url=lambda seed: stock.stock_url(sim, seed),
    )


def video_lines(job: Job) -> list[str]:
    """The text spoken in a render (for its subtitle files)."""
    preview = job.preview
    if preview is None:
        return ["Rendered from renderParams by the Pictory simulator."]
    if preview.storyboard:
        scenes = json.loads(preview.payload_json).get("scenes") or []
        return [t for s in scenes for t in render_params.split_scene_text(s)]
    assert preview.template is not None
    return preview.template.texts(json.loads(preview.payload_json))


def render_subtitles(job: Job, kind: str) -> str:
    """A render's ``srt``/``vtt``/``txt``: for a params render its scenes' text on the cut's
    clock (``render_body.cues``), else ``video_lines`` spread over the video."""
    cues = render_body.cues(job.payload_json) if job.preview is None else None
    if cues is not None:
        return transcripts.subtitle_file(cues, kind)
    return media.subtitles(video_lines(job), kind, job.video_duration_s or 1.0)


def transcript_lines(job: Job) -> list[str]:
    name = job.file_url.rsplit("/", 1)[-1].split("?", 1)[0] or "media"
    return [f"This is the simulated transcript of {name}.", "It has two sentences."]


def video_box(kind: str, job: Job) -> bytes | None:
    """The ``free`` box that makes a served MP4 unique, or None if ``job`` has no such file."""
    if kind in ("videos", "audio") and job.kind is JobKind.RENDER:
        return media.free_box(render_box_payload(job))
    if kind in ("previews", "tts") and job.kind is JobKind.PREVIEW:
        return media.free_box(f'{{"simulator":"orchestrator","preview_job_id":"{job.job_id}"}}')
    return None
