"""Stage 1: set the variables (a preview job) and wait for it.

``POST /v1/video/from-template`` with client credentials, ``POST /v2/video/storyboard`` with an
API key (``PictoryClient.create_preview`` picks; contract §5.6).

An ambiguous preview request (connection lost after sending) is simply sent again: a preview is
not billed (see ``stages.unbilled``). A template id the API no longer knows (404)
is uploaded again once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from orchestrator.api.retry import REMAKE_UNBILLED, REUPLOAD_TEMPLATE
from orchestrator.errors import ApiError
from orchestrator.ledger.records import PreviewJob, PreviewReady, Retry
from orchestrator.run.stages.base import RowAmbiguous, RowJob, Services, record_ambiguous
from orchestrator.run.stages.unbilled import create_unbilled_job


async def create_preview(row: RowJob, svc: Services) -> None:
    state = svc.state(row)
    if state.preview_job is not None or state.render_job is not None:
        return
    template = row.template
    assert template is not None
    reuploads = 0
    while True:
        template_id = await svc.templates.template_id(template)

        async def send(template_id: str = template_id) -> str:
            return await svc.client.create_preview(
                template_id,
                row.variables,
                webhook=svc.webhook_url(row, "preview"),
                webhook_input=svc.webhook_input(row, "preview"),
                video_name=Path(row.output_name).stem,
            )

        try:
            job_id = await create_unbilled_job(row, svc, "preview", send)
            break
        except ApiError as exc:
            if not REUPLOAD_TEMPLATE.allows(exc, reuploads):
                raise
            reuploads += 1
            await svc.templates.forget(template, template_id)
    await record_preview_job(row, svc, job_id)


async def record_preview_job(row: RowJob, svc: Services, job_id: str) -> None:
    await svc.ledger.append(PreviewJob(row=row.row_id, job=job_id))
    row.progress.preview_fresh = True
    svc.sink.emit("stage", row=row.row_id, stage="preview", job=job_id)


async def wait_preview(row: RowJob, svc: Services) -> None:
    state = svc.state(row)
    if state.render_job is not None or row.progress.preview_waited:
        return
    assert state.preview_job is not None
    job = await svc.wait_job(
        state.preview_job,
        stage="preview",
        interval_s=svc.poll.preview_interval_s,
        deadline_s=svc.poll.preview_deadline_s,
        fresh=row.progress.preview_fresh,
    )
    row.progress.preview_waited = True
    row.progress.render_params = job.render_params
    if not state.preview_ready:
        await svc.ledger.append(PreviewReady(row=row.row_id, job=state.preview_job))


async def preview(row: RowJob, svc: Services) -> None:
    """The whole preview stage: create (unless recorded), then wait until it is ready."""

    async def make() -> None:
        await create_preview(row, svc)
        await wait_preview(row, svc)

    await remaking_previews(row, svc, make)


async def remaking_previews(
    row: RowJob, svc: Services, make: Callable[[], Awaitable[None]], what: str = "preview"
) -> None:
    """Run ``make``; a preview (or another unbilled job: ``what``) that failed, got stuck or is
    no longer known to the API is made again (``retry.REMAKE_UNBILLED``): such jobs bill nothing."""
    remakes = 0
    while True:
        try:
            await make()
            return
        except ApiError as exc:
            if not REMAKE_UNBILLED.allows(exc, remakes):
                raise
            remakes += 1
            await restart_preview(row, svc, f"{what} {exc.kind}: {exc.message}")


async def restart_preview(row: RowJob, svc: Services, reason: str) -> None:
    """Start the row over from a new preview, unless a render may already exist for it."""
    if svc.state(row).render_intent and not svc.rerender_ambiguous:
        message = f"render intent recorded without a job id, and its preview is unusable ({reason})"
        await record_ambiguous(row, svc, message)
        raise RowAmbiguous
    await svc.ledger.append(Retry(row=row.row_id, reason=reason))
    svc.sink.emit("preview_remade", row=row.row_id, reason=reason)
