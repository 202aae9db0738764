"""The render stage: send the row's render (its flow says how: ``flows.Flow.send_render``, or
``send_direct`` on the direct route) and wait for it. This spends money.

Delivery contract (docs/failures.md too): the intent to render is written and fsynced *before* the
request is sent, and the job id right after the answer. So on resume a row is in one of:

- no intent: the render was never sent; send it;
- intent and job id: re-attach to that job and poll it; never send again;
- intent, no job id: the process died, or the connection dropped, between the two. We cannot know
  whether Pictory started a render, so the row is *ambiguous*: reported, and not rendered again
  unless the user says so (``--rerender-ambiguous``), which records why before sending.

A render request answered with an error (4xx, 5xx, 429 after every retry) started no job; that
failure is recorded as ``render_refused``, which clears the intent.
"""

from __future__ import annotations

from orchestrator.api.responses import JobState
from orchestrator.errors import AmbiguousError, ApiError, PermanentError
from orchestrator.input import flows
from orchestrator.input.identity import variables_digest
from orchestrator.ledger.records import RenderIntent, RenderJob, RenderReady, RenderRefused
from orchestrator.run.stages.base import (
    RowAmbiguous,
    RowDeferred,
    RowJob,
    Services,
    record_ambiguous,
    render_slot,
)


async def request_render(row: RowJob, svc: Services) -> None:
    state = svc.state(row)
    if state.render_job is not None:
        return
    if state.render_intent:
        if not svc.rerender_ambiguous:
            await record_ambiguous(row, svc, "render intent recorded without a job id")
            raise RowAmbiguous
        svc.sink.emit("rerender", row=row.row_id, reason="--rerender-ambiguous")
    if not svc.admission.take_render(row.row_id):
        raise RowDeferred("spend cap reached")
    preview_job = state.preview_job

    async def record_intent() -> None:
        await svc.ledger.append(
            RenderIntent(
                row=row.row_id,
                preview_job=preview_job,
                vars=variables_digest(row.variables),
                values=row.variables,  # what this video is made from (results.csv, reruns)
            )
        )

    webhook = svc.webhook_url(row, "render")
    flow = flows.get(row.flow)
    send = flow.send_direct if svc.direct and flow.send_direct is not None else flow.send_render
    try:
        job_id = await send(row, svc, webhook, record_intent)
    except AmbiguousError as exc:
        found = await _find_by_webhook(row, svc)
        if found is None:
            await record_ambiguous(row, svc, exc.message)
            raise RowAmbiguous from exc
        job_id = found
    except ApiError as exc:
        # Answered with an error: no job was started, so the intent is void.
        await svc.ledger.append(RenderRefused(row=row.row_id, kind=exc.kind, message=exc.message))
        raise
    await svc.ledger.append(RenderJob(row=row.row_id, job=job_id))
    row.progress.render_fresh = True
    svc.sink.emit("stage", row=row.row_id, stage="render", job=job_id)


async def render_preview(
    row: RowJob, svc: Services, webhook: str | None, before_send: flows.BeforeSend
) -> str:
    """The preview route's render (template and storyboard flows): ``PUT render/{preview}``,
    with the finished preview's ``renderParams`` when ``render_with_params``."""
    preview_job = svc.state(row).preview_job
    assert preview_job is not None  # the preview stage recorded it
    params = row.progress.render_params if svc.render_with_params else None
    return await svc.client.render(preview_job, params, webhook=webhook, before_send=before_send)


async def _finished_render(row: RowJob, svc: Services) -> JobState | None:
    """Wait for the row's render job to finish (None: the row is done already)."""
    state = svc.state(row)
    if state.status == "done":
        return None
    assert state.render_job is not None

    def progress(job: JobState) -> None:
        svc.sink.emit("render_progress", row=row.row_id, pct=job.progress_pct, status=job.status)

    job = await svc.wait_job(
        state.render_job,
        stage="render",
        interval_s=svc.poll.render_interval_s,
        deadline_s=svc.poll.render_deadline_s,
        fresh=row.progress.render_fresh,
        on_progress=progress,
    )
    if job.video_url is None:
        raise ApiError("render completed without any video URL", endpoint="GET /v1/jobs")
    return job


async def _record_ready(row: RowJob, svc: Services, job: JobState) -> None:
    """The finished render's video (and what it spent) in the ledger."""
    state = svc.state(row)
    assert state.render_job is not None and job.video_url is not None
    row.progress.video_url = job.video_url
    row.progress.subtitle_urls = job.subtitle_urls
    if state.video_url is None:
        await svc.ledger.append(
            RenderReady(
                row=row.row_id,
                job=state.render_job,
                video_url=job.video_url,
                duration_s=job.video_duration_s,
                thumbnail=job.thumbnail_url,
                share_url=job.share_url,
                credits=job.ai_credits,
                subtitles=job.subtitle_links or None,
            )
        )
        svc.admission.render_settled(row.row_id, job.video_duration_s, job.ai_credits)


async def render(row: RowJob, svc: Services) -> None:
    """The whole render stage, holding one of the account's render slots from the request
    until a read finds the render finished: the slot is handed on before the ledger write, so
    the next row's render is sent the moment the account has room for it."""
    state = svc.state(row)
    if state.video_url is not None or state.status == "done":
        return
    async with render_slot(svc.render_slots, row.row_id):
        sent_s = svc.clock.now()
        await request_render(row, svc)
        job = await _finished_render(row, svc)
        if row.progress.render_fresh:
            row.progress.render_s = svc.clock.now() - sent_s
    if job is not None:
        await _record_ready(row, svc, job)


async def _find_by_webhook(row: RowJob, svc: Services) -> str | None:
    """In webhook mode a lost render answer can be recovered: the callback for this row's render
    hook names the job. Wait for it as long as a render may take, then confirm with one
    ``GET /v1/jobs/{id}`` that our account knows that job before it is recorded."""
    if svc.webhooks is None:
        return None
    svc.sink.emit("render_lost_answer", row=row.row_id, action="waiting for its webhook")
    job = await svc.webhooks.wait_hook(row.row_id, "render", svc.poll.render_deadline_s)
    if job is None:
        return None
    try:
        await svc.client.get_job(job.job_id)
    except PermanentError as exc:
        svc.sink.emit("webhook_unconfirmed", row=row.row_id, job=job.job_id, status=exc.status or 0)
        return None
    return job.job_id
