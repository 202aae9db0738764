"""Cost on a shared batch (docs/cost.md): ``--max-minutes`` submitted with the batch caps each
worker that obeys it, and ``status --ledger`` shows what the batch consumed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from e2e.helpers import AI_TEMPLATE, run_cli, write_batch

pytestmark = pytest.mark.slow

TIMEOUT_S = 120.0


@pytest.mark.timeout(120)
def test_a_shared_batch_obeys_its_minute_cap_and_status_shows_what_it_consumed(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """``submit --max-minutes 1.2`` with 0.5-minute renders: a worker renders 2 rows and stops
    at the cap; ``status --ledger`` (text and JSON) says 1.0 video minutes and 44 AI credits
    (22 a render: the template's AI image and AI video)."""
    sim = make_sim("test", jitter_frac=0.0, video_duration_s=30.0, template_video_length="drawn")
    env = sim.env()
    batch = write_batch(tmp_path, 5, project=AI_TEMPLATE)
    ledger = ["--ledger", pg_url, "--batch", "capped"]
    submitted = run_cli(
        [
            *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
            *("--ledger", pg_url, "--name", "capped", "--max-minutes", "1.2"),
        ],
        env,
        TIMEOUT_S,
    )
    assert submitted.returncode == 0, submitted.stderr
    worker = ["worker", *ledger, "--out", str(tmp_path / "w"), "--config", str(batch["config"])]
    done = run_cli(worker, env, TIMEOUT_S)
    assert done.returncode == 1, done.stderr
    assert "the next row would pass --max-minutes 1.2" in done.stdout
    assert sim.stats()["renders_started"] == 2

    status = run_cli(["status", *ledger], env, TIMEOUT_S)
    assert "consumed: 2 video(s) rendered: 1.0 video minutes, 44 AI credits used" in status.stdout
    as_json = run_cli(["status", *ledger, "--json"], env, TIMEOUT_S)
    consumed = json.loads(as_json.stdout.splitlines()[0])["consumed"]
    assert consumed == {"renders": 2, "video_minutes": 1.0, "ai_credits": 44.0}
