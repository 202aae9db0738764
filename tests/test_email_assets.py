"""Email-ready assets and links (issue 28 items 4 and 5), below the CLI: the preview GIF, when
each link expires and which one an email uses, and ``results.xlsx`` written with flat memory."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import anyio
import av
import hypothesis
import hypothesis.strategies
import openpyxl
import pytest
from openpyxl import Workbook, load_workbook

from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.row_state import RowState
from orchestrator.report import results_xlsx
from orchestrator.report.links import (
    email_cells,
    email_link,
    links_warning,
    stated_expiry,
)
from orchestrator.report.previews import GifSize, gif_name, preview_gif
from orchestrator.report.thumbnails import file_stem, poster_name, thumbs_in
from orchestrator.run.stages.assets import AssetMaker
from orchestrator.simulator.media import clip_bytes

NOW_S = dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()
DAY_S = 86400.0


def test_preview_gif_decodes_loops_forever_and_keeps_to_its_size(tmp_path: Path) -> None:
    """The GIF of a video's first seconds holds several frames, no wider than configured (the
    aspect ratio kept), and its NETSCAPE2.0 block loops it forever (count 0)."""
    video = tmp_path / "videos" / "cust-1.mp4"
    video.parent.mkdir()
    video.write_bytes(clip_bytes())  # 1 s, 160x90
    gif = tmp_path / gif_name("videos/cust-1.mp4")
    assert gif_name("videos/cust-1.mp4") == "thumbs/cust-1.gif"

    assert preview_gif(video, gif, GifSize(width_px=120, seconds=0.6, fps=10)) == gif
    with av.open(str(gif)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    assert 2 < len(frames) <= 7
    assert (frames[0].width, frames[0].height) == (120, 68)
    data = gif.read_bytes()
    assert data.startswith(b"GIF89a")
    loop = data.index(b"NETSCAPE2.0")
    assert data[loop + 11 : loop + 15] == b"\x03\x01\x00\x00"  # sub-block 1, loop count 0
    assert gif.stat().st_mode & 0o777 == 0o600

    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert preview_gif(tmp_path / "bad.mp4", tmp_path / "bad.gif", GifSize(120, 1, 5)) is None
    assert not (tmp_path / "bad.gif").exists()


def test_a_link_states_its_expiry_in_the_forms_stores_sign_with() -> None:
    """``expires=`` (the simulator, CloudFront), S3's ``X-Amz-Date`` + ``X-Amz-Expires``,
    Google's ``X-Goog-*`` and Azure's ``se=``; a link that states none has no stated expiry."""
    assert stated_expiry("https://cdn.example/v.mp4?expires=1796615844&sig=ab") == 1796615844
    assert stated_expiry("https://d.cloudfront.net/v.mp4?Expires=1796615844&Signature=x") == (
        1796615844
    )
    s3 = "https://b.s3.amazonaws.com/k.mp4?X-Amz-Date=20261201T000000Z&X-Amz-Expires=604800"
    assert stated_expiry(s3) == NOW_S + 7 * DAY_S
    goog = "https://storage.googleapis.com/b/k?X-Goog-Date=20261201T000000Z&X-Goog-Expires=60"
    assert stated_expiry(goog) == NOW_S + 60
    assert stated_expiry("https://a.blob.core.windows.net/c/k?se=2026-12-02T00:00:00Z") == (
        NOW_S + DAY_S
    )
    assert stated_expiry("https://video.pictory.ai/abc/video.mp4") is None
    assert stated_expiry("https://x.example/?X-Amz-Date=garbage&X-Amz-Expires=5") is None


def _done(row: str, **fields: Any) -> RowState:
    st = RowState(row=row, status="done", file=f"videos/{row}.mp4", **fields)
    return st


def test_each_link_says_when_it_expires_and_email_url_picks_the_most_durable() -> None:
    """Pictory's links: their stated expiry, else ``unknown``; the share page ``never``; a
    delivered copy its record's expiry (``never`` without one). ``email_url`` takes the most
    durable link, or the one ``[report] email_link`` names."""
    video = "https://cdn.example/v.mp4?expires=1796615844&sig=ab"
    st = _done("a", video_url=video, thumbnail="https://p.example/t.jpg", share_url="https://s/1")
    cells = email_cells(st, st.file, frozenset())
    assert cells["video_url_expires"] == "2026-12-07T03:57:24Z"
    assert cells["thumbnail_url_expires"] == "unknown"
    assert cells["share_url_expires"] == "never"
    assert cells["srt_url_expires"] == ""  # no such link
    assert (cells["email_url"], cells["email_url_expires"]) == ("https://s/1", "never")
    assert cells["poster"] == cells["preview_gif"] == ""  # no run directory to find them in
    assert email_link(st, "video") == (video, 1796615844.0)
    assert email_link(st, "delivered") is None

    presigned = _done("b", video_url=video, delivered_url="https://b/k", delivered_expires=NOW_S)
    assert email_link(presigned) == (video, 1796615844.0)  # lasts longer than the presigned copy
    public = _done("c", video_url=video, share_url="https://s/2", delivered_url="https://cdn/k")
    assert email_link(public) == ("https://cdn/k", "never")  # the user's own copy first


def _put(state: LedgerState, row: str, **fields: Any) -> None:
    """A row of ``state``, done unless ``fields`` say otherwise."""
    st = state.rows.take(row)
    st.status = "done"
    for name, value in fields.items():
        setattr(st, name, value)


def test_links_valid_days_counts_done_rows_whose_email_link_dies_too_soon() -> None:
    """A known expiry before the deadline and an ``unknown`` one both count; a share page or a
    link lasting past it does not; rows not done are not counted. The line names an example and
    what lasts longer; no days asked, no line; 0 days is refused."""
    state = LedgerState()
    soon = f"https://cdn.example/v.mp4?expires={int(NOW_S + DAY_S)}"
    late = f"https://cdn.example/v.mp4?expires={int(NOW_S + 30 * DAY_S)}"
    _put(state, "soon", video_url=soon)
    _put(state, "unknown", video_url="https://video.pictory.ai/x/video.mp4")
    _put(state, "late", video_url=late)
    _put(state, "shared", video_url=soon, share_url="https://s/1")
    _put(state, "pending", status="pending", video_url=soon)
    line = links_warning(state, 7, NOW_S)
    assert line is not None
    assert line.startswith("links: 2 of 4 done row(s) have an email_url that may stop working")
    assert "within 7 day(s)" in line and "--deliver-public-url" in line
    assert "row soon's expires 2026-12-02T00:00:00Z" in line
    assert links_warning(state, 60, NOW_S) is not None  # "late" dies too, now
    assert links_warning(state, None, NOW_S) is None
    shared_only = LedgerState()
    _put(shared_only, "s", share_url="https://s/1")
    assert links_warning(shared_only, 365, NOW_S) is None
    with pytest.raises(Exception, match="--links-valid-days 0: give a number of days above 0"):
        links_warning(state, 0, NOW_S)


def test_results_xlsx_is_written_in_write_only_mode_with_flat_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many rows go through openpyxl's write-only workbook (rows streamed to disk), and the
    hyperlinks through a spooled file rather than openpyxl's in-memory list: each link cell is
    a hyperlink, numbers are numbers, a formula-looking cell stays text."""
    made: list[dict[str, Any]] = []
    real = Workbook

    def spy(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(openpyxl, "Workbook", spy)  # imported by the writer when it writes
    rows = 1000
    ours = ["id", "status", "file", "bytes", "email_url"]
    lines = (
        [f"=cmd|{i}", f"r{i}", "done", f"videos/r {i}.mp4", str(1000 + i), f"https://s/{i}?a=1&b"]
        for i in range(rows)
    )
    path = tmp_path / "results.xlsx"
    results_xlsx.write_results_xlsx(path, ["Notes"], ours, lines)
    assert made == [{"write_only": True}]
    assert not list(tmp_path.glob(".results.xlsx.*"))  # temporary files gone

    with zipfile.ZipFile(path) as z:
        rels = z.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    assert rels.count("<Relationship ") == 2 * rows
    sheet = load_workbook(path, read_only=False).active
    assert sheet is not None
    assert [c.value for c in sheet[1]] == ["Notes", *ours]
    last = sheet[rows + 1]
    assert last[0].value == f"=cmd|{rows - 1}" and last[0].data_type == "s"
    assert last[4].value == 1000 + rows - 1
    assert (
        last[3].hyperlink is not None and last[3].hyperlink.target == f"videos/r%20{rows - 1}.mp4"
    )
    assert (
        last[5].hyperlink is not None and last[5].hyperlink.target == f"https://s/{rows - 1}?a=1&b"
    )
    assert sheet.freeze_panes == "A2"


def test_only_web_links_and_relative_paths_become_hyperlinks() -> None:
    """``javascript:``, ``file:``, absolute paths and blanks stay plain text."""
    target = results_xlsx.link_target
    assert target("https://x.example/a b") is None  # a space: not a link we made
    assert target("thumbs/a b.gif") == "thumbs/a%20b.gif"
    for bad in ("javascript:alert(1)", "file:///etc/passwd", "/etc/passwd", "..\\x", ""):
        assert target(bad) is None


async def test_a_landed_video_is_handed_off_and_its_gif_made_in_the_background(
    tmp_path: Path,
) -> None:
    """``video_landed`` returns at once (the row goes on: its slot frees for the next row's
    render); the GIF is made in the task group's worker thread, and ``settled`` waits for it
    (what ``--keep-local`` does before removing the video)."""
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(clip_bytes())
    async with anyio.create_task_group() as tg:
        maker = AssetMaker(tg, tmp_path, GifSize(80, 0.5, 6))
        maker.video_landed("videos/a.mp4")
        assert not (tmp_path / "thumbs" / "a.gif").exists()  # not made on the row's way
        await maker.settled("videos/a.mp4")
        assert (tmp_path / "thumbs" / "a.gif").is_file()
        await maker.settled("videos/never-landed.mp4")  # nothing to wait for


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(
    query=hypothesis.strategies.text(alphabet="ab=&%2+;#?xE[]:/", max_size=24),
)
def test_a_links_query_reads_as_urlsplit_and_parse_qsl_read_it(query: str) -> None:
    """``links._query`` (a link's parameters, read fast for 100,000-row results) agrees with the
    standard library's reading of any query, names lowercased, or fails alike."""
    from urllib.parse import parse_qsl, urlsplit

    from orchestrator.report.links import _query

    url = f"https://cdn.example/v.mp4?{query}"
    try:
        expected: dict[str, str] | None = {k.lower(): v for k, v in parse_qsl(urlsplit(url).query)}
    except ValueError:
        expected = None
    assert _query(url) == expected


@hypothesis.given(
    hypothesis.strategies.text(
        alphabet=hypothesis.strategies.sampled_from("ab.-_ /é"), min_size=1, max_size=12
    )
)
def test_file_stem_is_path_stem(name: str) -> None:
    """The poster's and the GIF's names come from a string split (once per row and column of
    results.csv): the same stem ``Path`` gives, dots, leading dots and folders included."""
    last = name.rpartition("/")[2]
    hypothesis.assume(last not in ("", "."))  # a folder, not a video's file name
    assert file_stem(name) == Path(name).stem


def test_thumbs_in_lists_the_made_files_once(tmp_path: Path) -> None:
    """``thumbs_in`` names the posters and GIFs in the run directory as results.csv spells
    them, and nothing for a run directory without a thumbs folder (or none at all); the row's
    cells then name a poster only when it is there."""
    assert thumbs_in(tmp_path) == frozenset() and thumbs_in(None) == frozenset()
    (tmp_path / "thumbs" / "sub").mkdir(parents=True)
    (tmp_path / "thumbs" / "cust-1.jpg").write_bytes(b"x")
    (tmp_path / "thumbs" / "cust-1.gif").write_bytes(b"x")
    made = thumbs_in(tmp_path)
    assert made == {poster_name("videos/cust-1.mp4"), gif_name("videos/cust-1.mp4")}
    st = RowState(row="r", status="done", file="videos/cust-1.mp4")
    cells = email_cells(st, st.file, made)
    assert cells["poster"] == "thumbs/cust-1.jpg" and cells["preview_gif"] == "thumbs/cust-1.gif"
    other = email_cells(st, "videos/cust-2.mp4", made)
    assert other["poster"] == "" and other["preview_gif"] == ""
