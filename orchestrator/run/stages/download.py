"""Stage 3: download the video to a temporary name, check it, rename it into place, and record it.

A cut-short download never appears under the final name: bytes go to ``.NAME.part``; the byte
count is checked against ``Content-Length``; a retry resumes with ``Range`` from the partial file.
An expired or refused link (403/404/410) makes us re-read the render job for a fresh URL first.
The video comes from ``videoURL`` only (share URLs are viewing pages, §5.5) and must be an MP4:
an answer that is a web page or not ISO-BMFF is never renamed into place; the render job is read
again once for a fresh ``videoURL``, then the row fails as ``not_a_video`` (not permanent: a
rerun tries the download again, and never renders again: the render job is in the ledger).
A video-edit row also gets its subtitle files, written beside the video the same way.

The files are fsynced by the ledger, in the worker-thread call that writes the ``downloaded``
record naming them (``Ledger.append(..., files=)``): a record on disk always names files on
disk, and a small video costs no worker-thread hop of its own (``transport.download``,
``sync=False``). A crash before that record leaves the row to download again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio

from orchestrator.api.client import DownloadResult
from orchestrator.api.responses import JobState
from orchestrator.api.retry import REREAD_VIDEO_URL, call_with_retry
from orchestrator.errors import ApiError, LinkExpiredError
from orchestrator.files import atomic_text
from orchestrator.ledger.records import Downloaded
from orchestrator.report.thumbnails import poster_frame, poster_name
from orchestrator.run.stages.base import RowJob, Services
from orchestrator.run.stages.transcribe import cut_subtitles

SUBTITLE_EXTENSIONS = {"srtFile": "srt", "vttFile": "vtt", "txtFile": "txt"}


async def download(row: RowJob, svc: Services, *, with_subtitles: bool = False) -> None:
    """Download the row's video (and, for video-edit rows, the subtitle files the render
    offers), then record them in one ``downloaded`` event."""
    state = svc.state(row)
    if state.status == "done":
        return
    assert state.render_job is not None
    render_job = state.render_job
    extras: list[str] = []
    async with svc.download_slots:
        started_s = svc.clock.now()
        result = await _fetch(
            svc,
            render_job,
            row.output_name,
            first_url=row.progress.video_url or state.video_url,
            pick=lambda job: job.video_url,
            video=True,
        )
        download_s = svc.clock.now() - started_s
        if with_subtitles:
            extras = await _subtitles(row, svc, render_job)
    file = f"{svc.videos_dir.name}/{row.output_name}"
    await svc.ledger.append(
        Downloaded(
            row=row.row_id,
            file=file,
            bytes=result.bytes,
            sha256=result.sha256,
            extras=[f"{svc.videos_dir.name}/{n}" for n in extras] if extras else None,
            deliver=svc.destinations.url,
        ),
        files=[svc.videos_dir / name for name in (row.output_name, *extras)],
    )
    svc.sink.emit(
        "row_done",
        row=row.row_id,
        file=row.output_name,
        bytes=result.bytes,
        download_s=round(download_s, 3),
        render_s=None if row.progress.render_s is None else round(row.progress.render_s, 3),
    )
    if svc.posters:
        await anyio.to_thread.run_sync(
            poster_frame,
            svc.videos_dir / row.output_name,
            svc.videos_dir.parent / poster_name(file),
        )
    if svc.assets is not None:
        svc.assets.video_landed(file)  # its GIF, made off this row's way (``stages.assets``)


async def _subtitles(row: RowJob, svc: Services, render_job: str) -> list[str]:
    """``NAME.srt``, ``NAME.vtt`` and ``NAME.txt`` beside the video; returns the names written.

    Each comes from the render job's ``srtFile``/``vttFile``/``txtFile`` when it offers one (§2
    step 6; the form is unpublished: an http(s) URL is downloaded, any other string is the file's
    contents), else from the cut's own subtitles (``transcribe.cut_subtitles``). A kind neither
    offers is skipped with a ``subtitle_missing`` event: the paid video is never held back for it.
    """
    offered = row.progress.subtitle_urls
    if offered is None:
        offered = (await svc.client.get_job(render_job)).subtitle_urls
    fallback: dict[str, str] | None = None
    written: list[str] = []
    for key, kind in SUBTITLE_EXTENSIONS.items():
        name = f"{Path(row.output_name).stem}.{kind}"
        value = offered.get(key)
        if value is not None and _is_url(value):
            await _fetch(svc, render_job, name, first_url=value, pick=_subtitle_url(key))
        else:
            if value is None:
                if fallback is None:
                    fallback = await cut_subtitles(row, svc)
                value = fallback.get(kind)
            if value is None:
                svc.sink.emit("subtitle_missing", row=row.row_id, file=name)
                continue
            await anyio.to_thread.run_sync(_write_file, svc.videos_dir, name, value)
        written.append(name)
    return written


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _write_file(folder: Path, name: str, text: str) -> None:
    """``text`` to ``.NAME.part``, fsynced, then renamed to ``NAME`` (like a download)."""
    with atomic_text(folder / name, newline="", part=".part") as f:
        f.write(text)


async def _fetch(
    svc: Services,
    render_job: str,
    name: str,
    *,
    first_url: str | None,
    pick: Callable[[JobState], str | None],
    video: bool = False,
) -> DownloadResult:
    """One file to ``.NAME.part``, retried (resuming), then renamed to ``NAME``, unsynced: the
    ledger fsyncs it with the record that names it (module docstring).
    A ``video`` that is not an MP4 gets one more try from a fresh read of the job
    (``retry.REREAD_VIDEO_URL``)."""
    final = svc.videos_dir / name
    part = svc.videos_dir / f".{name}.part"
    url = first_url
    resume = part.name in svc.partials  # or after an attempt of this run that may have left one

    async def attempt() -> DownloadResult:
        nonlocal url, resume
        if url is None:
            url = pick(await svc.client.get_job(render_job))
            if url is None:
                raise ApiError(f"render job offers no URL for {name}", endpoint="GET /v1/jobs")
        try:
            return await svc.client.download(
                url, part, video=video, into=final, resume=resume, sync=False
            )
        except LinkExpiredError:
            url = None  # read the job again for a fresh link before anything else
            raise
        finally:
            resume = True  # a later attempt looks for what this one left

    rereads = 0
    while True:
        try:
            result = await call_with_retry(
                attempt, policy=svc.transfer_policy, clock=svc.clock, rng=svc.rng
            )
            break
        except ApiError as exc:
            if not REREAD_VIDEO_URL.allows(exc, rereads):
                raise
            rereads += 1
            svc.sink.emit("not_a_video", file=name, job=render_job, message=exc.message)
            url = None  # once more, from the job's current videoURL
    return result


def _subtitle_url(key: str) -> Callable[[JobState], str | None]:
    def pick(job: JobState) -> str | None:
        return job.subtitle_urls.get(key)

    return pick
