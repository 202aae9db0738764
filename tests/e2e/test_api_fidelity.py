"""What the real API does that a naive client gets wrong, through the real CLI (issue 11):

- a video link that answers a web page is never saved as ``NAME.mp4``; the row fails as
  ``not_a_video``, a rerun finishes it, and nothing renders twice;
- a render job the API has ``cleaned`` is lost (``job_lost``): never polled to the deadline, and
  rendered again only with ``--retry-failed``;
- tokens that live 2 s, 429s without ``Retry-After`` and share URLs that are HTML pages: every
  row ends done with no duplicate render.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import check_invariants, read_results, run_args, write_batch

HTML_MARK = b"<!doctype html>"


def _videos(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "videos").glob("*.mp4"))


def test_a_web_page_at_the_video_url_is_never_saved_as_the_video(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = make_sim(fault_html_video_p=0.5, seed=7)
    api_env(sim)
    batch = write_batch(tmp_path, 8)
    out = batch["out"]
    assert main(run_args(batch)) == 1
    first = read_results(out)
    failed = [r for r in first if r["status"] == "failed"]
    assert failed, "no download answered HTML twice; the test proves nothing"
    assert all(r["error"].startswith("not_a_video") and r["retry"] == "resume" for r in failed)
    for row in failed:
        assert not (out / "videos" / f"{row['id']}.mp4").exists()
    for _ in range(10):  # a plain rerun tries the downloads again, never the renders
        if main(run_args(batch)) == 0:
            break
    results = check_invariants(out, sim.stats(), 8)
    assert {r["status"] for r in results} == {"done"}
    assert all(HTML_MARK not in video.read_bytes()[:64] for video in _videos(out))
    assert sim.stats()["renders_started"] == 8 and sim.stats()["faults"]["html_video"] > 0


def test_a_cleaned_render_is_lost_and_rendered_again_only_with_retry_failed(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """The run died after its render job finished but before the download; meanwhile the job
    was cleaned. The rerun sees ``cleaned`` at once (job_lost), renders nothing; only
    ``--retry-failed`` renders that row again."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch)) == 0
    ledger = batch["out"] / LEDGER_NAME
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    job = next(e["job"] for e in events if e["e"] == "render_job" and e["row"] == "row-000")
    kept = [
        e
        for e in events
        if e.get("row") != "row-000" or e["e"] not in ("render_ready", "downloaded")
    ]
    ledger.write_text("".join(json.dumps(e) + "\n" for e in kept))
    (batch["out"] / "videos" / "row-000.mp4").unlink()
    sim.clean_job(job)

    assert main(run_args(batch)) == 1
    row = {r["id"]: r for r in read_results(batch["out"])}["row-000"]
    assert row["status"] == "failed" and row["error"].startswith("job_lost")
    assert "cleaned" in row["error"] and row["retry"] == "retry-failed"
    assert sim.stats()["renders_started"] == 2
    assert main(run_args(batch, "--retry-failed")) == 0
    assert sim.stats()["renders_started"] == 3
    check_invariants(batch["out"], sim.stats(), 2)


@pytest.mark.slow
def test_short_tokens_bare_429s_and_html_share_pages_still_finish_every_row(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    sim = make_sim(
        token_lifetime_s=2.0,
        rate_limit_rps=15.0,
        retry_after_header=False,
        fault_rate_limit_p=0.05,
        render_s=0.5,
    )
    api_env(sim)
    eager = {"limits": {"max_requests_per_s": 40.0, "max_rows_in_flight": 12}}
    batch = write_batch(tmp_path, 12, config=eager)
    assert main(run_args(batch)) == 0
    results = check_invariants(batch["out"], sim.stats(), 12)
    assert {r["status"] for r in results} == {"done"}
    stats = sim.stats()
    assert stats["rate_limited"] > 0, "no 429 was answered; the test proves nothing"
    assert stats["requests"]["POST /v1/oauth2/token"] >= 2
    assert stats["duplicate_renders"] == 0
    assert all(HTML_MARK not in video.read_bytes()[:64] for video in _videos(batch["out"]))
