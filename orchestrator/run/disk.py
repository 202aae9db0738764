"""Before a run: will its videos fit on the disk of ``--out``? (docs/data.md#retention)

The estimate is rows still to download × the expected size of one row's files:

- the mean size of the videos this run directory or shared batch already downloaded (up to
  ``SAMPLE_ROWS`` of them), when it has any;
- else the expected length of a video (the batch's offline estimate, ``input.estimate``: a
  template's length, a script's; else ``[run] assumed_video_minutes``) × ``VIDEO_BYTES_PER_S``
  [choice: nothing public states the bitrate of Pictory's MP4s; 2 Mbit/s, 15 MB a minute,
  matches the 10–20 MB a video seen in practice (issue 32)], plus ``POSTER_BYTES`` for the
  poster frame.

It is checked against the free space of the file system holding the run directory
(``shutil.disk_usage``, or ``free_bytes`` given by a test): a batch that cannot fit is refused
before anything is sent (``StorageError``: exit 4, one line with both figures and what to do);
one that needs more than ``CLOSE_FRACTION`` of the free space is warned about (``disk_close``),
and so is one that cannot fit when ``[run] check_disk_space = false``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import StorageError
from orchestrator.events import Sink
from orchestrator.ledger.row_state import RowState

VIDEO_BYTES_PER_S = 2_000_000 // 8
"""[choice] The bytes a second of rendered video takes when no row was downloaded yet."""
POSTER_BYTES = 100_000
"""A poster frame (JPEG) beside each video (``[report] posters``)."""
CLOSE_FRACTION = 0.8
"""Needing more than this share of the free space is a warning."""
SAMPLE_ROWS = 1000
"""Downloaded rows whose sizes make the mean (a sample keeps a 100k-row ledger's pass short)."""

FreeBytes = Callable[[Path], int]


@dataclass(frozen=True)
class DiskEstimate:
    rows: int
    """Rows still to download."""
    bytes_per_row: int
    basis: str
    """Where ``bytes_per_row`` comes from, for the message."""
    free_bytes: int

    @property
    def needed_bytes(self) -> int:
        return self.rows * self.bytes_per_row


def expected_row(
    states: Iterable[RowState],
    assumed_video_minutes: float,
    posters: bool = True,
    expected_minutes: float | None = None,
    expected_basis: str | None = None,
) -> tuple[int, int, str]:
    """One pass over the batch's rows: how many are done, the expected size of one row's files,
    and where that size comes from (module docstring)."""
    done = 0
    sizes: list[int] = []
    for state in states:
        if state.status == "done":
            done += 1
            if state.bytes and len(sizes) < SAMPLE_ROWS:
                sizes.append(state.bytes)
    extra = POSTER_BYTES if posters else 0
    if sizes:
        mean = sum(sizes) // len(sizes)
        return done, mean + extra, f"the mean of {len(sizes)} video(s) already downloaded"
    if expected_minutes is not None:
        minutes, source = expected_minutes, expected_basis or "the batch's estimate"
    else:
        minutes, source = assumed_video_minutes, "[run] assumed_video_minutes"
    return (
        done,
        int(minutes * 60 * VIDEO_BYTES_PER_S) + extra,
        f"{minutes:.2g} min a video ({source}) at {VIDEO_BYTES_PER_S * 8 / 1e6:g} Mbit/s",
    )


def free_space(path: Path) -> int:
    """The bytes free for us on the file system of ``path`` (its nearest existing folder)."""
    for folder in (path, *path.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return shutil.disk_usage(Path.cwd()).free


def check_space(
    run_dir: Path,
    rows: int,
    states: Iterable[RowState],
    sink: Sink,
    *,
    assumed_video_minutes: float,
    expected_minutes: float | None = None,
    expected_basis: str | None = None,
    posters: bool = True,
    at_most: int | None = None,
    refuse: bool = True,
    free_bytes: FreeBytes = free_space,
) -> DiskEstimate | None:
    """Refuse (``StorageError``) a batch of ``rows`` whose videos still to download (at most
    ``at_most``: a canary, a render cap) cannot fit in the free space of ``run_dir``; warn when
    they take most of it (``refuse`` false: warn either way). ``expected_minutes``: a video's
    expected length, when the batch's estimate knows it (``expected_basis`` says from what).
    None when nothing is left to download."""
    done, per_row, basis = expected_row(
        states, assumed_video_minutes, posters, expected_minutes, expected_basis
    )
    rows_left = max(0, rows - done)
    if at_most is not None:
        rows_left = min(rows_left, at_most)
    if rows_left <= 0:
        return None
    estimate = DiskEstimate(rows_left, per_row, basis, free_bytes(run_dir))
    needed, free = estimate.needed_bytes, estimate.free_bytes
    figures = (
        f"the batch needs about {human_bytes(needed)} for {rows_left} video(s) "
        f"({human_bytes(per_row)} each: {basis}) and {human_bytes(free)} is free"
    )
    if needed > free and refuse:
        raise StorageError(
            run_dir,
            f"not enough space: {figures}",
            "free space there or choose another --out (or render fewer rows: --max-rows; "
            "[run] check_disk_space = false only warns), then run the same command again",
        )
    sink.emit(
        "disk_estimate",
        needed_bytes=needed,
        free_bytes=free,
        rows=rows_left,
        bytes_per_row=per_row,
    )
    if needed > CLOSE_FRACTION * free:
        sink.emit("disk_close", path=str(run_dir), message=figures)
    return estimate


def human_bytes(count: float) -> str:
    """``1.5 GB``, ``820 MB``, ``12 kB`` (decimal units, as disks are sold)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} B"
