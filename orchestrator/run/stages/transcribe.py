"""Stage 2 of the video-edit flow: transcribe the uploaded video, then (when the row asks for
``highlights``) pick the highlights. Both jobs bill nothing (see ``stages.unbilled``); their ids go
to the ledger, so a resumed row re-attaches instead of asking again, and one that failed, got
stuck or is no longer known (``cleaned`` after retention) is simply made again.

The highlights request carries the transcription's ``data.transcript`` unchanged (§5.1). The
result is the cut (``row.progress.spans``: what the render keeps, see ``run.flows.transcript``)
and the subtitles to fall back on when the render offers none (``row.progress.cut_subtitles``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from orchestrator.api.responses import JobState
from orchestrator.errors import PermanentError
from orchestrator.input import flows
from orchestrator.ledger.records import AuxJob
from orchestrator.run.flows import transcript
from orchestrator.run.stages.base import RowJob, Services
from orchestrator.run.stages.preview import remaking_previews
from orchestrator.run.stages.unbilled import create_unbilled_job


async def transcribe(row: RowJob, svc: Services) -> None:
    """Transcribe (and pick highlights); a job that failed, got stuck or was cleaned is made
    again like a preview (``preview.remaking_previews``): these jobs bill nothing."""

    async def make() -> None:
        await _transcribe(row, svc)

    await remaking_previews(row, svc, make, what="transcription")


async def _transcribe(row: RowJob, svc: Services) -> None:
    state = svc.state(row)
    if state.render_job is not None or state.video_url is not None:
        return
    assert state.source_url is not None
    source_url = state.source_url
    language = row.variables.get("language", "").strip() or flows.DEFAULT_LANGUAGE

    async def send_transcription() -> str:
        return await svc.client.create_transcription(
            source_url, language, webhook=svc.webhook_url(row, "transcription")
        )

    transcribed = await _job(row, svc, "transcription", send_transcription)
    highlighted: JobState | None = None
    seconds = row.variables.get("highlights", "").strip()
    if seconds:
        sentences = transcribed.transcript or []

        async def send_highlights() -> str:
            return await svc.client.create_highlights(
                sentences, float(seconds), webhook=svc.webhook_url(row, "highlights")
            )

        highlighted = await _job(row, svc, "highlights", send_highlights)
    plan_cut(row, transcribed, highlighted)


def plan_cut(row: RowJob, transcribed: JobState, highlighted: JobState | None) -> None:
    """Decide what the render keeps and which subtitles go with it (into ``row.progress``).

    A whole-video edit keeps every sentence, so the transcription's own ``srt``/``vtt``/``txt``
    (§5.2) fit the cut. A highlights cut does not have the source's timings: [choice] its fallback
    subtitles are built from the kept words, re-timed to the cut.
    """
    if highlighted is None:
        spans = transcript.whole_spans(transcribed.transcript or [], transcribed.media_duration_s)
    else:
        spans = transcript.highlight_spans(highlighted.transcript or [])
    if not spans:
        what = "marked no highlighted words" if highlighted else "found no spoken words"
        raise PermanentError(
            f"the {'highlights' if highlighted else 'transcription'} job {what}; "
            "nothing to cut, so no render was sent",
            endpoint="GET /v1/jobs",
        )
    subtitles = {kind: transcript.subtitles(spans, kind) for kind in transcript.SUBTITLE_KINDS}
    if highlighted is None:
        subtitles.update(transcribed.subtitle_texts)
    row.progress.spans = spans
    row.progress.cut_subtitles = subtitles


async def _job(
    row: RowJob, svc: Services, stage: str, send: Callable[[], Awaitable[str]]
) -> JobState:
    state = svc.state(row)
    job_id = (state.aux_jobs or {}).get(stage)
    fresh = job_id is None
    if job_id is None:
        job_id = await create_unbilled_job(row, svc, stage, send)
        await svc.ledger.append(AuxJob(row=row.row_id, stage=stage, job=job_id))
        svc.sink.emit("stage", row=row.row_id, stage=stage, job=job_id)
    return await svc.wait_job(
        job_id,
        stage=stage,
        interval_s=svc.poll.preview_interval_s,
        deadline_s=svc.poll.preview_deadline_s,
        fresh=fresh,
    )


async def cut_subtitles(row: RowJob, svc: Services) -> dict[str, str]:
    """The fallback subtitles of ``plan_cut``; on a resumed row (no progress yet) rebuilt from the
    ledger's transcription and highlights jobs. Empty when those jobs are gone."""
    found = row.progress.cut_subtitles
    if found is not None:
        return dict(found)
    aux = svc.state(row).aux_jobs or {}
    if "transcription" not in aux:
        return {}
    transcribed = await svc.client.get_job(aux["transcription"])
    highlighted = await svc.client.get_job(aux["highlights"]) if "highlights" in aux else None
    if transcribed.status != "completed" or (highlighted and highlighted.status != "completed"):
        return {}
    try:
        plan_cut(row, transcribed, highlighted)
    except PermanentError:
        return {}
    return dict(row.progress.cut_subtitles or {})
