"""The template flow: every non-reserved column is a variable of the row's ``.pictai``.

Stages: preview (``from-template``, or the v2 storyboard route with an API key) → render (``PUT
render/{preview}``) → download; with ``--direct``: render (one ``POST /v2/video/storyboard/render``
with ``templateId`` + ``variables``, §5.9) → download.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orchestrator.api.retry import REUPLOAD_TEMPLATE
from orchestrator.errors import ApiError
from orchestrator.input.flows import BeforeSend, Flow, Stage
from orchestrator.input.rows import RowJob
from orchestrator.ledger.records import RenderRefused
from orchestrator.ledger.row_state import RowState
from orchestrator.run.stages.base import Services
from orchestrator.run.stages.download import download
from orchestrator.run.stages.preview import preview
from orchestrator.run.stages.render import render, render_preview


def stages(direct: bool) -> Sequence[tuple[str, Stage]]:
    if direct:
        return [("render", render), ("download", download)]
    return [("preview", preview), ("render", render), ("download", download)]


async def send_direct(
    row: RowJob, svc: Services, webhook: str | None, before_send: BeforeSend
) -> str:
    """``POST /v2/video/storyboard/render`` with the uploaded template's id and the row's
    variables (§5.9). A template id the API no longer knows (404: nothing was started) is
    uploaded again, once."""
    assert row.template is not None
    name = Path(row.output_name).stem
    reuploads = 0
    while True:
        template_id = await svc.templates.template_id(row.template)
        body = {"videoName": name, "templateId": template_id, "variables": row.variables}
        try:
            return await svc.client.render_direct(
                body,
                webhook=webhook,
                webhook_input=svc.webhook_input(row, "render"),
                before_send=before_send,
            )
        except ApiError as exc:
            if not REUPLOAD_TEMPLATE.allows(exc, reuploads):
                raise
            reuploads += 1
            await svc.ledger.append(
                RenderRefused(row=row.row_id, kind=exc.kind, message=exc.message)
            )
            await svc.templates.forget(row.template, template_id)


def preview_progress(state: RowState) -> str | None:
    return "previewing" if state.preview_job is not None else None


FLOW = Flow(
    name="template",
    fields=(),
    stages=stages,
    send_render=render_preview,
    send_direct=send_direct,
    uses_template=True,
    progress=preview_progress,
)
