"""How long each link of a row lasts, the link an email should use, and the warning when one
dies too soon (``--links-valid-days``).

A batch's links go into emails that are read for weeks, so ``results.csv`` says when each one
stops working (``*_expires`` columns, docs/run-directory.md#email-ready-columns), in one of three
forms:

- an ISO time in UTC (``2026-12-07T04:00:00Z``), when the link states its own expiry in its
  query string: ``expires=`` / ``Expires=`` (seconds since the epoch: CloudFront's signed URLs,
  S3's older presigned ones, the embedded simulator's links), ``X-Amz-Date`` plus
  ``X-Amz-Expires`` (S3's presigned URLs, at most 7 days), ``X-Goog-Date`` plus
  ``X-Goog-Expires`` (Google Cloud Storage), or ``se=`` (an Azure shared-access signature); and
  for a delivered video, the expiry its ``delivered`` record holds;
- ``unknown``: Pictory's own links (``videoURL``, ``thumbnail``, the subtitle files) that state
  none. Pictory says they expire without saying when (contract §2 step 7), so a link of unknown
  life counts as dying for ``--links-valid-days``;
- ``never``: a share page (``videoShareURL``/``shareVideoURL``: [choice] Pictory publishes no
  lifetime for the viewing page; it goes when the job is cleaned, by ``DELETE
  /v1/jobs/{id}/clean`` or Pictory's retention, §5.4) and a delivered video whose URL is not
  presigned (``--deliver-public-url``, a public bucket or CDN).

``email_url`` is the link a row's email would use (``[report] email_link``): by default the most
durable the row has (``never`` first: the delivered copy, then the share page; then the latest
known expiry; ``unknown`` last). ``--links-valid-days N`` makes the run (and ``orchestrator
report``) say in one line, at the end and on the report, how many done rows' ``email_url`` dies
before N days from now, and what lasts longer.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus, urlsplit

from orchestrator.errors import UserError
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.row_state import RowState
from orchestrator.report.previews import gif_name
from orchestrator.report.thumbnails import poster_name

NEVER: Literal["never"] = "never"
UNKNOWN: Literal["unknown"] = "unknown"
EmailLink = Literal["durable", "video", "share", "delivered"]
LINK_COLUMNS = ("video_url", "thumbnail_url", "share_url", "srt_url", "vtt_url", "txt_url")
"""The link columns of ``results.csv`` whose expiry is shown as ``COLUMN_expires`` (the
delivered copy's is ``delivered_expires``, written by the deliver stage's columns)."""
_SUBTITLE_KEYS = {"srt_url": "srtFile", "vtt_url": "vttFile", "txt_url": "txtFile"}
Expiry = float | Literal["never", "unknown"]
"""When a link stops working: seconds since the epoch, ``never``, or ``unknown``."""


@functools.lru_cache(maxsize=64)
def stated_expiry(url: str) -> float | None:
    """The expiry ``url`` states in its query string (see the module docstring), else None.
    Remembered for the last few links: a row's cells and its email link ask for the same one
    (``results.csv`` of 100,000 rows parses each link once)."""
    query = _query(url)
    if query is None:
        return None
    epoch = query.get("expires")
    if epoch is not None and epoch.isdigit():
        return float(epoch)
    for prefix in ("x-amz-", "x-goog-"):
        signed, lasts = query.get(prefix + "date"), query.get(prefix + "expires")
        if signed is not None and lasts is not None and lasts.isdigit():
            try:
                start = dt.datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            except ValueError:
                return None
            return start.timestamp() + int(lasts)
    azure = query.get("se")
    if azure is not None:
        try:
            return dt.datetime.fromisoformat(azure.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _query(url: str) -> dict[str, str] | None:
    """``url``'s query parameters, names lowercased (the last of a repeated one wins); None
    for a URL that does not parse. ``urlsplit`` + ``parse_qsl``'s reading, without their cost
    for what cannot matter here (a query is what follows the first ``?``, up to a ``#``)."""
    query = url.partition("#")[0].partition("?")[2]
    if not query:
        return {}
    if any(c in url for c in "[]") and "://[" not in url:  # what urlsplit refuses
        try:
            urlsplit(url)
        except ValueError:
            return None
    found: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if not value:  # as parse_qsl: a blank value is left out
            continue
        if "%" in pair or "+" in pair:
            name, value = unquote_plus(name), unquote_plus(value)
        found[name.lower()] = value
    return found


def pictory_expiry(url: str | None) -> Expiry | None:
    """A Pictory file link's expiry: the one it states, else ``unknown``; None: no link."""
    if not url:
        return None
    stated = stated_expiry(url)
    return UNKNOWN if stated is None else stated


def delivered_link(st: RowState) -> tuple[str | None, Expiry | None]:
    """The delivered copy's URL and expiry (its record's, else the URL's; ``never`` when it
    states none: a public URL), or (None, None) before it is delivered."""
    url = st.delivered_url
    if not url:
        return None, None
    expires = st.delivered_expires
    if expires is None:
        expires = stated_expiry(url)
    return url, NEVER if expires is None else expires


def link_expiries(st: RowState) -> dict[str, Expiry | None]:
    """Each of ``LINK_COLUMNS``'s expiry for the row (None where it has no such link)."""
    subtitles = st.subtitles or {}
    found: dict[str, Expiry | None] = {
        "video_url": pictory_expiry(st.video_url),
        "thumbnail_url": pictory_expiry(st.thumbnail),
        "share_url": NEVER if st.share_url else None,
    }
    for column, key in _SUBTITLE_KEYS.items():
        found[column] = pictory_expiry(subtitles.get(key))
    return found


def _lasting(expiry: Expiry) -> tuple[int, float]:
    """Ranks expiries: ``never`` above any time, a later time above an earlier, ``unknown``
    last."""
    if expiry == NEVER:
        return (2, 0.0)
    if expiry == UNKNOWN:
        return (0, 0.0)
    return (1, float(expiry))


def email_link(st: RowState, choice: EmailLink = "durable") -> tuple[str, Expiry] | None:
    """The link a row's email would use (``[report] email_link``) and its expiry; None when
    the row has no such link (yet)."""
    delivered, delivered_expiry = delivered_link(st)
    candidates: dict[str, tuple[str, Expiry]] = {}
    if delivered is not None and delivered_expiry is not None:
        candidates["delivered"] = (delivered, delivered_expiry)
    if st.share_url:
        candidates["share"] = (st.share_url, NEVER)
    video = pictory_expiry(st.video_url)
    if st.video_url and video is not None:
        candidates["video"] = (st.video_url, video)
    if choice != "durable":
        return candidates.get(choice)
    if not candidates:
        return None
    # the most lasting; on a tie the first here: the user's own copy, then the share page
    return max(candidates.values(), key=lambda c: _lasting(c[1]))


def expiry_cell(expiry: Expiry | None) -> str:
    """An expiry for a cell: an ISO time in UTC, ``never``, ``unknown``; "" for no link."""
    if expiry is None:
        return ""
    if isinstance(expiry, str):
        return expiry
    return dt.datetime.fromtimestamp(expiry, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dies_before(expiry: Expiry, deadline_s: float) -> bool:
    """Whether a link of ``expiry`` may stop working before ``deadline_s`` (``unknown`` may)."""
    if expiry == NEVER:
        return False
    if expiry == UNKNOWN:
        return True
    return float(expiry) < deadline_s


@dataclass
class ShortLinks:
    """Done rows whose email link dies before the deadline: how many, of how many, and the
    first one's link column and expiry (for the message)."""

    valid_days: float
    rows: int = 0
    done: int = 0
    example: str = ""

    def line(self) -> str | None:
        """The one-line warning, or None when every done row's email link lasts."""
        if self.rows == 0:
            return None
        return (
            f"links: {self.rows} of {self.done} done row(s) have an email_url that may stop "
            f"working within {self.valid_days:g} day(s) (--links-valid-days), e.g. {self.example}"
            '; for links that last, use the share page ([report] email_link = "share" or '
            '"durable") or deliver to a public bucket or CDN (--deliver-public-url BASE)'
        )


def links_warning(
    state: LedgerState, valid_days: float | None, now_s: float, choice: EmailLink | None = None
) -> str | None:
    """The one-line ``--links-valid-days`` warning for the batch (None: not asked, or every
    done row's email link lasts); ``choice``: ``[report] email_link`` (default: as the batch
    recorded it). A number of days not above 0 is refused in one line."""
    if valid_days is None:
        return None
    if not valid_days > 0:
        raise UserError(f"--links-valid-days {valid_days:g}: give a number of days above 0")
    chosen = recorded_email_link(state) if choice is None else choice
    return short_links(state, valid_days=valid_days, now_s=now_s, choice=chosen).line()


def short_links(
    state: LedgerState, *, valid_days: float, now_s: float, choice: EmailLink = "durable"
) -> ShortLinks:
    """Count the done rows whose ``email_link`` dies before ``valid_days`` from ``now_s`` (one
    pass over the ledger's rows; the manifest is not read)."""
    found = ShortLinks(valid_days)
    deadline_s = now_s + valid_days * 86400.0
    for st in state.rows.values():
        if st.status != "done":
            continue
        found.done += 1
        link = email_link(st, choice)
        if link is None or dies_before(link[1], deadline_s):
            found.rows += 1
            if not found.example:
                row = f"row {st.row}"
                found.example = (
                    f"{row} has none" if link is None else f"{row}'s expires {expiry_cell(link[1])}"
                )
    return found


EMAIL_COLUMNS = (
    "poster",
    "preview_gif",
    "email_url",
    "email_url_expires",
    *(f"{c}_expires" for c in LINK_COLUMNS),
)
"""``results.csv``'s email-ready columns (after ``error_message``; see ``email_cells``)."""


def email_cells(
    st: RowState | None,
    video_file: str | None,
    thumbs: AbstractSet[str],
    choice: EmailLink = "durable",
) -> dict[str, str]:
    """A row's ``EMAIL_COLUMNS``: its poster frame and preview GIF (paths relative to the run
    directory, when ``thumbs``, what the run directory holds: ``thumbnails.thumbs_in``, has
    them), its ``email_link`` and when it expires, and when each of its links expires (see the
    module docstring)."""
    cells = dict.fromkeys(EMAIL_COLUMNS, "")
    if st is None:
        return cells
    if video_file and thumbs:
        for column, name in (("poster", poster_name), ("preview_gif", gif_name)):
            made = name(video_file)
            if made in thumbs:
                cells[column] = made
    link = email_link(st, choice)
    if link is not None:
        cells["email_url"], cells["email_url_expires"] = link[0], expiry_cell(link[1])
    for column, expiry in link_expiries(st).items():
        cells[f"{column}_expires"] = expiry_cell(expiry)
    return cells


def recorded_email_link(state: LedgerState) -> EmailLink:
    """The ``[report] email_link`` of the batch's latest session (its ``run`` record's config),
    so ``orchestrator report`` writes the same ``email_url`` as the run did."""
    record = state.runs[-1] if state.runs else None
    report = (record.config or {}).get("report") if record is not None else None
    choice = report.get("email_link") if isinstance(report, dict) else None
    named: dict[object, EmailLink] = {"video": "video", "share": "share", "delivered": "delivered"}
    return named.get(choice, "durable")
