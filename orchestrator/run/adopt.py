"""``orchestrator adopt``: rebuild a run directory's missing ledger from what it delivered,
without rendering anything.

A run directory whose ``ledger.jsonl`` was removed (a cleanup script, a sync tool) still holds
its videos and, usually, ``results.csv``. ``FileLedger.open`` refuses to start afresh there (it
would render every row again over the delivered videos); this rebuilds the ledger instead, row
by row, from the same manifest the run was given:

================================================  ============================================
what the directory tells about a row              what the rebuilt ledger records
================================================  ============================================
its video is there and is an MP4 (and matches      done (``downloaded``, with the file's size and
``results.csv``'s sha256 when that names one)      sha256; the render job when results name it)
``results.csv`` names its render job               that job: the next run polls and downloads
                                                   it, never renders again
``results.csv`` says ``done`` or ``ambiguous``      ambiguous: a render was made or may exist;
but neither the video nor the job is there         only ``--rerender-ambiguous`` renders it
``results.csv`` says ``failed`` (no job)           failed, as it was (``--retry-failed``)
nothing                                            nothing: the next run renders the row
================================================  ============================================

Then the same ``orchestrator run`` command as before goes on with the rows left.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from orchestrator.clock import RealClock
from orchestrator.errors import RunDirError, ValidationFailed
from orchestrator.input.identity import variables_digest
from orchestrator.input.row import ManifestOptions
from orchestrator.input.rows import RowJob, manifest_rows
from orchestrator.input.validate import validate_manifest
from orchestrator.ledger.file import LEDGER_NAME, FileLedger
from orchestrator.ledger.records import (
    Ambiguous,
    Downloaded,
    Event,
    Failed,
    RenderIntent,
    RenderJob,
    RowAdmitted,
    RunStarted,
    SessionEnded,
)
from orchestrator.report.results import RESULTS_NAME
from orchestrator.report.results_csv import plain, read_results

VIDEOS_DIR = "videos"
MAX_PROBLEMS_SHOWN = 20
HASH_CHUNK_BYTES = 1 << 20
APPEND_BATCH = 256


@dataclass
class Adopted:
    """What ``adopt`` recorded, by outcome (``done``, ``reattach``, ``ambiguous``, ``failed``,
    ``to_render``), and the rows whose video was there but did not match ``results.csv``."""

    counts: Counter[str] = field(default_factory=Counter)
    mismatched: list[str] = field(default_factory=list)


async def adopt(
    run_dir: Path,
    manifest: Path,
    template: Path | None,
    flow: str,
    options: ManifestOptions,
) -> Adopted:
    """Rebuild ``RUN_DIR/ledger.jsonl`` from its videos and ``results.csv`` (see the module
    docstring). Refuses a directory that has a ledger, or that holds nothing to adopt."""
    ledger_path = run_dir / LEDGER_NAME
    if ledger_path.exists() and ledger_path.stat().st_size > 0:
        raise RunDirError(
            f"{run_dir} has a ledger already; nothing to adopt (`orchestrator status "
            f"{run_dir}` shows where it stands)"
        )
    results = _read_results(run_dir / RESULTS_NAME, options.encoding)
    videos = run_dir / VIDEOS_DIR
    if not results and not videos.is_dir():
        raise RunDirError(
            f"{run_dir} holds neither {RESULTS_NAME} nor {VIDEOS_DIR}/: nothing to adopt; "
            "`orchestrator run` starts the batch there"
        )
    report = await anyio.to_thread.run_sync(validate_manifest, manifest, template, flow, options)
    if not report.ok:
        raise ValidationFailed(
            [str(p) for p in report.problems[:MAX_PROBLEMS_SHOWN]], report.problem_count
        )
    rows = manifest_rows(manifest, template, flow, options)
    adopted = Adopted()
    record = RunStarted(
        manifest=str(await anyio.Path(manifest).resolve()),
        manifest_sha256=report.manifest_sha256,
        template=str(await anyio.Path(template).resolve()) if template else None,
        flow=flow,
        manifest_options=options.recorded(),
    )
    ledger = FileLedger.open(run_dir, rows, RealClock(), adopting=True)
    try:
        await ledger.append(record)
        pending: list[list[Event]] = []
        for job in rows():
            result = results.get(job.row_id)
            video = await anyio.to_thread.run_sync(_video, run_dir / _named(job, result))
            outcome, events = _adopt_row(job, result, video)
            adopted.counts[outcome] += 1
            if video is not None and outcome != "done":
                adopted.mismatched.append(job.row_id)
            if events:
                pending.append(events)
            if len(pending) >= APPEND_BATCH:
                await _append(ledger, pending)
                pending = []
        await _append(ledger, pending)
        await ledger.append(SessionEnded(how="halted", reason="adopted: nothing was rendered"))
    finally:
        ledger.close()
    return adopted


async def _append(ledger: FileLedger, rows: list[list[Event]]) -> None:
    """Each row's events in order, the rows side by side (their appends share fsyncs)."""
    async with anyio.create_task_group() as tg:
        for events in rows:
            tg.start_soon(_append_all, ledger, events)


async def _append_all(ledger: FileLedger, events: list[Event]) -> None:
    for event in events:
        await ledger.append(event)


def _named(job: RowJob, result: dict[str, str] | None) -> str:
    """Where the row's video is (as ``results.csv`` names it, else where a run would put it)."""
    return (result or {}).get("file") or f"{VIDEOS_DIR}/{job.output_name}"


def _adopt_row(
    job: RowJob, result: dict[str, str] | None, video: tuple[int, str] | None
) -> tuple[str, list[Event]]:
    """The row's outcome (``Adopted.counts``' keys) and its events, from its ``results.csv``
    line and its ``video`` (size and sha256, when an MP4 is there)."""
    row = job.row_id
    status = (result or {}).get("status", "")
    render_job = (result or {}).get("render_job_id") or None
    named = _named(job, result)
    admitted = RowAdmitted(row=row, line=job.line, output=Path(named).name, flow=job.flow)
    if video is not None:
        size, sha256 = video
        expected = (result or {}).get("sha256")
        if not expected or expected == sha256:
            events: list[Event] = [admitted]
            if render_job:
                events.append(RenderJob(row=row, job=render_job))
            events.append(Downloaded(row=row, file=named, bytes=size, sha256=sha256))
            return "done", events
    if render_job:
        return "reattach", [admitted, RenderJob(row=row, job=render_job)]
    if status in ("done", "ambiguous"):
        why = (
            "adopted: results.csv says done, but the video and its render job are gone"
            if status == "done"
            else "adopted: " + ((result or {}).get("error") or "the render may exist")
        )
        intent = RenderIntent(
            row=row, vars=variables_digest(job.variables), values=dict(job.variables)
        )
        return "ambiguous", [admitted, intent, Ambiguous(row=row, stage="render", message=why)]
    if status == "failed":
        kind, _, message = ((result or {}).get("error") or "").partition(": ")
        failed = Failed(
            row=row,
            stage="adopted",
            kind=kind or "permanent",
            message=message or kind,
            permanent=(result or {}).get("retry") == "retry-failed",
        )
        return "failed", [admitted, failed]
    return "to_render", []


def _video(path: Path) -> tuple[int, str] | None:
    """``(bytes, sha256)`` of an MP4 at ``path``; None when there is none (or not an MP4)."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8 or head[4:8] != b"ftyp":
                return None
            digest = hashlib.sha256(head)
            size = len(head)
            while chunk := f.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return None
    return size, digest.hexdigest()


def _read_results(path: Path, encoding: str | None) -> dict[str, dict[str, str]]:
    """``results.csv`` by row id (cells as written, formula guards taken off); {} if absent.
    Any dialect it was written in (``results_csv.read_results``; ``encoding``: the manifest's)."""
    try:
        return {
            cells["id"]: cells
            for cells in (
                {k: plain(v or "") for k, v in r.items() if k} for r in read_results(path, encoding)
            )
            if cells.get("id")
        }
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunDirError(
            f"{path}: cannot be read ({exc}); move it away to adopt the videos alone"
        ) from exc
