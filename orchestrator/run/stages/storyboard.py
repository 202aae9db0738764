"""Stage 1 of the storyboard flow: text → a storyboard preview job → wait.

``POST /v1/video/storyboard`` with client credentials, ``POST /v2/video/storyboard`` with an API
key (the client picks the route; the body is built here in that route's shape, contract §5.6).
From there a storyboard row renders and downloads exactly like a template row.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.run.flows import storyboard_v1, storyboard_v2
from orchestrator.run.stages.base import RowJob, Services
from orchestrator.run.stages.preview import record_preview_job, remaking_previews, wait_preview
from orchestrator.run.stages.unbilled import create_unbilled_job


async def storyboard_preview(row: RowJob, svc: Services) -> None:
    async def make() -> None:
        await _storyboard_preview(row, svc)

    await remaking_previews(row, svc, make)


async def _storyboard_preview(row: RowJob, svc: Services) -> None:
    state = svc.state(row)
    if state.preview_job is None and state.render_job is None:
        manifest = row.manifest or Path(".")
        v2 = svc.client.video_routes == "v2"

        build = storyboard_v2.payload if v2 else storyboard_v1.payload
        payload = build(row.variables, manifest, Path(row.output_name).stem, svc.files(row))
        webhook = svc.webhook_url(row, "preview")
        if webhook:
            payload["webhook"] = webhook
            if v2:  # v2 echoes it in the callback (§6.3); v1 documents no webhookInput
                payload["webhookInput"] = svc.webhook_input(row, "preview")

        async def send() -> str:
            return await svc.client.create_storyboard(payload)

        job_id = await create_unbilled_job(row, svc, "storyboard", send)
        await record_preview_job(row, svc, job_id)
    await wait_preview(row, svc)
