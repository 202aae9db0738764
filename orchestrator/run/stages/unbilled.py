"""Creating a job that bills nothing: previews, storyboard previews, transcriptions, highlights.

Such a request whose answer was lost (the connection dropped after sending) is simply sent again,
a few times (``retry.RESEND_UNBILLED``): an orphan job costs nothing. Only renders bill, and those
follow the delivery contract in ``stages.render``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from orchestrator.api.retry import RESEND_UNBILLED
from orchestrator.errors import ApiError
from orchestrator.run.stages.base import RowJob, Services


async def create_unbilled_job(
    row: RowJob, svc: Services, stage: str, send: Callable[[], Awaitable[str]]
) -> str:
    resends = 0
    while True:
        try:
            return await send()
        except ApiError as exc:
            if not RESEND_UNBILLED.allows(exc, resends):
                raise
            resends += 1
            svc.sink.emit("job_resent", row=row.row_id, stage=stage, reason="connection lost")
