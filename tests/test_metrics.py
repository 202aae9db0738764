"""Prometheus metrics (``report.metrics``, ``report.metrics_server``): fed by the run's events and
the ledger's read side, served at ``/metrics``, and equal to the ledger at the end of a run."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from orchestrator.cli.main import main
from orchestrator.config import ApiConfig, Config, Credentials, load_config
from orchestrator.events import FanoutSink, JsonlLogSink, ListSink
from orchestrator.ledger.file import LEDGER_NAME, read_events, replay
from orchestrator.ledger.records import RenderJob
from orchestrator.report.metrics import RunMetrics, route_of, status_class
from orchestrator.report.metrics_server import serve_metrics
from orchestrator.run.execute import execute
from orchestrator.run.spec import RunSpec
from orchestrator.simulator import SimSettings, running_simulator
from tests.e2e.helpers import run_args, write_batch

ROWS = 10


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of ``name`` over every label set that has ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= set(ls))


def test_routes_and_status_classes_make_few_label_values() -> None:
    """Job ids become ``{id}``; a request without an answer is ``none``."""
    assert route_of("/v1/jobs/3f2b9c1e-1111-2222-3333-444455556666") == "/v1/jobs/{id}"
    assert route_of("/v1/video/render/abc") == "/v1/video/render/{id}"
    assert route_of("/v2/video/storyboard/render") == "/v2/video/storyboard/render"
    assert route_of("/v1/templates") == "/v1/templates"
    assert route_of("/v9/things/12345") == "/v9/things/{id}"
    assert [status_class(s) for s in (200, 429, 503, None)] == ["2xx", "4xx", "5xx", "none"]


def test_request_events_reach_only_the_sinks_that_ask(tmp_path: Path) -> None:
    """Per-request events go to the metrics, never to the log or another sink."""
    log = JsonlLogSink(tmp_path / "log.jsonl", [])
    other, metrics = ListSink(), RunMetrics()
    sink = FanoutSink(log, other, metrics)
    sink.emit("request", method="GET", path="/v1/jobs/abc", status=429, waited_s=0.5)
    sink.emit("row_done", row="r1", bytes=100, download_s=0.2, render_s=7.0)
    log.close()
    assert other.kinds() == ["row_done"]
    assert '"request"' not in (tmp_path / "log.jsonl").read_text()
    found = samples(anyio.run(metrics.exposition)[0].decode())
    labels = {"method": "GET", "route": "/v1/jobs/{id}", "status_class": "4xx"}
    assert value(found, "orchestrator_api_requests_total", **labels) == 1
    assert value(found, "orchestrator_api_rate_limited_total", route="/v1/jobs/{id}") == 1
    assert value(found, "orchestrator_limiter_wait_seconds_sum") == 0.5
    assert value(found, "orchestrator_downloaded_bytes_total") == 100
    assert value(found, "orchestrator_render_seconds_count") == 1


def test_counts_are_exposed_as_prometheus_client_would() -> None:
    """Counted as plain numbers, exposed at a scrape: cumulative ``le`` buckets, ``_count``,
    ``_sum`` and ``_created`` as prometheus_client's own histogram and counters write them;
    paths of one route and statuses of one class add up; OpenMetrics too."""
    metrics = RunMetrics()
    for i, (status, waited_s) in enumerate([(200, 0.0), (201, 0.001), (429, 0.002), (None, 99.0)]):
        metrics.emit(
            "request", method="GET", path=f"/v1/jobs/{i}", status=status, waited_s=waited_s
        )
    metrics.emit("retry", endpoint="GET /v1/jobs/a", kind="timeout", delay_s=1.0)
    metrics.emit("retry", endpoint="GET /v1/jobs/b", kind="timeout", delay_s=1.0)
    metrics.emit("row_done", row="r1", bytes=10, download_s=0.1, render_s=5.0)
    text = anyio.run(metrics.exposition)[0].decode()
    found = samples(text)
    jobs = {"method": "GET", "route": "/v1/jobs/{id}"}
    assert value(found, "orchestrator_api_requests_total", status_class="2xx", **jobs) == 2
    assert value(found, "orchestrator_api_requests_total", status_class="none", **jobs) == 1
    assert value(found, "orchestrator_api_rate_limited_total", route="/v1/jobs/{id}") == 1
    retried = {"route": "/v1/jobs/{id}", "reason": "timeout"}
    assert value(found, "orchestrator_api_retries_total", **retried) == 2
    wait = "orchestrator_limiter_wait_seconds"
    assert [value(found, f"{wait}_bucket", le=le) for le in ("0.001", "0.01", "60.0", "+Inf")] == [
        2,
        3,
        3,
        4,
    ]
    assert value(found, f"{wait}_count") == 4 and value(found, f"{wait}_sum") == 99.003
    assert value(found, "orchestrator_render_seconds_bucket", le="5.0") == 1
    assert value(found, "orchestrator_render_seconds_bucket", le="+Inf") == 1
    for name in ("orchestrator_renders_created", f"{wait}_created"):
        assert value(found, name) > 0, name
    assert 'orchestrator_rows_finished_total{state="failed"} 0.0' in text
    open_metrics, content_type = anyio.run(
        metrics.exposition, "application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    assert open_metrics.decode().endswith("# EOF\n")


def _config(base_url: str, **metrics: Any) -> Config:
    return Config.model_validate(
        {
            "api": ApiConfig(base_url=base_url).model_dump(),
            "limits": {"max_requests_per_s": 500.0, "max_rows_in_flight": 3},
            "poll": {"preview_interval_s": 0.01, "render_interval_s": 0.01},
            "retry": {"max_attempts": 3, "base_delay_s": 0.01, "max_delay_s": 0.05},
            "report": {"posters": False},
            "metrics": metrics,
        }
    )


CREDENTIALS = Credentials(
    client_id=SecretStr("test-client"), client_secret=SecretStr("test-secret"), user_id="test-user"
)


async def test_metrics_mid_run_and_at_the_end_equal_the_ledger(tmp_path: Path) -> None:
    """Scraped over HTTP during a run and at its end, the totals are the ledger's: rows by
    state, renders started, and bytes downloaded equal to the videos' sizes."""
    batch = write_batch(tmp_path, ROWS)
    settings = SimSettings.for_profile("test", render_s=0.05, fault_job_failed_p=0.3, seed=3)
    metrics = RunMetrics()
    mid: dict[Any, float] = {}
    first_done = anyio.Event()

    class Watch(ListSink):
        def emit(self, kind: str, /, **fields: Any) -> None:
            super().emit(kind, **fields)
            if kind == "row_done":
                first_done.set()

    async def scrape(url: str) -> dict[Any, float]:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
            return samples(await resp.text())

    async with (
        running_simulator(settings) as sim,
        serve_metrics(metrics) as url,
        anyio.create_task_group() as tg,
    ):

        async def scrape_mid_run() -> None:
            await first_done.wait()
            mid.update(await scrape(url))

        tg.start_soon(scrape_mid_run)
        spec = RunSpec(run_dir=batch["out"], manifest=batch["manifest"], template=batch["template"])
        watch = Watch()
        summary = await execute(
            spec, _config(sim.base_url), CREDENTIALS, sink=watch, metrics=metrics
        )
        end = await scrape(url)

    assert mid, "no scrape during the run"
    assert (
        sum(value(mid, "orchestrator_rows", state=s) for s in ("pending", "done"))
        + sum(value(mid, "orchestrator_rows", state=s) for s in ("failed", "ambiguous"))
        == ROWS
    )
    assert value(mid, "orchestrator_rows_finished_total", state="done") >= 1
    assert total(mid, "orchestrator_api_requests_total") > 0

    state = replay(batch["out"] / LEDGER_NAME)
    by_status = Counter(r.status for r in state.rows.values())
    assert by_status["failed"] > 0 and by_status["done"] > 0  # both kinds are counted
    for s in ("pending", "done", "failed", "ambiguous"):
        assert value(end, "orchestrator_rows", state=s) == by_status[s], s
        assert value(end, "orchestrator_rows_finished_total", state=s) == by_status[s] * (
            s != "pending"
        ), s
    renders = sum(isinstance(e, RenderJob) for _, e in read_events(batch["out"] / LEDGER_NAME))
    assert value(end, "orchestrator_renders_total") == renders
    sizes = sum(p.stat().st_size for p in (batch["out"] / "videos").glob("*.mp4"))
    assert value(end, "orchestrator_downloaded_bytes_total") == sizes > 0
    assert value(end, "orchestrator_download_seconds_count") == by_status["done"]
    assert value(end, "orchestrator_render_seconds_count") == by_status["done"]
    assert total(end, "orchestrator_api_requests_total") == summary.requests
    assert value(end, "orchestrator_limiter_wait_seconds_count") == summary.requests
    assert "request" not in watch.kinds()  # the run's own sink never sees them


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_serves_metrics_on_the_metrics_port(tmp_path: Path, make_sim: Any) -> None:
    """``orchestrator run --metrics-port N`` answers ``/metrics`` on loopback while it runs."""
    sim = make_sim(render_s=0.3)
    batch = write_batch(tmp_path, 6)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *run_args(batch, "--metrics-port", str(port))],
        env=sim.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found: dict[Any, float] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    found = samples(r.read().decode())
            except OSError:
                pass
            if total(found, "orchestrator_rows"):  # the ledger is open: rows by state are in
                break
            time.sleep(0.02)
    finally:
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert found, "no answer on the metrics port during the run"
    assert total(found, "orchestrator_rows") == 6
    assert f"metrics: http://127.0.0.1:{port}/metrics" in stderr


def test_metrics_port_taken_is_one_line(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """A metrics port already in use: one line naming it, exit 2, nothing rendered."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(run_args(batch, "--metrics-port", str(port))) == 2
    assert sim.stats()["renders_started"] == 0


def test_config_metrics_section_rejects_unknown_keys(tmp_path: Path) -> None:
    """``[metrics]`` takes ``port`` and ``host``; a typo is an error naming the key."""
    good = tmp_path / "good.toml"
    good.write_text("[metrics]\nport = 9464\n")
    assert load_config(good).metrics.port == 9464
    bad = tmp_path / "bad.toml"
    bad.write_text("[metrics]\nprot = 9464\n")
    with pytest.raises(Exception, match="prot"):
        load_config(bad)


def test_help_and_status_do_not_import_prometheus_client(tmp_path: Path) -> None:
    """``orchestrator --help`` and ``status`` never load prometheus_client (start-up cost)."""
    code = (
        "import sys\n"
        "from orchestrator.cli.main import main\n"
        "for args in (['--help'], ['status', sys.argv[1]]):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'prometheus_client' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_serve_answers_metrics_from_the_live_pages_reading(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """``orchestrator serve``'s app answers ``/metrics``: rows by state as the ledger says."""
    from aiohttp.test_utils import TestClient, TestServer

    from orchestrator.clock import RealClock
    from orchestrator.report.live.readers import RunDirReader
    from orchestrator.report.live.server import build_app
    from orchestrator.report.metrics_server import live_page_metrics

    sim = make_sim(fault_job_failed_p=0.3, seed=3)
    api_env(sim)
    batch = write_batch(tmp_path, 8)
    assert main(run_args(batch)) == 1  # some rows failed
    reader = RunDirReader(batch["out"], RealClock())

    async def scrape() -> dict[Any, float]:
        app = build_app(reader, extend=[live_page_metrics(reader.read)])
        async with TestClient(TestServer(app)) as client:
            resp = await client.get("/metrics")
            assert resp.status == 200
            return samples(await resp.text())

    found = anyio.run(scrape)
    state = replay(batch["out"] / LEDGER_NAME)
    by_status = Counter(r.status for r in state.rows.values())
    for s in ("pending", "done", "failed", "ambiguous"):
        assert value(found, "orchestrator_rows", state=s) == by_status[s], s
    assert by_status["done"] and by_status["failed"]
