"""Stage 1 of the video-edit flow: put the row's video where the API can read it.

A local file goes through ``generateUrl`` and a streamed PUT to the signed URL (never read whole
into memory); a row that already gives an http(s) URL is used as it is. Once the ledger records
the upload, a resumed row never uploads again.
"""

from __future__ import annotations

from orchestrator.api.retry import call_with_retry
from orchestrator.input import flows
from orchestrator.ledger.records import Uploaded
from orchestrator.run.stages.base import RowJob, Services


async def upload(row: RowJob, svc: Services) -> None:
    state = svc.state(row)
    if state.source_url is not None or state.render_job is not None:
        return
    video = row.variables["video"].strip()
    if flows.is_url(video):
        await svc.ledger.append(Uploaded(row=row.row_id, url=video, bytes=0))
        return
    path = svc.local_file(row, video, "video")
    svc.sink.emit("stage", row=row.row_id, stage="upload", file=path.name)

    async def attempt() -> str:
        return await svc.client.upload_media(path, flows.content_type(path))

    url = await call_with_retry(attempt, policy=svc.transfer_policy, clock=svc.clock, rng=svc.rng)
    size = path.stat().st_size
    await svc.ledger.append(Uploaded(row=row.row_id, url=url, bytes=size))
