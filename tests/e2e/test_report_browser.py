"""The report of a demo batch in a real browser: headless Chromium (Debian's), driven by Playwright.

`make test` installs Debian's chromium when it is missing (scripts/ensure-chromium). Where no
browser can be started, the test is skipped with the reason, never passed.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.input.rows import manifest_rows
from orchestrator.ledger.codec import decode
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import Event
from orchestrator.report.page import write_report

from .helpers import config_toml

ROOT = Path(__file__).resolve().parents[2]
WELCOME = ROOT / "jobs" / "welcome"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def _event(record: dict[str, object]) -> Event:
    """A ledger event from its stored form."""
    event = decode(record)
    assert event is not None
    return event


def _chromium() -> str:
    candidates = (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"))
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip(
        "cannot run the report's browser test: no Chromium here (/usr/bin/chromium); "
        "install Debian's chromium (`make test` does it as root with apt-get)"
    )


@contextlib.contextmanager
def chromium_page() -> Iterator[Any]:
    """A fresh headless Chromium page; skipped, saying why, when no browser can start.

    Playwright's sync API runs an event loop in this thread while it is open, so the CLI (which
    starts its own) must run before it.
    """
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = _chromium()
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        except sync_api.Error as exc:
            pytest.skip(f"cannot run the report's browser test: {executable} did not start: {exc}")
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


@pytest.mark.timeout(120)
def test_report_of_a_demo_batch_works_in_chromium(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """The welcome batch (25 rows, some failing) renders a grid with posters; the status filter,
    the search and the inline player work; a screenshot is saved beside the test's files."""
    sim = make_sim(fault_job_failed_p=0.25, seed=7)
    api_env(sim)
    config = tmp_path / "c.toml"
    config.write_text(config_toml())
    config.chmod(0o600)
    out = tmp_path / "run"
    args = ["run", str(WELCOME / "manifest.csv"), "--template", str(WELCOME / "welcome.pictai")]
    assert main([*args, "--out", str(out), "--config", str(config)]) in (0, 1)
    with (out / "results.csv").open(newline="") as f:
        results = list(csv.DictReader(f))
    counts = Counter(r["status"] for r in results)
    assert counts["done"] and counts["failed"], counts
    assert len(list((out / "thumbs").glob("*.jpg"))) == counts["done"]

    with chromium_page() as page:
        page.goto((out / "report.html").as_uri())
        page.wait_for_selector(".card")
        assert page.locator(".card").count() == 25
        assert page.locator("#pageinfo").inner_text() == "25 rows, page 1 of 1"
        assert page.locator(".failure[data-kind='job_failed'] .hint").is_visible()

        page.select_option("#status", "failed")
        assert page.locator(".card").count() == counts["failed"]
        assert set(page.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.status)")) == {
            "failed"
        }
        page.click(".chip.done")  # the counts on top filter too
        assert page.locator(".card").count() == counts["done"]
        page.select_option("#status", "")

        page.fill("#search", "chloé")  # a variable, case-insensitive
        assert page.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.id)") == [
            "cust-0003"
        ]
        page.fill("#search", "cust-0012")  # an id
        assert page.locator(".card").count() == 1
        page.fill("#search", "")

        done_id = next(r["id"] for r in results if r["status"] == "done")
        video = page.locator(f".card[data-id='{done_id}'] video")
        state = video.evaluate(
            """async v => {
                v.muted = true;
                if (v.readyState < 1) {
                    await new Promise((ok, bad) => {
                        v.addEventListener('loadedmetadata', ok, {once: true});
                        v.addEventListener('error', () => bad(new Error('no video')));
                    });
                }
                await v.play();
                if (v.readyState < 3) await new Promise(ok => v.addEventListener('playing', ok));
                return {readyState: v.readyState, duration: v.duration, width: v.videoWidth,
                        poster: v.getAttribute('poster')};
            }"""
        )
        assert state["readyState"] >= 3
        assert 0.5 < state["duration"] < 5 and state["width"] > 0
        assert state["poster"].startswith("thumbs/")
        page.evaluate("document.querySelectorAll('video').forEach(v => v.pause())")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000


@pytest.mark.timeout(120)
def test_a_100k_row_report_pages_filters_and_searches_quickly(tmp_path: Path) -> None:
    """100,000 rows: the page opens on 48 cards, pages on, and a search over every row answers
    in well under a second."""
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city"])
        writer.writerows([f"r{i:06d}", f"Name {i}", f"City {i % 97}"] for i in range(100_000))
    template = tmp_path / "t.pictai"
    template.write_text('{"scenes": [{"sentence": "Hi {{name}} from {{city}}"}]}')
    state = LedgerState()
    state.apply(
        _event(
            {
                "e": "failed",
                "row": "r099999",
                "stage": "render",
                "kind": "job_failed",
                "message": "render failed",
                "permanent": True,
            }
        )
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_report(run_dir, manifest_rows(manifest, template), state)
    with chromium_page() as page:
        page.goto((run_dir / "report.html").as_uri())
        page.wait_for_selector(".card")
        assert page.locator(".card").count() == 48
        assert page.locator("#pageinfo").inner_text() == "100000 rows, page 1 of 2084"
        page.click("#next")
        assert page.locator(".card").first.get_attribute("data-id") == "r000048"
        elapsed_ms = page.evaluate(
            """() => {
                const box = document.getElementById('search'), t0 = performance.now();
                box.value = 'name 99999';
                box.dispatchEvent(new Event('input'));
                return performance.now() - t0;
            }"""
        )
        assert page.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.id)") == ["r099999"]
        assert elapsed_ms < 1500
        page.fill("#search", "")
        page.select_option("#status", "failed")
        assert page.locator(".card").count() == 1
