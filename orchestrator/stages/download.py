"""Stage 3: download the video to a temporary name, check it, fsync, rename into place.

A cut-short download never appears under the final name: bytes go to ``.NAME.part``; the byte
count is checked against ``Content-Length``; a retry resumes with ``Range`` from the partial file.
An expired or refused link (403/404/410) makes us re-read the render job for a fresh URL first.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from orchestrator.client import DownloadResult
from orchestrator.errors import ApiError, LinkExpiredError
from orchestrator.retry import RetryPolicy, call_with_retry
from orchestrator.stages.base import RowJob, Services


async def download(row: RowJob, svc: Services, policy: RetryPolicy) -> None:
    state = svc.state(row)
    if state.status == "done":
        return
    assert state.render_job is not None
    render_job = state.render_job
    final = svc.videos_dir / row.output_name
    part = svc.videos_dir / f".{row.output_name}.part"
    url: str | None = row.scratch.get("video_url") or state.video_url

    async def attempt() -> DownloadResult:
        nonlocal url
        if url is None:
            job = await svc.client.get_job(render_job)
            if job.video_url is None:
                raise ApiError("render job offers no video URL", endpoint="GET /v1/jobs")
            url = job.video_url
        try:
            return await svc.client.download(url, part)
        except LinkExpiredError:
            url = None  # read the job again for a fresh link before anything else
            raise

    async with svc.download_slots:
        result = await call_with_retry(attempt, policy=policy, clock=svc.clock, rng=svc.rng)
        await anyio.to_thread.run_sync(_move_into_place, part, final)
    await svc.ledger.append(
        {
            "e": "downloaded",
            "row": row.row_id,
            "file": str(final.relative_to(svc.videos_dir.parent)),
            "bytes": result.bytes,
            "sha256": result.sha256,
        }
    )
    svc.sink.emit("row_done", row=row.row_id, file=final.name, bytes=result.bytes)


def _move_into_place(part: Path, final: Path) -> None:
    os.replace(part, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
