"""Stage 2 of the video-edit flow: transcribe the uploaded video, then (when the row asks for
``highlights``) pick the highlights. Both jobs bill nothing (see ``stages.unbilled``); their ids go
to the ledger, so a resumed row re-attaches instead of asking again.

The result (the transcript items to keep) is left in ``row.scratch["items"]`` for the render.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from orchestrator import flows
from orchestrator.stages.base import RowJob, Services
from orchestrator.stages.unbilled import create_unbilled_job


async def transcribe(row: RowJob, svc: Services) -> None:
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

    transcript = await _job_items(row, svc, "transcription", send_transcription, "transcript")
    seconds = row.variables.get("highlights", "").strip()
    if seconds:

        async def send_highlights() -> str:
            return await svc.client.create_highlights(
                transcript, float(seconds), webhook=svc.webhook_url(row, "highlights")
            )

        transcript = await _job_items(row, svc, "highlights", send_highlights, "highlights")
    row.scratch["items"] = transcript


async def _job_items(
    row: RowJob,
    svc: Services,
    stage: str,
    send: Callable[[], Awaitable[str]],
    key: Literal["transcript", "highlights"],
) -> list[dict[str, Any]]:
    state = svc.state(row)
    job_id = (state.aux_jobs or {}).get(stage)
    fresh = job_id is None
    if job_id is None:
        job_id = await create_unbilled_job(row, svc, stage, send)
        await svc.ledger.append({"e": "aux_job", "row": row.row_id, "stage": stage, "job": job_id})
        svc.sink.emit("stage", row=row.row_id, stage=stage, job=job_id)
    job = await svc.wait_job(
        job_id,
        stage=stage,
        interval_s=svc.poll.preview_interval_s,
        deadline_s=svc.poll.preview_deadline_s,
        fresh=fresh,
    )
    items = job.transcript if key == "transcript" else job.highlights
    return list(items or [])
