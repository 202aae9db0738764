"""A fourth flow plugs in from one module: the flow registry is the only place that knows it.

The toy ``greeting-card`` flow below is declared in this file alone (its field, its check, its
stages, its render request) and calls one extra simulator route, ``POST /v1/toy/card``, served
like Pictory's own (auth, rate limit, counting). That route is this test's, not Pictory's: no
request or answer shape of the real API is added here. A manifest of such rows then runs through the
real CLI end to end: validated, rendered under the delivery contract (intent before the request,
job id after), polled, downloaded, recorded, shown by ``status`` and resumed without rendering
again. It fails if any part of the pipeline still branches on the three built-in flows' names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from orchestrator.cli.main import main
from orchestrator.input import flows
from orchestrator.input.flows import BeforeSend, FieldProblem, Flow, Stage
from orchestrator.input.local_files import LocalFiles
from orchestrator.input.rows import RowJob
from orchestrator.ledger.file import LEDGER_NAME
from orchestrator.run.stages.base import Services
from orchestrator.run.stages.download import download
from orchestrator.run.stages.render import render
from orchestrator.simulator.routes_api import CURRENT_ACCOUNT, SIM_KEY, RouteSpec

from .helpers import FAST_CONFIG, check_invariants

CARD_ROUTE = "/v1/toy/card"
ROWS = 5


# ---- the flow: everything the orchestrator needs to know about it ---------------------------


def _check(fields: Mapping[str, str], manifest: Path, files: LocalFiles) -> list[FieldProblem]:
    if not fields.get("greeting", "").strip():
        return [("greeting", "a card needs a 'greeting'", "write the card's text", "missing")]
    return []


def _stages(direct: bool) -> Sequence[tuple[str, Stage]]:
    return [("render", render), ("download", download)]


async def _send_card(row: RowJob, svc: Services, webhook: str | None, before: BeforeSend) -> str:
    body = {"greeting": row.variables["greeting"], "videoName": Path(row.output_name).stem}
    return await svc.client.create_job(
        "POST", CARD_ROUTE, body, webhook=webhook, before_send=before
    )


CARD = Flow(
    name="greeting-card",
    fields=("greeting",),
    stages=_stages,
    send_render=_send_card,
    check=_check,
)


# ---- the simulator's side: one route that renders a card ------------------------------------


async def _card(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await request.json()
    seconds = 3.0
    params = {
        "output": {"name": body["videoName"]},
        "scenes": [
            {
                "background": {
                    "src": [
                        {"url": "https://cdn.example/card.mp4", "type": "video", "end": seconds}
                    ]
                },
                "time": seconds,
                "sub_scenes": [{"time": seconds, "text_lines": [{"text": body["greeting"]}]}],
            }
        ],
    }
    job = sim.render_params(CURRENT_ACCOUNT.get(), params, body.get("webhook"))
    return web.json_response({"success": True, "data": {"jobId": job.job_id}})


CARD_ROUTES = (RouteSpec("POST", CARD_ROUTE, _card, creating=True),)


@pytest.fixture
def card_flow() -> Iterator[Flow]:
    flows.register(CARD)
    yield CARD
    flows.unregister(CARD.name)


def test_a_fourth_flow_runs_end_to_end_from_one_module(
    tmp_path: Path, make_sim: Any, api_env: Any, card_flow: Flow
) -> None:
    sim = make_sim(extra_routes=CARD_ROUTES)
    api_env(sim)
    config = tmp_path / "c.toml"
    config.write_text(FAST_CONFIG)
    manifest = tmp_path / "cards.csv"
    manifest.write_text(
        "id,flow,greeting\n" + "".join(f"c{i},greeting-card,Hello {i}\n" for i in range(ROWS))
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("id,flow,greeting\nc0,greeting-card,\n")
    assert main(["validate", str(bad)]) == 2  # the flow's own check, through validate

    out = tmp_path / "run"
    args = ["run", str(manifest), "--out", str(out), "--config", str(config)]
    assert main(args) == 0
    results = check_invariants(out, sim.stats(), ROWS)
    assert {r["status"] for r in results} == {"done"}
    stats = sim.stats()
    assert stats["requests"][f"POST {CARD_ROUTE}"] == ROWS
    assert stats["renders_started"] == ROWS and "POST /v1/video/from-template" not in stats
    events = [json.loads(line) for line in (out / LEDGER_NAME).read_text().splitlines()]
    assert {e["flow"] for e in events if e["e"] == "row"} == {"greeting-card"}
    intents = [i for i, e in enumerate(events) if e["e"] == "render_intent"]
    jobs = [i for i, e in enumerate(events) if e["e"] == "render_job"]
    assert len(intents) == len(jobs) == ROWS and all(
        a < b for a, b in zip(intents, jobs, strict=True)
    )
    for i in range(ROWS):  # each MP4 carries its own card's text
        assert f"Hello {i}".encode() in (out / "videos" / f"c{i}.mp4").read_bytes()

    assert main(args) == 0  # again: every row done, nothing rendered twice
    assert sim.stats()["renders_started"] == ROWS
    assert main(["status", str(out)]) == 0
