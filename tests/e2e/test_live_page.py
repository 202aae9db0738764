"""``orchestrator serve RUN_DIR``: the live page of a local batch, in headless Chromium while the
batch runs, its accessibility (axe-core) and what it must never show; and report.html's
accessibility with right-to-left names, a language column and captions."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.clock import VirtualClock
from orchestrator.input.rows import manifest_rows
from orchestrator.ledger.codec import decode, encode
from orchestrator.ledger.file import LEDGER_NAME
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import RunStarted
from orchestrator.report.live.server import READING_SHARE, _Readings, check_binding
from orchestrator.report.live.view import build_view
from orchestrator.report.page import write_report
from orchestrator.report.status import status

from .helpers import TEMPLATE, config_toml, run_cli, write_batch
from .live_browser import (
    assert_accessible,
    assert_no_external_reference,
    serving,
    shown,
    wait_until,
)
from .test_report_browser import chromium_page

NAMES = ["سارة", "דוד", "Chloé", "محمد", "שרה", "Ana", "Lars", "ليلى", "Noa", "Yuki", "Omar", "Ida"]


def _get(url: str | urllib.request.Request) -> Any:
    """The JSON at ``url``, the connection closed."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def _batch(tmp_path: Path) -> dict[str, Path]:
    """12 rows with Arabic and Hebrew names and a language column; webhooks on (the run
    directory holds the webhook secret, which the page must never show)."""
    batch = write_batch(tmp_path, 0, config={"webhook": {"enabled": True}})
    template = {
        **TEMPLATE,
        "scenes": [*TEMPLATE["scenes"], {"sceneId": 3, "sentence": "{{language}}"}],
    }
    batch["template"].write_text(json.dumps(template))
    with batch["manifest"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city", "language"])
        for i, name in enumerate(NAMES):
            lang = (
                "ar" if "\u0600" <= name[0] <= "\u06ff" else "he" if name[0] >= "\u0590" else "en"
            )
            writer.writerow([f"row-{i:03d}", name, f"City {i}", lang])
    return batch


@pytest.mark.timeout(180)
def test_live_page_follows_a_local_batch_from_canary_to_done(tmp_path: Path, make_sim: Any) -> None:
    """The canary waits (with its approve command); once approved the done count climbs to the
    end in the open page, a failure is grouped with a link to its row, nothing on the page
    comes from elsewhere, axe-core finds no violation, and no secret is shown."""
    sim = make_sim(
        "test",
        render_s=0.6,
        jitter_frac=0.2,
        max_concurrent_renders=2,
        fault_job_failed_p=0.3,
        seed=11,
    )
    env = sim.env()
    batch = _batch(tmp_path)
    out = batch["out"]
    base = [str(batch["manifest"]), "--template", str(batch["template"]), "--out", str(out)]
    canary = run_cli(["run", *base, "--config", str(batch["config"]), "--canary", "2"], env)
    assert canary.returncode == 3, canary.stdout + canary.stderr
    secrets = [(out / "webhook.secret").read_text().strip(), env["PICTORY_CLIENT_SECRET"]]
    assert all(secrets)

    with serving([str(out), "--refresh", "0.2"], env, tmp_path / "serve.log") as url:
        state = _get(url + "api/state")
        assert state["canary"]["waiting"] and state["total"] == 12
        with chromium_page() as page:
            errors: list[str] = []  # a CSP violation, a failed request, a script error
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")
            assert page.locator("#canary").is_visible()
            assert "orchestrator approve" in page.locator("#canary code").inner_text()
            assert_no_external_reference(page, url)
            assert_accessible(page)

            approve = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "approve", str(out)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            seen: list[int] = []

            def settled(p: Any) -> bool:
                seen.append(int(shown(p, "done").split(" / ")[0]))
                stages = dict(
                    p.locator("#stages tr").evaluate_all(
                        "rs => rs.map(r => [r.dataset.stage, +r.cells[1].textContent])"
                    )
                )
                return bool(stages.get("done", 0) + stages.get("failed", 0) == 12)

            wait_until(page, settled, 120, "every row settled")
            assert approve.wait(timeout=60) in (0, 1)
            assert seen == sorted(seen) and seen[0] < seen[-1], seen  # it moved, never back
            assert page.locator("#canary").is_hidden()
            group = page.locator(".failure[data-kind='job_failed']")
            assert group.is_visible()
            link = group.locator("a").first
            target = link.get_attribute("href")
            assert target and target.startswith("#row-")
            assert page.locator(f"[id='{target[1:]}']").count() == 1  # the anchor exists
            values = page.locator("#failed-rows td").evaluate_all("ts => ts.map(t => t.dir)")
            assert values and set(values) == {"auto"}
            assert page.locator("#posters img").count() > 0
            alt = page.locator("#posters img").first.get_attribute("alt")
            assert alt and alt.startswith("poster frame of row ")
            assert_no_external_reference(page, url)
            assert_accessible(page)
            text = page.content()
            assert not errors, errors
        body = json.dumps(_get(url + "api/state"), ensure_ascii=False)
    for page_text in (text, body):
        assert not [s for s in secrets if s in page_text]


def test_serve_refuses_the_network_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--host beyond loopback without a token: one line, exit 2, nothing served; a short token
    is refused too, from --token, ORCHESTRATOR_SERVE_TOKEN or an empty --token-file, and is
    never echoed."""
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "without a token" in err and "ORCHESTRATOR_SERVE_TOKEN" in err
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0", "--token", "short-x"]) == 2
    err = capsys.readouterr().err
    assert "shorter than 16" in err and "short-x" not in err
    monkeypatch.setenv("ORCHESTRATOR_SERVE_TOKEN", "env-short")
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "shorter than 16" in err and "env-short" not in err
    empty = tmp_path / "token"
    empty.write_text("\n")
    assert main(["serve", str(tmp_path), "--host", "0.0.0.0", "--token-file", str(empty)]) == 2
    assert "its first line is empty" in capsys.readouterr().err


def test_serve_of_a_folder_that_is_no_run_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """RUN_DIR without a ledger: one line naming it, exit 2, no traceback."""
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no ledger" in err


@pytest.mark.timeout(60)
def test_the_token_guards_every_route_and_is_never_printed(tmp_path: Path, make_sim: Any) -> None:
    """With a token (from its file): the page, its JSON and posters answer 401 without it; the
    page opened once with ?token= sets a cookie and leaves the token out of the address; a
    bearer header works; the token appears in nothing serve prints."""
    sim = make_sim("test")
    env = sim.env()
    batch = write_batch(tmp_path, 3)
    done = run_cli(
        ["run", str(batch["manifest"]), "--template", str(batch["template"]),
         "--out", str(batch["out"]), "--config", str(batch["config"])],
        env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = "tok-" + "x7" * 12
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    log = tmp_path / "serve.log"
    args = [str(batch["out"]), "--token-file", str(token_file), "--host", "127.0.0.1"]
    with serving(args, env, log) as url:
        for path in ("", "api/state", "thumbs/row-000.jpg"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + path, timeout=10)
            assert refused.value.code == 401
            refused.value.close()
        bearer = urllib.request.Request(url + "api/state")
        bearer.add_header("Authorization", f"Bearer {token}")
        assert _get(bearer)["done"] == 3
        with chromium_page() as page:
            page.goto(url + "?token=" + token)
            page.wait_for_selector("body[data-ready='1']")
            assert page.url == url and token not in page.url
            assert shown(page, "done") == "3 / 3"
            assert token not in page.content()
    assert token not in log.read_text()


@pytest.mark.timeout(120)
def test_report_html_is_accessible_with_rtl_names_languages_and_captions(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """report.html of a batch with Arabic and Hebrew names: axe-core finds no violation, every
    value has dir="auto", values carry the row's language, videos are labelled, and a row with
    Pictory's vttFile has a captions track."""
    sim = make_sim("test", fault_job_failed_p=0.25, seed=5)
    api_env(sim)
    batch = _batch(tmp_path)
    config = tmp_path / "c.toml"
    config.write_text(config_toml())
    config.chmod(0o600)
    out = batch["out"]
    args = [str(batch["manifest"]), "--template", str(batch["template"]), "--out", str(out)]
    assert main(["run", *args, "--config", str(config)]) in (0, 1)
    with chromium_page() as page:
        page.goto((out / "report.html").as_uri())
        page.wait_for_selector(".card")
        assert_accessible(page)
        dirs = page.locator(".card dd, .card .id").evaluate_all("es => es.map(e => e.dir)")
        assert dirs and set(dirs) == {"auto"}
        arabic = page.locator(".card[data-id='row-000'] dd").first
        assert arabic.get_attribute("lang") == "ar"
        assert page.locator(".card[data-id='row-001'] dd").first.get_attribute("lang") == "he"
        labels = page.locator("video").evaluate_all("vs => vs.map(v => v.ariaLabel)")
        assert labels and all(label.startswith("video of row ") for label in labels)
        assert_no_external_reference(page, "file:///", links=False)  # a share link may leave

        captioned = _report_with_captions(tmp_path / "captioned", batch)
        page.goto(captioned.as_uri())
        page.wait_for_selector(".card")
        track = page.locator(".card[data-id='row-000'] video track")
        assert track.get_attribute("kind") == "captions"
        assert track.get_attribute("src") == "videos/row-000.vtt"
        assert track.get_attribute("srclang") == "ar"
        assert page.locator(".card[data-id='row-002'] video track").count() == 0
        assert_accessible(page)


def _report_with_captions(run_dir: Path, batch: dict[str, Path]) -> Path:
    """report.html of a ledger where row-000 was downloaded with its ``.vtt`` (the render's
    ``vttFile``) and row-002 without subtitles."""
    state = LedgerState()
    for row, extras in (("row-000", ["videos/row-000.vtt"]), ("row-002", None)):
        event = decode(
            {"e": "downloaded", "row": row, "file": f"videos/{row}.mp4", "bytes": 1,
             "sha256": "0" * 64, "extras": extras}
        )  # fmt: skip
        assert event is not None
        state.apply(event)
    run_dir.mkdir()
    write_report(run_dir, manifest_rows(batch["manifest"], batch["template"]), state)
    return run_dir / "report.html"


def test_the_view_picks_its_fields_and_never_the_recorded_config() -> None:
    """A ledger whose run record holds a notification URL and a database URL with a password:
    neither reaches the page's JSON; the limits it records do; a stopped batch has no ETA."""
    state = LedgerState()
    leaky = {
        "notify": {"url": "https://hooks.example/T0K3N"},
        "ledger": {"url": "postgresql://u:pw-XYZ@db/x"},
        "limits": {"max_requests_per_s": 4.0, "max_renders_in_flight": 3},
    }
    for record in (
        {"e": "run", "config": leaky},
        {"e": "downloaded", "row": "r1", "file": "videos/r1.mp4", "bytes": 1, "sha256": "0" * 64},
        {"e": "failed", "row": "r2", "stage": "render", "kind": "job_failed", "message": "bad"},
    ):
        event = decode(record)
        assert event is not None
        state.apply(event)
    report = status(None, state, 3, live=False)
    view = build_view(
        title="t", where="w", state=state, report=report, approve="a", next_command=None, now_s=0
    )
    text = json.dumps(view)
    assert "T0K3N" not in text and "pw-XYZ" not in text
    assert view["rate"]["configured_per_s"] == 4.0 and view["renders"]["cap"] == 3
    assert view["eta_s"] is None and view["done"] == 1 and view["total"] == 3
    assert view["failures"][0]["kind"] == "job_failed" and view["failures"][0]["rows"] == ["r2"]
    assert ["not started", 1] in view["stages"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host: str) -> None:
    """Any loopback address may serve without a token (only this machine reaches it)."""
    check_binding(host, None)


async def test_a_slow_reading_is_not_repeated_at_the_refresh_rate() -> None:
    """A reading that takes 1 s (a large ledger) is shared for 1 s / READING_SHARE, however
    short --refresh is, so the page never competes with the run it shows (virtual time)."""
    clock = VirtualClock()
    reads: list[float] = []

    class SlowReader:
        title, videos = "slow", None

        async def read(self) -> dict[str, Any]:
            reads.append(clock.now())
            await clock.sleep(1.0)
            return {"n": len(reads)}

    readings = _Readings(SlowReader(), 0.5, clock)
    assert await readings.view() == {"n": 1}
    await clock.sleep(3.0)
    assert await readings.view() == {"n": 1}  # 3 s after a 1 s reading: still fresh
    await clock.sleep(1.0 / READING_SHARE - 3.0)
    assert await readings.view() == {"n": 2}
    assert reads == [0.0, 1.0 + 1.0 / READING_SHARE]


@pytest.mark.timeout(60)
def test_a_ledger_that_goes_away_is_said_on_the_page_not_raised(tmp_path: Path) -> None:
    """The run directory's ledger removed under a serving page: its JSON answers 503 with the
    one-line reason, and the server goes on (the ledger back: 200 again)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ledger = run_dir / LEDGER_NAME
    ledger.write_text(json.dumps(encode(RunStarted())) + "\n")
    with serving([str(run_dir), "--refresh", "0.05"], dict(os.environ), tmp_path / "s.log") as url:
        assert _get(url + "api/state")["total"] == 0
        moved = ledger.rename(run_dir / "elsewhere.jsonl")
        time.sleep(0.1)  # past --refresh: the next request reads again
        with pytest.raises(urllib.error.HTTPError) as gone:
            urllib.request.urlopen(url + "api/state", timeout=10)
        assert gone.value.code == 503
        assert "holds no ledger" in json.load(gone.value)["error"]
        gone.value.close()
        moved.rename(ledger)
        time.sleep(0.1)
        assert _get(url + "api/state")["total"] == 0
