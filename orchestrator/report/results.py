"""``RUN_DIR/results.csv``: one line per manifest row, in manifest order, written atomically.

Columns: ``id,status,file,extra_files,bytes,sha256,video_url,render_job_id,attempts,error,
retry,line``, then what the finished render told (``duration_s,ai_credits,thumbnail_url,
share_url,srt_url,vtt_url,txt_url``) and Pictory's own ``error_code,error_message`` of a failed
row, verbatim, then what an email needs (``links.EMAIL_COLUMNS``: the local poster and preview
GIF, the ``email_url``, and when each link expires), then the delivered copy
(``delivered_url,delivered_expires``: ``--deliver``), followed by the row's own columns in the
manifest's order: its variables and its
extra columns (``input.extra_columns``). A manifest column named like one of ours is shown as
``NAME (manifest)``. The columns after ``line`` came later: earlier ones keep their places.

- ``extra_files``: the files written beside the video, ``;``-separated (a video-edit row's
  ``.srt``, ``.vtt`` and ``.txt``).
- ``status``: ``done``, ``failed``, ``ambiguous`` or ``pending``.
- ``error``: ``KIND: MESSAGE``; a failure whose cause Pictory names and we know
  (``CAUSE_HINTS``: ``SCENE_BACKGROUND_VISUAL_NOT_FOUND``) adds ``; what to do: HINT``.
- ``retry``: what renders a row that is not done: ``resume`` (a plain rerun or resume retries
  it), ``retry-failed`` (a permanent failure: only ``--retry-failed`` retries it) or
  ``rerender-ambiguous`` (it may have rendered already; ``--rerender-ambiguous`` renders it
  again); for a done row whose manifest values were edited after its video was made,
  ``rerender-changed``, and the row's variable cells hold the values the video was made from.
  Option names go without their dashes: a cell starting with ``-`` would be neutralised.
- A row re-rendering after an edit (``--rerender-changed``; not done yet) shows the state of that
  render, its new values and no file: the video of its earlier values is named in ``error``,
  never shown beside values it was not made from.

How the file is encoded: ``results_csv`` (the dialect, ``--results-dialect``: by default like
the manifest; every cell a spreadsheet would run as a formula made inert; reading it back).

A workbook manifest also gets ``results.xlsx``, the same rows in the sheet's own form
(``results_xlsx``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from orchestrator.api.responses import VISUAL_NOT_FOUND
from orchestrator.api.retry import resume_action
from orchestrator.files import make_private_dir
from orchestrator.input.rows import RowLister
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.row_state import RowState
from orchestrator.report.links import (
    EMAIL_COLUMNS,
    EmailLink,
    email_cells,
    expiry_cell,
    recorded_email_link,
)
from orchestrator.report.results_csv import ResultsDialect, batch_dialect, write_csv
from orchestrator.report.results_xlsx import write_workbook_results
from orchestrator.report.thumbnails import thumbs_in

RESULTS_NAME = "results.csv"
FIXED_COLUMNS = (
    "id",
    "status",
    "file",
    "extra_files",
    "bytes",
    "sha256",
    "video_url",
    "render_job_id",
    "attempts",
    "error",
    "retry",
    "line",
    "duration_s",
    "ai_credits",
    "thumbnail_url",
    "share_url",
    "srt_url",
    "vtt_url",
    "txt_url",
    "error_code",
    "error_message",
    *EMAIL_COLUMNS,
    "delivered_url",
    "delivered_expires",
)
_SUBTITLE_COLUMNS = {"srt_url": "srtFile", "vtt_url": "vttFile", "txt_url": "txtFile"}
CAUSE_HINTS: dict[str, str] = {
    VISUAL_NOT_FOUND: "the search query found no stock visual: change the scene's text or give "
    "it a background (an image or video URL), then run again with --retry-failed",
}
"""What to do about a failure whose cause Pictory names (in its code or message)."""


def known_cause(state: RowState) -> str | None:
    """The name in ``CAUSE_HINTS`` that the row's failure carries (Pictory's code or message, or
    our description of it), if any."""
    said = (state.fail_code or "", state.fail_api_message or "", state.fail_message or "")
    return next((name for name in CAUSE_HINTS if any(name in text for text in said)), None)


def number_cell(value: float | None) -> str:
    """A number for a cell: ``65.6``, ``48`` (no trailing zeros, no exponent); empty for None."""
    if value is None:
        return ""
    return f"{value:.3f}".rstrip("0").rstrip(".")


@dataclass
class Usage:
    """What a batch's finished renders add up to: how many, their video minutes (the account's
    video-minute quota spends these) and the AI credits Pictory says they used."""

    renders: int = 0
    video_s: float = 0.0
    credits: float = 0.0
    credits_known: int = 0
    """Renders whose job said ``aiCreditsUsed`` (older ledgers, and some answers, have none)."""

    def add(self, state: RowState) -> None:
        if state.video_url is None:
            return
        self.renders += 1
        self.video_s += state.duration_s or 0.0
        if state.credits is not None:
            self.credits += state.credits
            self.credits_known += 1

    @property
    def video_minutes(self) -> float:
        return self.video_s / 60.0

    def line(self) -> str:
        """``25 videos rendered: 12.5 video minutes, 550 AI credits used``."""
        credits = f"{number_cell(self.credits)} AI credits used"
        if self.credits_known < self.renders:
            credits += f" (known for {self.credits_known})"
        return (
            f"{self.renders} video(s) rendered: {self.video_minutes:.1f} video minutes, {credits}"
        )


def batch_usage(state: LedgerState) -> Usage:
    """The ``Usage`` of every row the ledger holds (one pass over its rows; the manifest is not
    read, so a row dropped from it since its render still counts: it was billed)."""
    usage = Usage()
    for row in state.rows.values():
        usage.add(row)
    return usage


def retry_hint(state: RowState | None) -> str:
    """How a row that is not done gets rendered (see the module docstring): the least a rerun
    needs for ``retry.resume_action`` to work on it."""
    if state is not None and state.status == "done":
        return ""
    for hint, retry_failed, rerender_ambiguous in (
        ("resume", False, False),
        ("retry-failed", True, False),
        ("rerender-ambiguous", False, True),
    ):
        action = resume_action(
            state, retry_failed=retry_failed, rerender_ambiguous=rerender_ambiguous
        )
        if action != "skip":
            return hint
    return ""


def write_results(
    out_dir: Path, rows: RowLister, state: LedgerState, *, dialect: str | None = None
) -> tuple[Path, Counter[str], int]:
    """Write ``OUT_DIR/results.csv`` from the batch's rows (``rows()``, manifest order) and their
    states; return its path, counts by status, and how many of the failed rows failed
    permanently (only ``--retry-failed`` retries them). ``dialect``: ``--results-dialect``
    (default: ``batch_dialect``). A shared batch's files are named as each worker wrote them
    under its own ``--out``."""
    names: dict[str, None] = {}
    for job in rows():
        names.update(dict.fromkeys(job.columns or job.variables))
    header = [*FIXED_COLUMNS, *(f"{n} (manifest)" if n in FIXED_COLUMNS else n for n in names)]
    make_private_dir(out_dir)
    path = out_dir / RESULTS_NAME
    email = recorded_email_link(state)
    thumbs = thumbs_in(out_dir)
    counts: Counter[str] = Counter()
    failed_permanent = 0

    def lines() -> Iterator[list[str]]:
        nonlocal failed_permanent
        counts.clear()
        failed_permanent = 0
        for job in rows():
            st = state.rows.get(job.row_id)
            fixed, variables = row_cells(
                job.row_id, job.line, st, job.variables, thumbs=thumbs, email=email
            )
            counts[fixed["status"]] += 1
            failed_permanent += fixed["status"] == "failed" and st is not None and st.fail_permanent
            cells = job.shown(variables) if job.extras else variables
            yield [*(fixed[c] for c in FIXED_COLUMNS), *(cells.get(n, "") for n in names)]

    chosen: ResultsDialect | None = batch_dialect(state, dialect)
    while chosen is not None:
        try:
            write_csv(path, header, lines(), chosen)
            break
        except UnicodeEncodeError:  # a cell the manifest's encoding cannot hold
            if chosen.fallback is None:
                raise
            chosen = chosen.fallback
    write_workbook_results(out_dir, state, list(names), FIXED_COLUMNS, lines)  # an .xlsx's
    return path, counts, failed_permanent


def row_cells(
    row_id: str,
    line: int,
    st: RowState | None,
    variables: Mapping[str, str],
    *,
    thumbs: AbstractSet[str] = frozenset(),
    email: EmailLink = "durable",
) -> tuple[dict[str, str], Mapping[str, str]]:
    """A row's fixed columns (``FIXED_COLUMNS``) from its ledger state, and the values to show
    beside them: its own, or for a video kept after its line was edited, the values the video
    was made from (never new values beside an old video). A row re-rendering after an edit
    shows that render's state and no file yet; ``error`` names the earlier video. The
    email-ready columns (``links.email_cells``): ``thumbs``, the posters and GIFs the run
    directory holds (``thumbnails.thumbs_in``), ``email`` is ``[report] email_link``."""
    status = st.status if st is not None else "pending"
    error = ""
    failed = st is not None and status in ("failed", "ambiguous")
    if st is not None and failed:
        error = f"{st.fail_kind}: {st.fail_message}" if st.fail_kind else (st.fail_message or "")
        cause = known_cause(st)
        if cause is not None:
            error = f"{error}; what to do: {CAUSE_HINTS[cause]}"
    retry = retry_hint(st)
    if (
        st is not None
        and status == "done"
        and st.rendered_values is not None
        and st.made_from_other_values(variables)
    ):
        variables, retry = st.rendered_values, "rerender-changed"
    video = st if st is not None and (status == "done" or st.output_override is None) else None
    if st is not None and video is None and st.file:
        earlier = f"the video of its earlier values stays at {st.file}"
        error = f"{error}; {earlier}" if error else f"re-rendering its edited values; {earlier}"
    fixed = {
        "id": row_id,
        "status": status,
        "file": (video.file or "") if video else "",
        "extra_files": ";".join(video.extras or []) if video else "",
        "bytes": str(video.bytes) if video and video.bytes is not None else "",
        "sha256": (video.sha256 or "") if video else "",
        "video_url": (st.video_url or "") if st else "",
        "render_job_id": (st.render_job or "") if st else "",
        "attempts": str(st.attempts) if st else "0",
        "error": error,
        "retry": retry,
        "line": str(line),
        "duration_s": number_cell(st.duration_s) if st and st.video_url else "",
        "ai_credits": number_cell(st.credits) if st and st.video_url else "",
        "thumbnail_url": (st.thumbnail or "") if st else "",
        "share_url": (st.share_url or "") if st else "",
        **{
            c: ((st.subtitles or {}).get(k, "") if st else "") for c, k in _SUBTITLE_COLUMNS.items()
        },
        "error_code": (st.fail_code or "") if st and failed else "",
        "error_message": (st.fail_api_message or "") if st and failed else "",
        **email_cells(st, video.file if video else None, thumbs, email),
        "delivered_url": (video.delivered_url or "") if video else "",
        "delivered_expires": expiry_cell(video.delivered_expires)
        if video and video.delivered_url and video.delivered_expires is not None
        else "",
    }
    return fixed, variables
