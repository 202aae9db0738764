"""Video names a new row may not take: the files in the run's ``videos/`` it would overwrite.

``validate`` finds two rows of one manifest that make the same file. Across sessions of a batch
there is more to collide with: a row added to (or edited in) the manifest, or a ``--name``
pattern fed new values, can make the name of a video the batch already made, or of a file
someone put in ``videos/`` by hand. Its download would replace that video. So before a session
records anything, ``check`` lists every *new* row whose name is taken, and the run sends nothing:

- **new**: a row that does not keep a recorded name. A row keeps the name the ledger records
  for it once its render is sent (an intent, a job, done; a re-render's ``NAME.v2.mp4``), as
  ``triage.changed_values`` gives it back: resuming never collides with itself. A forgotten row
  is never rendered again, and its video is gone.
- **taken**: a name the ledger records for another row (its ``downloaded`` file, or the name a
  sent render will be downloaded under), or a file in ``videos/`` that no row recorded. Names
  are compared without case, as ``validate`` compares them (Windows and macOS).

Each problem names the manifest line, the name, who owns it, and what to do: give the row a
name of its own (``--name`` with ``{id}``, or its ``output`` cell), or move the file away (or
``orchestrator forget`` the row whose video it is). ``validate --out RUN_DIR`` lists the same.

A fresh run directory (no recorded file, nothing in ``videos/``) costs nothing; otherwise one more
pass over the manifest's rows, names only.

May import what ``run`` may.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from orchestrator.errors import ValidationFailed
from orchestrator.input.rows import RowJob, RowLister
from orchestrator.input.seen_digests import digest64
from orchestrator.ledger.file import LEDGER_NAME, read_ledger
from orchestrator.ledger.row_state import RowState

MAX_SHOWN = 20
"""Problems listed at most (the rest are counted), as ``validate``'s pre-flight shows them."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose a taken name is: a row of the batch (``row`` and its ``line``), else a file."""

    row: str | None = None
    line: int | None = None
    done: bool = False


@dataclass
class TakenNames:
    """The names no new row may take, by digest of their case-folded text."""

    owners: dict[int, Owner] = field(default_factory=dict)
    settled: set[int] = field(default_factory=set)
    """Digests of the rows that keep their recorded names (never checked)."""

    def __bool__(self) -> bool:
        return bool(self.owners)


def kept_name(state: RowState) -> str | None:
    """The name ``state``'s row keeps whatever its manifest line makes now (None: it takes the
    name its line makes); the rule of ``triage.changed_values``."""
    if state.output_override is not None:
        return state.output_override
    if state.output is not None and (
        state.status == "done" or state.render_intent or state.render_job is not None
    ):
        return Path(state.file).name if state.file else state.output
    return None


def taken_names(states: Iterable[RowState], videos_dir: Path) -> TakenNames:
    """The names the ledger's rows (``states``) hold and the files in ``videos_dir``."""
    taken = TakenNames()
    for state in states:
        if state.forgotten is not None:  # never rendered again; its files are gone
            taken.settled.add(digest64(state.row))
            continue
        owner = Owner(state.row, state.line, state.status == "done")
        kept = kept_name(state)
        if kept is not None:
            taken.settled.add(digest64(state.row))
            taken.owners[digest64(kept.casefold())] = owner
        if state.file:  # an earlier attempt's video, still its row's
            taken.owners.setdefault(digest64(Path(state.file).name.casefold()), owner)
    try:
        with os.scandir(videos_dir) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_file():
                    taken.owners.setdefault(digest64(entry.name.casefold()), Owner())
    except (FileNotFoundError, NotADirectoryError):
        pass
    return taken


def collisions(
    rows: Iterable[RowJob],
    taken: TakenNames,
    videos_dir: Path,
    name_pattern: str | None = None,
) -> Iterator[str]:
    """One line per new row (see the module docstring) whose name is taken."""
    if not taken:
        return
    for job in rows:
        if digest64(job.row_id) in taken.settled:
            continue
        owner = taken.owners.get(digest64(job.output_name.casefold()))
        if owner is None or owner.row == job.row_id:
            continue
        yield _problem(job, owner, videos_dir, name_pattern)


def check(
    states: Iterable[RowState],
    rows: RowLister,
    videos_dir: Path,
    name_pattern: str | None = None,
) -> tuple[list[str], int]:
    """``(lines, count)``: the first ``MAX_SHOWN`` collisions and how many there are."""
    taken = taken_names(states, videos_dir)
    lines: list[str] = []
    count = 0
    if taken:
        for line in collisions(rows(), taken, videos_dir, name_pattern):
            count += 1
            if len(lines) < MAX_SHOWN:
                lines.append(line)
    return lines, count


def check_run_dir(
    run_dir: Path, videos_dir: Path, rows: RowLister, name_pattern: str | None = None
) -> tuple[list[str], int]:
    """``check`` against what ``run_dir``'s ledger records (when it has one) and what
    ``videos_dir`` holds: ``validate --out RUN_DIR``."""
    if not (run_dir / LEDGER_NAME).exists():
        return check((), rows, videos_dir, name_pattern)
    state = read_ledger(run_dir)
    try:
        return check(state.rows.values(), rows, videos_dir, name_pattern)
    finally:
        state.rows.close()


async def refuse(
    states: Iterable[RowState],
    rows: RowLister,
    videos_dir: Path,
    name_pattern: str | None = None,
) -> None:
    """Raise ``ValidationFailed`` (nothing is sent) when a new row's name is taken (``check``,
    in a worker thread: it reads the manifest)."""
    lines, count = await anyio.to_thread.run_sync(check, states, rows, videos_dir, name_pattern)
    if count:
        raise ValidationFailed(lines, count)


def _problem(job: RowJob, owner: Owner, videos_dir: Path, pattern: str | None) -> str:
    where = f"{job.manifest}:{job.line}" if job.manifest is not None else f"line {job.line}"
    name = job.output_name
    rename = (
        f"change --name {pattern!r} so this row makes a name of its own, e.g. with {{id}}"
        if pattern
        else "give this row another output name (its 'output' cell or its 'id')"
    )
    if owner.row is None:
        whose = f"a file already in {videos_dir} that no row of this batch made"
        hint = f"move or rename that file out of {videos_dir.name}/, or {rename}"
    else:
        line = f", line {owner.line}" if owner.line is not None else ""
        state = "the video" if owner.done else "the video being made"
        whose = f"{state} of row {owner.row!r}{line}"
        forget = (
            f"orchestrator forget {shlex.quote(owner.row)} {shlex.quote(str(videos_dir.parent))}"
        )
        hint = f"{rename}; or, if that video is no longer wanted, erase its row first: `{forget}`"
    return (
        f"{where}: field 'output': the video file {name!r} is {whose}; this new row would "
        f"overwrite it ({hint})"
    )
