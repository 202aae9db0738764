"""``--direct`` (``[run] route = "direct"``): template and storyboard rows render with one
``POST /v2/video/storyboard/render`` each (§5.9), no preview job, with the same delivery contract
(intent before the request, job id after, ambiguous when the answer is lost); the simulator bills
each as a render, and nothing renders twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import check_invariants, read_results, run_args, write_batch
from .test_flows import _storyboard_batch

DIRECT = "POST /v2/video/storyboard/render"


def _api_requests(stats: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in stats["requests"].items() if "/__" not in k}


def test_direct_template_rows_skip_the_preview(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 6)
    assert main(run_args(batch, "--direct")) == 0
    stats = sim.stats()
    check_invariants(batch["out"], stats, 6)
    requests = _api_requests(stats)
    assert requests[DIRECT] == 6 and stats["renders_started"] == 6
    assert not any("from-template" in k or "/video/render/" in k for k in requests), requests
    assert stats["jobs"]["preview"] == 0
    events = [json.loads(line) for line in (batch["out"] / LEDGER_NAME).read_text().splitlines()]
    intents = [e for e in events if e["e"] == "render_intent"]
    jobs = [e for e in events if e["e"] == "render_job"]
    assert len(intents) == len(jobs) == 6 and all(e.get("preview_job") is None for e in intents)
    assert main(run_args(batch, "--direct")) == 0  # a rerun renders nothing
    assert sim.stats()["renders_started"] == 6


def test_direct_with_webhooks_is_one_request_per_row(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    sim = make_sim(render_s=0.2)
    api_env(sim)
    batch = write_batch(tmp_path, 6)
    assert main(run_args(batch, "--direct", "--webhook")) == 0
    stats = sim.stats()
    check_invariants(batch["out"], stats, 6)
    requests = _api_requests(stats)
    per_row = sum(
        n for k, n in requests.items() if k not in ("POST /v1/oauth2/token", "POST /v1/templates")
    )
    assert requests[DIRECT] == 6 and per_row <= 6 + 2  # the direct render, a fallback poll or two


def test_direct_storyboard_rows(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    sim = make_sim()
    api_env(sim)
    manifest = _storyboard_batch(tmp_path, 3)
    out = tmp_path / "run"
    args = ["run", str(manifest), "--flow", "storyboard", "--out", str(out), "--direct"]
    assert main([*args, "--config", str(write_batch(tmp_path / "cfg", 1)["config"])]) == 0
    stats = sim.stats()
    assert _api_requests(stats)[DIRECT] == 3 and stats["jobs"]["preview"] == 0
    assert {r["status"] for r in read_results(out)} == {"done"}
    assert stats["duplicate_renders"] == 0
