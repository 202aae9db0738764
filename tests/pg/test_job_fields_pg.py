"""What a finished job tells us reaches a shared batch's read side too (issue 27 item 4): the
render's thumbnail, share page, duration, AI credits and subtitle links, and Pictory's own error
code and message, as ``report --ledger`` reads them back from PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from orchestrator.ledger.pg.batches import batch_snapshot, find_batch
from orchestrator.ledger.pg.ledger import PgLedger
from orchestrator.ledger.records import Failed, RenderJob, RenderReady, RowAdmitted
from orchestrator.report.results import batch_usage, row_cells

from .conftest import submit_small, take_rows


async def test_a_shared_batch_keeps_what_the_render_and_the_failure_told(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """A worker records one row's finished render and another row's failure; the batch's read
    side folds every field back, results.csv's cells and the usage total follow."""
    await submit_small(pool, tmp_path, 2)
    ledger = await PgLedger.open(pool, pg_url, "b", worker_id="w", idle_poll_s=0.02)
    try:
        done, failed = await take_rows(ledger, 2)
        for job in (done, failed):
            await ledger.append(RowAdmitted(row=job.row_id, line=job.line, output=job.output_name))
        await ledger.append(RenderJob(row=done.row_id, job="r-1"))
        subtitles = {"srtFile": "https://cdn/r-1.srt", "vttFile": "https://cdn/r-1.vtt"}
        told = RenderReady(
            row=done.row_id,
            job="r-1",
            video_url="https://cdn/r-1.mp4",
            duration_s=65.6,
            thumbnail="https://cdn/r-1.jpg",
            share_url="https://video.pictory.ai/p/s",
            credits=48,
            subtitles=subtitles,
        )
        await ledger.append(told)
        message = "SCENE_BACKGROUND_VISUAL_NOT_FOUND: scene 2"
        await ledger.append(
            Failed(
                row=failed.row_id,
                stage="preview",
                kind="job_failed",
                message=f"{message} code=TEXT_TO_VIDEO_FAILED",
                permanent=True,
                error_code="TEXT_TO_VIDEO_FAILED",
                error_message=message,
            )
        )
    finally:
        await ledger.aclose()
    async with pool.acquire() as conn:
        batch_id = await find_batch(conn, "b", pg_url)
    snapshot = await batch_snapshot(pool, batch_id)
    try:
        state = snapshot.state.rows[done.row_id]
        assert (state.thumbnail, state.share_url) == (told.thumbnail, told.share_url)
        assert (state.duration_s, state.credits, state.subtitles) == (65.6, 48, subtitles)
        cells, _ = row_cells(done.row_id, done.line, state, {})
        assert (cells["duration_s"], cells["ai_credits"], cells["srt_url"]) == (
            "65.6",
            "48",
            subtitles["srtFile"],
        )
        lost = snapshot.state.rows[failed.row_id]
        cells, _ = row_cells(failed.row_id, failed.line, lost, {})
        assert (cells["error_code"], cells["error_message"]) == ("TEXT_TO_VIDEO_FAILED", message)
        assert "what to do: the search query found no stock visual" in cells["error"]
        usage = batch_usage(snapshot.state)
        assert (usage.renders, usage.credits) == (1, 48)
    finally:
        snapshot.close()
