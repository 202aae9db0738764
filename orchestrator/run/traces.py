"""Where a forgotten row's values went, and erasing them there (``orchestrator forget``, which
``run.forget`` drives): its delivered objects, its files in a run directory or a worker's
``--out``, and its lines in ``log.jsonl``. The ledger itself: ``ledger.erase``,
``ledger.pg.forget``.

May import what ``run`` may.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.config import Config
from orchestrator.events import LOG_NAME
from orchestrator.files import atomic_text
from orchestrator.input.rows import RowJob
from orchestrator.ledger.file import LEDGER_NAME, read_events
from orchestrator.ledger.forget import KEPT, redact_value
from orchestrator.ledger.records import (
    Ambiguous,
    AuxJob,
    Delivered,
    Downloaded,
    JobsCleaned,
    LocalRemoved,
    PreviewJob,
    PreviewReady,
    RenderIntent,
    RenderJob,
    RenderReady,
    Retry,
    RowAdmitted,
    RowEvent,
    Uploaded,
)

MIN_NEEDLE_CHARS = 3
"""Shorter texts of a row are not searched for in lines about other things (a log line that
quotes a value): "Jo" would erase half the log."""
KEPT_FILES = frozenset({LEDGER_NAME, LOG_NAME, "run.lock", ".ledger-reserve", "webhook.secret"})
"""Files of a run directory never removed as a row's (they are rewritten, or hold no value)."""
STALE_PARTS = (".tmp", ".forget", ".restore")
"""Suffixes of the temporary copies our atomic writes make: one a crash left holds values."""


@dataclass
class Erased:
    """What ``forget`` removed: for the CLI to print."""

    rows: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    """Rows forgotten before (their files and log checked again)."""
    records: int = 0
    """Ledger records (or stored events) rewritten."""
    files: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    log_lines: int = 0
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    """``--dry-run``: what would be removed is listed, and nothing is removed or rewritten."""
    cleaned: list[tuple[str, str]] = field(default_factory=list)
    """(row, job) cleaned at Pictory (``--dry-run``: to be cleaned)."""
    gone: list[tuple[str, str]] = field(default_factory=list)
    """(row, job) Pictory answered 404 for: not there (any more) for these credentials."""
    left: dict[str, list[str]] = field(default_factory=dict)
    """Row → its jobs left at Pictory (no credentials, ``--keep-at-pictory``, another
    account): the ledger keeps their ids, so the same command erases them later."""
    left_why: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)
    """Row → why a clean at Pictory failed: nothing of that row was erased (exit 1)."""


@dataclass
class RowTraces:
    """Where one row's values went: file names, texts to search for, delivered objects."""

    row: str
    names: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)
    delivered: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0
    """The row's records (each is rewritten)."""
    jobs: dict[str, None] = field(default_factory=dict)
    """Every job id the row's records name (previews, renders, transcriptions; a retried
    row's earlier ones too), in order."""
    cleaned: set[str] = field(default_factory=set)
    """Jobs a ``cleaned`` record says are cleaned at Pictory."""
    lost: int = 0
    """Job-creating requests whose answer was lost (``ambiguous``): a job may exist at
    Pictory under an id never learned."""
    uploads: int = 0
    """Files uploaded to Pictory's storage for the row (no documented way to delete one)."""

    @property
    def to_clean(self) -> list[str]:
        """The row's jobs at Pictory not yet recorded cleaned."""
        return [job for job in self.jobs if job not in self.cleaned]

    def saw(self, event: RowEvent) -> None:
        """Note what ``event`` (one of the row's records, before redaction) names."""
        self.records += 1
        self._saw_jobs(event)
        match event:
            case RowAdmitted(output=str() as output) | Retry(output=str() as output):
                self.names.add(output)
            case Downloaded():
                self.names.update([event.file, *(event.extras or [])])
            case LocalRemoved():
                self.names.update(event.files)
            case RenderIntent(values=dict() as values):
                self.texts.update(values.values())
            case Uploaded():
                self.texts.add(event.url)
            case RenderReady():
                found = [event.video_url, event.thumbnail, event.share_url]
                self.texts.update(t for t in found if t)
                self.texts.update((event.subtitles or {}).values())
            case Delivered():
                self.delivered.append((event.destination, event.key))
                self.texts.update([event.url, event.key])

    def _saw_jobs(self, event: RowEvent) -> None:
        match event:
            case PreviewJob() | RenderJob() | AuxJob():
                self.jobs[event.job] = None
            case PreviewReady(job=str() as job) | RenderReady(job=str() as job):
                self.jobs[job] = None
            case RenderIntent(preview_job=str() as job):
                self.jobs[job] = None
            case JobsCleaned():
                self.cleaned.update(event.jobs)
            case Ambiguous():
                self.lost += 1
            case Uploaded():
                self.uploads += 1

    def saw_job(self, job: RowJob) -> None:
        """Note what the manifest's row holds (its values, extra columns and file name)."""
        self.texts.update(job.variables.values())
        self.texts.update(job.extras.values())
        self.names.add(job.output_name)

    @property
    def stems(self) -> set[str]:
        return {PurePosixPath(name).stem for name in self.names if name}

    @property
    def needles(self) -> list[str]:
        found = self.texts | {PurePosixPath(n).name for n in self.names} | self.stems
        return sorted((t for t in found if len(t.strip()) >= MIN_NEEDLE_CHARS), key=len)[::-1]


def traces(ledger_path: Path | None, rows: list[str], jobs: list[RowJob]) -> dict[str, RowTraces]:
    """Where each of ``rows`` left values: its ledger records (read before they are redacted)
    and its manifest row."""
    found = {row: RowTraces(row) for row in rows}
    if ledger_path is not None:
        for _, event in read_events(ledger_path):
            if isinstance(event, RowEvent) and event.row in found:
                found[event.row].saw(event)
    for job in jobs:
        if job.row_id in found:
            found[job.row_id].saw_job(job)
    return found


# ---- erasing ------------------------------------------------------------------------------------


async def delete_delivered(
    rows: dict[str, RowTraces], config: Config, erased: Erased, label: str = ""
) -> None:
    """Delete each row's delivered objects where the ``delivered`` records say they went."""
    from orchestrator.storage.destination import open_destination

    for traced in rows.values():
        for destination, key in traced.delivered:
            store = await open_destination(
                destination,
                endpoint_url=config.deliver.endpoint_url,
                region=config.deliver.region,
                profile=config.deliver.profile,
            )
            relative = relative_key(destination, key)
            try:
                if not erased.dry_run:
                    await store.delete(relative)
            finally:
                await store.aclose()
            erased.objects.append(f"{label}{destination.rstrip('/')}/{relative}")


def relative_key(destination: str, key: str) -> str:
    """The key ``Destination.delete`` takes (relative to the destination's prefix), from the
    ``key`` a ``delivered`` record holds (relative, or with the prefix or folder in front)."""
    from orchestrator.storage.destination import check_url

    scheme, _, path = check_url(destination)
    if scheme == "file":
        root = Path(path)
        if Path(key).is_absolute():
            return Path(key).relative_to(root).as_posix() if Path(key).is_relative_to(root) else key
        return key
    prefix = path.lstrip("/")
    return key[len(prefix) :] if prefix and key.startswith(prefix) else key


def remove_files(
    folder: Path,
    rows: dict[str, RowTraces],
    erased: Erased,
    *,
    stale: bool = True,
    label: str = "",
) -> None:
    """Remove every file under ``folder`` named after one of the rows' videos (the video, the
    files beside it, a partial download, poster, GIF) and, with ``stale`` (nobody writes there:
    a run directory ``forget`` holds), every temporary copy a crash left. ``label``: put before
    each name printed."""
    stems = {stem for traced in rows.values() for stem in traced.stems}
    for path in _files(folder):
        name = path.name
        if path.parent == folder and name in KEPT_FILES:
            continue
        leftover = stale and name.startswith(".") and name.endswith(STALE_PARTS)
        if _stem(name) in stems or leftover:
            if not erased.dry_run:
                path.unlink(missing_ok=True)
            erased.files.append(label + path.relative_to(folder).as_posix())


def _stem(name: str) -> str:
    """The video stem a file of ours is named after: ``x.mp4``, ``x.srt``, ``x.jpg``,
    ``x.gif``, a partial ``.x.mp4.part``, a temporary ``.x.jpg.tmp`` → ``x``."""
    plain = name.lstrip(".")
    for suffix in (".part", ".tmp"):
        plain = plain.removesuffix(suffix)
    return PurePosixPath(plain).stem


def _files(folder: Path) -> Iterator[Path]:
    for root, _, names in os.walk(folder):
        for name in names:
            yield Path(root) / name


def rewrite_log(folder: Path, rows: dict[str, RowTraces], markers: dict[str, str]) -> int:
    """Rewrite ``FOLDER/log.jsonl`` without the rows' values (module docstring, step 3);
    returns how many lines changed."""
    path = folder / LOG_NAME
    if not path.exists():
        return 0
    needles = sorted(
        {(n, markers[t.row]) for t in rows.values() for n in t.needles}, key=lambda p: -len(p[0])
    )
    changed = 0
    with path.open(encoding="utf-8", errors="replace") as source, atomic_text(path) as out:
        for line in source:
            new = _log_line(line, markers, needles)
            changed += new != line
            out.write(new)
    return changed


def _log_line(line: str, markers: dict[str, str], needles: list[tuple[str, str]]) -> str:
    try:
        record: Any = json.loads(line)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        text = line
        for needle, marker in needles:
            text = text.replace(needle, marker)
        return text
    row = record.get("row")
    if isinstance(row, str) and row in markers:
        keep = KEPT | {"event"}
        record = {k: v if k in keep else redact_value(v, markers[row]) for k, v in record.items()}
    elif row is None:  # about the batch: it may quote a value (a refused cell, a file name)
        record = {k: _replace(v, needles) for k, v in record.items()}
    else:
        return line  # another row's line: its own values, not these
    return json.dumps(record, ensure_ascii=False) + "\n"


def _replace(value: Any, needles: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for needle, marker in needles:
            value = value.replace(needle, marker)
        return value
    if isinstance(value, list):
        return [_replace(v, needles) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, needles) for k, v in value.items()}
    return value
