"""Which manifest rows a run works on, and how: a done row is skipped, a failed one retried
when its failure allows (or ``--retry-failed``), an ambiguous one only with
``--rerender-ambiguous``, and an edited one (its values differ from those its video was made
from) keeps its video or, with ``--rerender-changed``, renders again under a new name.
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.api.retry import resume_action
from orchestrator.config import Config
from orchestrator.errors import RunDirError
from orchestrator.events import Sink
from orchestrator.input.rows import RowJob
from orchestrator.ledger.protocol import Ledger
from orchestrator.ledger.records import Retry
from orchestrator.ledger.row_state import RowState


async def changed_values(
    state: RowState, job: RowJob, config: Config, ledger: Ledger, sink: Sink, videos_dir: Path
) -> RowState:
    """A row whose values differ from those its video was made from (an edited manifest line).
    By default it keeps that video (and results.csv its old values), with one warning; with
    ``--rerender-changed`` it starts over under a new file name, never over the delivered one:
    the name its values make now (``--name``) with the next version suffix (``versioned_name``).

    Before that, the row takes the name the ledger records for it: a re-render's, or the one it
    was admitted under when its video is made or being made (a render sent), so neither a resume
    nor an edited manifest renames a row's video."""
    if state.forgotten is not None:  # never rendered again (``ledger.forget``)
        return state
    fresh_name = job.output_name
    if state.output_override is not None:
        job.output_name = state.output_override
    elif state.output is not None and (
        state.status == "done" or state.render_intent or state.render_job is not None
    ):
        job.output_name = Path(state.file).name if state.file else state.output
    if not state.made_from_other_values(job.variables):
        return state
    if not config.run.rerender_changed:
        sink.emit("row_changed", row=job.row_id, line=job.line, action="kept its video")
        return state
    name = versioned_name(videos_dir, fresh_name, state.file or job.output_name)
    await ledger.append(
        Retry(
            row=job.row_id,
            reason="values changed since its video was made (--rerender-changed)",
            output=name,
        )
    )
    sink.emit("row_changed", row=job.row_id, line=job.line, action=f"rendering again as {name}")
    job.output_name = name
    return ledger.state.rows[job.row_id]


def versioned_name(videos_dir: Path, name: str, previous: str | None = None) -> str:
    """``NAME.v2.mp4`` for a row to be rendered again as ``name`` (its pattern's name now)
    whose video is ``previous`` (default: ``name``): one version past ``previous``'s, or the
    next that is free in ``videos_dir``. Earlier batches' ``NAME-v2.mp4`` count too."""
    version_of = re.compile(r"[.-]v(\d+)$")
    found = version_of.search(Path(previous or name).stem)
    version = int(found.group(1)) + 1 if found else 2
    stem = version_of.sub("", Path(name).stem)
    while (videos_dir / f"{stem}.v{version}.mp4").exists():
        version += 1
    return f"{stem}.v{version}.mp4"


async def admit(state: RowState | None, config: Config, ledger: Ledger, job: RowJob) -> bool:
    """Whether this run works on the row (``retry.resume_action`` decides; a failure older than
    the batch's latest ``--retry-failed`` is tried again, once); record a restart when its old
    jobs are dead."""
    retry_failed = state is not None and ledger.state.may_retry(state)
    action = resume_action(
        state, retry_failed=retry_failed, rerender_ambiguous=config.run.rerender_ambiguous
    )
    if action == "restart":
        assert state is not None
        await ledger.append(
            Retry(row=job.row_id, reason=f"previous job failed: {state.fail_message}")
        )
    return action != "skip"


def check_same_manifest(ledger: Ledger, run_dir: Path, manifest: Path) -> None:
    """A run directory holds one batch: refuse another manifest file."""
    first = ledger.state.run_record
    if first is None:
        return
    recorded = first.manifest
    if recorded and Path(recorded) != manifest.resolve():
        raise RunDirError(
            f"{run_dir} belongs to the manifest {recorded}, not {manifest.resolve()}; "
            "use another --out for a different batch (an edited or extended copy of the same "
            "manifest file is fine: rows are matched by identity)"
        )
