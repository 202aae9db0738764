"""Jobs as ``GET /v1/jobs/{id}`` answers them (webhooks carry the same JSON).

Legacy shapes by default: a finished preview has no ``status``, only ``preview`` and
``renderParams``. With ``new_shapes`` it also says ``status: completed``.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.simulator import media, render_body, transcripts
from orchestrator.simulator.core import Simulator, render_box_payload
from orchestrator.simulator.jobs import Job, JobKind, Phase

OUTPUT = {"format": "mp4", "width": 1280, "height": 720}
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
                "error_code": f"{job.kind.value.upper()}_FAILED",
                "error_message": f"simulated {job.kind.value} failure (fault job_failed); "
                "create the job again",
            },
        }
    return {"job_id": job.job_id, "success": True, "data": _data(sim, job, phase, now)}


def _data(sim: Simulator, job: Job, phase: Phase, now: float) -> dict[str, Any]:
    if phase is Phase.PENDING:
        return {"status": "pending", "renderProgress": 0, "renderState": "QUEUED"}
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
            "preview": sim.link("previews", f"{job.job_id}.mp4", now),
            "renderParams": render_params(job),
        }
        if sim.settings.new_shapes:
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
        "shareVideoURL": video,
        "videoShareURL": video,
        "thumbnail": sim.link("thumbnails", f"{job.job_id}.png", now),
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
    return answer


def render_params(preview: Job) -> dict[str, Any]:
    """What a finished preview offers to render with."""
    if preview.storyboard:
        body = json.loads(preview.payload_json)
        scenes = body.get("scenes") if isinstance(body.get("scenes"), list) else []
        audio = body.get("audio") if isinstance(body.get("audio"), dict) else {}
        name = str(body.get("videoName") or "storyboard")
    else:
        template = preview.template
        assert template is not None
        variables = json.loads(preview.payload_json)
        scenes = [
            {
                "sceneId": scene["sceneId"],
                "text": " ".join(template.texts_of(scene, variables)),
                "backgroundVisual": scene["backgroundVisual"],
            }
            for scene in template.scenes
        ]
        audio, name = template.audio, template.name
    return {
        "audio": audio,
        "output": {"name": name, **OUTPUT},
        "scenes": scenes,
        "next_generation_video": True,
        "containsTextToImage": True,
    }


def video_lines(job: Job) -> list[str]:
    """The text spoken in a render (for its subtitle files)."""
    preview = job.preview
    if preview is None:
        return ["Rendered from renderParams by the Pictory simulator."]
    if preview.storyboard:
        scenes = json.loads(preview.payload_json).get("scenes") or []
        return [str(s.get("text", "")) for s in scenes if isinstance(s, dict)]
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
    if kind == "previews" and job.kind is JobKind.PREVIEW:
        return media.free_box(f'{{"simulator":"orchestrator","preview_job_id":"{job.job_id}"}}')
    return None
