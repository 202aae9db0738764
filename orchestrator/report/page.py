"""``RUN_DIR/report.html``: the batch as a person checks it, by looking.

Three files, all in the run directory, all working from disk (``file://``) and from a zipped copy
mailed on (no CDN, no server):

- ``report.html``: counts by state, duration and throughput, the video minutes and AI credits
  the batch's renders used, failures grouped by class (or by the cause Pictory named, when we
  know what to do about it: ``results.CAUSE_HINTS``) with the API's message and what to do, and
  an empty grid; its CSS and script are inline (``report_page``). Small whatever the batch size.
- ``report-data.js``: every row (id, status, file, poster, error, line, variables and extra
  columns, then the render's video seconds, AI credits, share page, Pictory thumbnail and the
  preview GIF) as compact arrays, setting ``window.REPORT_DATA``. A ``<script src>`` rather than
  a JSON ``fetch``: Chromium refuses ``fetch`` of ``file://``. About 200 bytes a row; the page
  draws one page of cards at a time, so 100,000 rows stay usable.
- ``thumbs/*.jpg``: one poster frame per downloaded video (``thumbnails``); ``thumbs/*.gif``:
  its preview GIF (``previews``), the same file ``results.csv``'s ``preview_gif`` names.

Row data reaches the page only through ``textContent`` and attribute setters, never as markup, so
a variable holding ``<script>`` is shown, not run.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from collections import Counter
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from orchestrator.clock import Clock, RealClock, local_time
from orchestrator.files import atomic_text, write_text_atomically
from orchestrator.input.rows import RowLister
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.row_state import RowState
from orchestrator.report.page_template import PAGE_TEMPLATE
from orchestrator.report.previews import GifSize, gif_name, preview_gif
from orchestrator.report.results import CAUSE_HINTS, Usage, known_cause, number_cell
from orchestrator.report.thumbnails import poster_frame, poster_name, thumbs_in

REPORT_NAME = "report.html"
DATA_NAME = "report-data.js"
EXAMPLE_ROWS_PER_KIND = 5
MESSAGES_PER_KIND = 3
MAX_MESSAGES_TRACKED = 50
STATUSES = ("done", "failed", "ambiguous", "pending")

HINTS: dict[str, str] = {
    "job_failed": "Pictory could not render these rows. The API's message usually names the "
    "cause: a variable it cannot use (empty, too long for its scene, an image URL it cannot "
    "fetch). Fix the rows in the manifest, then run again with --retry-failed.",
    "stuck": "The job outlived its stage's deadline ([poll] render_deadline_s). Pictory may be "
    "slow today: run the same command again; each row re-attaches to its job, nothing renders "
    "twice.",
    "job_stuck": "The job outlived its stage's deadline ([poll] render_deadline_s). Run the same "
    "command again; each row re-attaches to its job, nothing renders twice.",
    "job_lost": "The API no longer knows the recorded render job: it said so twice, or said the "
    "job was cleaned (past its retention). --retry-failed renders these rows again, and each "
    "render is billed again. (Against the embedded simulator nothing is billed, and a later "
    "--simulate run makes the jobs its stopped simulator held again by itself.)",
    "auth": "The API refused the credentials. Check them with `orchestrator doctor` "
    "(PICTORY_API_KEY, or PICTORY_CLIENT_ID and PICTORY_CLIENT_SECRET, with PICTORY_USER_ID if "
    "your account has one), then resume.",
    "rate_limited": "The API kept answering 429 after every retry. Lower [limits] "
    "max_requests_per_s or --concurrency, then resume.",
    "transient": "Server errors or timeouts outlasted the retries. Resume: these rows are retried "
    "by the next run without --retry-failed.",
    "not_delivered": "The requests never reached the API (connection refused, DNS). Check the "
    "network and [api] base_url, then resume.",
    "permanent": "The API refused the request (4xx); its message names the field. Fix the row or "
    "the template, then run again with --retry-failed.",
    "ambiguous": "The answer to the render request was lost: a render may exist. These rows are "
    "not rendered again by default (that may bill twice); see docs/failures.md and "
    "--rerender-ambiguous.",
    "download": "The video could not be downloaded completely. Resume: the download is retried "
    "without rendering again.",
    "link_expired": "The video link expired before the download finished. Resume: the job is "
    "read again for a fresh link, nothing renders twice.",
    "not_a_video": "The video link answered something that is not a playable MP4. Run the same "
    "command again: it downloads again from the recorded render job and renders nothing twice.",
    **{name: f"Pictory named the cause: {hint}." for name, hint in CAUSE_HINTS.items()},
}
DEFAULT_HINT = (
    "Read the API's message. Resume retries transient failures; --retry-failed retries the rest."
)
_TS = re.compile(rb'"ts":(-?[0-9.]+)')
_JOB_ID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)


def failure_group(state: RowState) -> str:
    """The class a failed or ambiguous row is grouped under: the cause Pictory named when we know
    what to do about it (``results.CAUSE_HINTS``), else its kind, else its status."""
    return known_cause(state) or state.fail_kind or state.status


def web_link(url: str | None) -> str:
    """``url`` when it is an http(s) link (an API's answer is not trusted to be one), else ""."""
    return url if url and url.startswith(("https://", "http://")) else ""


def message_pattern(message: str) -> str:
    """The message with job ids blanked, so one cause met by many rows is one line."""
    return _JOB_ID.sub("…", message)


@dataclass
class FailureGroup:
    count: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, row_id: str, message: str) -> None:
        self.count += 1
        pattern = message_pattern(message)
        if pattern in self.messages or len(self.messages) < MAX_MESSAGES_TRACKED:
            self.messages[pattern] += 1
        if len(self.examples) < EXAMPLE_ROWS_PER_KIND:
            self.examples.append(row_id)


@dataclass
class ReportInfo:
    path: Path
    counts: Counter[str]
    posters: int
    failures: dict[str, FailureGroup]
    usage: Usage = field(default_factory=Usage)


def ledger_timing(state: LedgerState) -> Timing:
    """Time spent working (each run session's span, summed) and rows downloaded in it."""
    return Timing(active_s=state.sessions.total_active_s, downloaded=state.sessions.downloaded)


@dataclass(frozen=True)
class Timing:
    active_s: float
    downloaded: int


def write_report(
    run_dir: Path,
    rows: RowLister,
    state: LedgerState,
    *,
    notice: str | None = None,
    posters_wanted: bool = True,
    clock: Clock | None = None,
    videos_in: Path | None = None,
    warning: str | None = None,
    gif: GifSize | None = None,
) -> ReportInfo:
    """Write ``report-data.js``, the posters and ``report.html`` into ``run_dir``; ``notice`` is
    shown on top (e.g. that a canary waits for approval), then ``warning`` (e.g. links that die
    too soon: ``links.links_warning``); the page says when it was written (``clock``).
    ``videos_in``: the run directory the ledger's files are in, when the report goes elsewhere
    (``report --out``); the page links them from there. ``gif``: make the preview GIFs the run
    has not made yet (``previews``); the page links each GIF there is."""
    source = videos_in or run_dir
    counts: Counter[str] = Counter()
    failures: dict[str, FailureGroup] = {}
    columns: dict[str, int] = {}
    posters = 0
    usage = Usage()
    thumbs = thumbs_in(run_dir)
    with atomic_text(run_dir / DATA_NAME) as out:
        out.write('window.REPORT_DATA={"rows":[')
        first = True
        for job in rows():
            st = state.rows.get(job.row_id)
            status = st.status if st is not None else "pending"
            counts[status] += 1
            if st is not None:
                usage.add(st)
            file = (st.file or "") if st is not None else ""
            thumb = ""
            if posters_wanted and status == "done" and file:
                made = poster_frame(source / file, run_dir / poster_name(file))
                if made is not None:
                    thumb = poster_name(file)
                    posters += 1
            gif_file = _preview_gif(source, run_dir, file, gif, thumbs) if status == "done" else ""
            if file and videos_in is not None:
                file = Path(os.path.relpath(source / file, run_dir)).as_posix()
            kind = message = ""
            if st is not None and status in ("failed", "ambiguous"):
                kind = failure_group(st)
                message = st.fail_message or ""
                failures.setdefault(kind, FailureGroup()).add(job.row_id, message)
            values = [""] * len(columns)
            for name, value in (job.shown() if job.extras else job.variables).items():
                index = columns.setdefault(name, len(columns))
                if index >= len(values):
                    values.extend([""] * (index + 1 - len(values)))
                values[index] = value
            # Links are relative paths, percent-encoded: no file name (a tampered ledger's
            # "javascript:...") can become a scheme the browser would run.
            link, thumb = quote(file, safe="/"), quote(thumb, safe="/")
            captions = _captions(st.extras if st is not None and link else None, source, run_dir)
            lang = row_language(job.shown() if job.extras else job.variables)
            record = [job.row_id, status, link, thumb, kind, message, job.line, values]
            record += [captions, lang]  # 8: a captions track (Pictory's vttFile), 9: lang
            record += _render_told(st)  # 10-13: seconds, AI credits, share page, thumbnail
            record.append(quote(gif_file, safe="/"))  # 14: the preview GIF
            out.write(("" if first else ",\n") + _js_json(record))
            first = False
        out.write('],"columns":' + _js_json(list(columns)) + "};\n")
    written = local_time(clock or RealClock())
    notices = [text for text in (notice, warning) if text]
    page = _page(run_dir, counts, failures, ledger_timing(state), notices, written, usage)
    path = run_dir / REPORT_NAME
    write_text_atomically(path, page)
    return ReportInfo(path=path, counts=counts, posters=posters, failures=failures, usage=usage)


LANGUAGE_COLUMNS = ("language", "lang")
"""A row's language, when the manifest says it (the storyboard flows' ``language`` field)."""
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def row_language(values: dict[str, str]) -> str:
    """The row's language as a BCP 47 tag for ``lang`` (``en``, ``ar``, ``en-US``), or "" when
    no ``language`` column holds one."""
    for name, value in values.items():
        if name.strip().lower() in LANGUAGE_COLUMNS and _LANGUAGE_TAG.fullmatch(value.strip()):
            return value.strip()
    return ""


def _captions(extras: list[str] | None, source: Path, run_dir: Path) -> str:
    """The row's ``.vtt`` subtitles (written from the render's ``vttFile``), linked from the
    report like its video: a relative, percent-encoded path, or ""."""
    for extra in extras or ():
        if extra.endswith(".vtt"):
            path = Path(os.path.relpath(source / extra, run_dir)).as_posix()
            return quote(path, safe="/")
    return ""


def _render_told(st: RowState | None) -> list[str]:
    """What the finished render told (§6.2), for the row's card: its video seconds, AI credits,
    share page and Pictory's thumbnail (links only when http(s)); empty strings before that."""
    if st is None or st.video_url is None:
        return ["", "", "", ""]
    return [
        number_cell(st.duration_s),
        number_cell(st.credits),
        web_link(st.share_url),
        web_link(st.thumbnail),
    ]


def _preview_gif(
    source: Path, run_dir: Path, file: str, gif: GifSize | None, thumbs: AbstractSet[str]
) -> str:
    """The row's preview GIF (relative to ``run_dir``), made now when ``gif`` asks and the run
    did not; "" when there is none (``thumbs``: what ``run_dir`` held before the page)."""
    if not file:
        return ""
    name = gif_name(file)
    if gif is not None and preview_gif(source / file, run_dir / name, gif) is not None:
        return name
    return name if name in thumbs else ""


def _js_json(value: object) -> str:
    """JSON safe inside a ``<script>`` file: no ``</script>`` can close anything."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _page(
    run_dir: Path,
    counts: Counter[str],
    failures: dict[str, FailureGroup],
    timing: Timing,
    notices: list[str],
    written: dt.datetime,
    usage: Usage,
) -> str:
    esc = html.escape
    total = sum(counts.values())
    chips = "".join(
        f'<button class="chip {s}" data-status="{s}">{esc(s)} <b>{counts.get(s, 0)}</b></button>'
        for s in STATUSES
    )
    per_min = timing.downloaded / (timing.active_s / 60) if timing.active_s > 0 else 0.0
    stats = (
        f"<span>{total} rows</span><span>working time {_duration(timing.active_s)}</span>"
        f"<span>{per_min:.1f} videos/min</span>"
        f'<span class="usage">{usage.video_minutes:.1f} video minutes, '
        f"{esc(number_cell(usage.credits))} AI credits used</span>"
        f"<span>written {esc(f'{written:%Y-%m-%d %H:%M:%S}')}</span>"
    )
    groups = []
    for kind, group in sorted(failures.items(), key=lambda kv: -kv[1].count):
        messages = "".join(
            f"<li><q>{esc(m or '(no message)')}</q> × {n}</li>"
            for m, n in group.messages.most_common(MESSAGES_PER_KIND)
        )
        examples = ", ".join(f"<code>{esc(r)}</code>" for r in group.examples)
        groups.append(
            f'<section class="failure" data-kind="{esc(kind)}"><h3>{esc(kind)} '
            f"<small>{group.count} row(s)</small></h3>"
            f'<p class="hint"><b>What to do:</b> {esc(HINTS.get(kind, DEFAULT_HINT))}</p>'
            f"<ul>{messages}</ul><p>e.g. {examples}</p></section>"
        )
    failures_html = "".join(groups) or "<p>No failures.</p>"
    notice_html = "".join(f'<p class="notice">{esc(notice)}</p>' for notice in notices)
    parts = {
        "TITLE": esc(f"orchestrator report: {run_dir.name}"),
        "NOTICE": notice_html,
        "CHIPS": chips,
        "STATS": stats,
        "FAILURES": failures_html,
        "DATA": DATA_NAME,
    }
    # One pass: a value that spells a placeholder (a row id "@@DATA@@") is never filled in.
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], PAGE_TEMPLATE)


_PLACEHOLDER = re.compile(r"@@(TITLE|NOTICE|CHIPS|STATS|FAILURES|DATA)@@")


def _duration(exact_s: float) -> str:
    seconds = round(exact_s)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{exact_s:.1f} s" if exact_s < 10 else f"{secs} s"
