"""Hostile values in report.html, checked in a real browser (Debian's Chromium, as in
test_report_browser.py): whatever a manifest or the API puts in a row, the page shows it as
text and runs none of it.

Hypothesis draws rows whose ids, variable names, values, failure kinds and API messages mix
markup and script (``<script>``, ``<img onerror>``, ``</script>``, quotes, ``javascript:``) with
any Unicode; each page is opened in one browser, and the DOM must hold every value verbatim in
its place, no element the values spelled, and a marker global that every payload would set must
stay undefined."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator.input.rows import RowJob
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import Failed
from orchestrator.report.page import write_report

from .test_report_browser import chromium_page

MARK = "__pwned"
"""Every payload sets ``window.__pwned`` if it ever runs."""
PAYLOADS = [
    f"<script>window.{MARK}=1</script>",
    f'<img src=x onerror="window.{MARK}=1">',
    f"\"'><svg onload=window.{MARK}=1>",
    f"</script><script>window.{MARK}=1</script>",
    f"</q></li></ul><script>window.{MARK}=1</script>",
    f'<iframe srcdoc="<script>parent.{MARK}=1</script>"></iframe>',
    f"javascript:window.{MARK}=1",
    f'<a href="javascript:window.{MARK}=1" id="x">x</a>',
    f"');window.{MARK}=1;('",
    f"${{window.{MARK}=1}}",
    "&lt;b&gt; &amp; &quot; &#39;",
    "<!-- ]]> -->",
    "\u2028\u2029\u202e\ufeff🎬",
]
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
values = st.lists(st.one_of(st.sampled_from(PAYLOADS), texts), min_size=1, max_size=3).map("".join)
rows = st.lists(
    st.fixed_dictionaries(
        {
            "id": values,
            "variables": st.dictionaries(values, values, min_size=1, max_size=3),
            "failure": st.one_of(st.none(), st.tuples(values, values)),  # kind, API message
        }
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda row: row["id"],
)

_READ_PAGE = """() => ({
    pwned: typeof window.__pwned,
    cards: Array.from(document.querySelectorAll('.card')).map(c => ({
        id: c.dataset.id,
        idText: c.querySelector('.id').textContent,
        names: Array.from(c.querySelectorAll('dt')).map(e => e.textContent),
        values: Array.from(c.querySelectorAll('dd')).map(e => e.textContent),
        error: (c.querySelector('.error') || {textContent: null}).textContent,
    })),
    kinds: Array.from(document.querySelectorAll('.failure')).map(s => s.dataset.kind),
    messages: Array.from(document.querySelectorAll('.failure q')).map(q => q.textContent),
    examples: Array.from(document.querySelectorAll('.failure code')).map(c => c.textContent),
    notice: (document.querySelector('.notice') || {textContent: null}).textContent,
    spelled: document.querySelectorAll(
        'img, svg, iframe, a#x, #grid script, #failures script, body > script:nth-of-type(3)'
    ).length,
})"""


def parsed(text: str, *, attribute: bool = False) -> str:
    """What an HTML parser makes of escaped text (the failures and the notice are written into
    the page, escaped; rows are set with ``textContent``, exactly): line ends become LF, and a
    NUL is dropped from text, replaced in an attribute."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\x00", "\ufffd" if attribute else "")


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    """One headless Chromium page for every example (skipped, saying why, without a browser)."""
    with chromium_page() as opened:
        yield opened


@pytest.mark.timeout(180)
def test_hostile_values_show_as_text_and_never_run(page: Any, tmp_path_factory: Any) -> None:
    """Random rows of markup, script and Unicode: each id, name, value, kind and message is in
    the DOM as the very text it was, the notice too, and no script the values spelled ran."""

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(rows, values)
    @example(
        [{"id": PAYLOADS[3], "variables": {PAYLOADS[0]: PAYLOADS[1]}, "failure": (PAYLOADS[2],
          PAYLOADS[4])}],
        PAYLOADS[5],
    )  # fmt: skip
    def check(drawn: list[dict[str, Any]], notice: str) -> None:
        run_dir: Path = tmp_path_factory.mktemp("report")
        jobs = [
            RowJob(
                row_id=row["id"],
                line=line,
                variables=row["variables"],
                template=None,
                output_name=f"row-{line}.mp4",
            )
            for line, row in enumerate(drawn, start=2)
        ]
        state = LedgerState()
        for row in drawn:
            if row["failure"] is not None:
                kind, message = row["failure"]
                state.apply(
                    Failed(
                        row=row["id"], stage="render", kind=kind, message=message, permanent=True
                    )
                )
        write_report(run_dir, lambda: iter(jobs), state, notice=notice, posters_wanted=False)

        page.goto((run_dir / "report.html").as_uri())
        page.wait_for_selector(".card", state="attached")
        seen = page.evaluate(_READ_PAGE)

        assert seen["pwned"] == "undefined"
        assert seen["spelled"] == 0
        assert seen["notice"] == (parsed(notice) if notice else None)  # none: no notice
        kinds: dict[str, str] = {}  # the kind each failed row is grouped under → its message
        for row, card in zip(drawn, seen["cards"], strict=True):
            shown = {n: v for n, v in row["variables"].items() if v != ""}
            assert (card["id"], card["idText"]) == (row["id"], row["id"])
            assert dict(zip(card["names"], card["values"], strict=True)) == shown
            if row["failure"] is None:
                assert card["error"] is None
                continue
            kind = row["failure"][0] or "failed"  # a row failed without a kind: its status
            assert card["error"] == f"{kind}: {row['failure'][1]}"
            kinds.setdefault(kind, row["failure"][1])
        assert sorted(seen["kinds"]) == sorted(parsed(k, attribute=True) for k in kinds)
        failed = [row for row in drawn if row["failure"] is not None]
        messages = {parsed(row["failure"][1] or "(no message)") for row in failed}
        assert set(seen["messages"]) <= messages
        assert set(seen["examples"]) <= {parsed(row["id"]) for row in failed}
        assert page.evaluate(f"typeof window.{MARK}") == "undefined"

    check()
