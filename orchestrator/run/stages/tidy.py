"""After a row's video is in place: retention at Pictory and on this disk (docs/data.md).

Two steps, each a recorded, resumable step that runs once the row is ``done`` (downloaded and
verified), and, when the run delivers its videos, once that delivery is recorded:

- ``[pictory] clean_after_download``: ``DELETE /v1/jobs/{id}/clean`` (contract §5.4) for the
  row's render job and preview job (``PictoryClient.clean_job``; a job Pictory no longer knows
  counts as cleaned), then a ``cleaned`` record. A crash before that record cleans again on the
  next run: cleaning is idempotent.
- ``--keep-local posters|none`` (``[run] keep_local``): the row's local copies (the video and
  the files beside it; with ``none`` its poster and preview GIF too) are removed, only once a
  delivery recorded the same sha256 as the download (``delivered_sha256``), never before; then
  a ``local_removed`` record. ``all`` (the default) keeps everything.

Neither step ever fails a row: its video is safe. A clean the API refuses is told on the sink
(``clean_failed``) and tried again by the next run, which takes up every done row with a step
outstanding (``outstanding``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

import anyio

from orchestrator.errors import ApiError
from orchestrator.ledger.records import JobsCleaned, LocalRemoved
from orchestrator.ledger.row_state import RowState
from orchestrator.report.previews import gif_name
from orchestrator.report.thumbnails import poster_name
from orchestrator.run.stages.base import RowJob, Services

KeepLocal = Literal["all", "posters", "none"]
KEEP_LOCAL: tuple[KeepLocal, ...] = ("all", "posters", "none")


def delivered_sha256(state: RowState) -> str | None:
    """The sha256 a checksum-verified delivery of the row recorded (the ``delivered`` record of
    ``stages.deliver``), None when nothing was delivered."""
    return state.delivered_sha256 or None


def jobs_to_clean(state: RowState) -> list[str]:
    """The row's jobs at Pictory that hold its outputs: render, then preview."""
    jobs = [j for j in (state.render_job, state.preview_job) if j]
    return [j for j in dict.fromkeys(jobs) if j not in (state.cleaned_jobs or ())]


def outstanding(state: RowState, *, clean: bool, keep_local: str, delivers: bool) -> bool:
    """Whether a done row still has a step of this module to take (a run takes it up again)."""
    if state.status != "done" or state.forgotten is not None:  # forgotten: never worked again
        return False
    delivered = delivered_sha256(state)
    if delivers and delivered is None:
        return False  # the deliver stage comes first
    if clean and jobs_to_clean(state):
        return True
    return keep_local != "all" and delivered == state.sha256 and state.local_removed is None


async def tidy(row: RowJob, svc: Services) -> None:
    """Take this row's outstanding steps (module docstring); never raises an API error."""
    state = svc.state(row)
    if not outstanding(
        state, clean=svc.clean_after_download, keep_local=svc.keep_local, delivers=svc.delivers
    ):
        return
    if svc.clean_after_download:
        await _clean(row, svc, state)
    delivered = delivered_sha256(state)
    if svc.keep_local != "all" and delivered is not None and delivered == state.sha256:
        await _remove_local(row, svc, state)


async def _clean(row: RowJob, svc: Services, state: RowState) -> None:
    jobs = jobs_to_clean(state)
    if not jobs:
        return
    for job in jobs:
        try:
            await svc.client.clean_job(job)
        except ApiError as exc:
            svc.sink.emit("clean_failed", row=row.row_id, job=job, message=exc.describe())
            return  # the next run tries again; the row stays done
    await svc.ledger.append(JobsCleaned(row=row.row_id, jobs=jobs))
    svc.sink.emit("jobs_cleaned", row=row.row_id, jobs=len(jobs))


async def _remove_local(row: RowJob, svc: Services, state: RowState) -> None:
    if state.local_removed is not None or state.file is None:
        return
    run_dir = svc.videos_dir.parent
    files = local_copies(state, svc.keep_local)
    if svc.assets is not None:  # its preview GIF is made from the video first
        await svc.assets.settled(state.file)
    await anyio.to_thread.run_sync(_unlink_all, run_dir, files)
    await svc.ledger.append(LocalRemoved(row=row.row_id, files=files))
    svc.sink.emit("local_removed", row=row.row_id, files=len(files))


def local_copies(state: RowState, keep_local: str) -> list[str]:
    """The files ``keep_local`` removes for a row, relative to the run directory."""
    if state.file is None or keep_local == "all":
        return []
    files = [state.file, *(state.extras or ())]
    if keep_local == "none":
        files += [poster_name(state.file), gif_name(state.file)]
    return files


def _unlink_all(run_dir: Path, files: list[str]) -> None:
    for name in files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(run_dir / name)
