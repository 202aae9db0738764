"""What ``--metrics-port`` costs a run: the overhead scenario's batch (no latency, no limits: the
orchestrator's own CPU per row is all there is to see) without and with metrics, alternated
``ROUNDS`` times in one session, which goes first swapping each round (so a machine that gets
busier, or a second run that finds caches warm, weighs on both alike), the "with" runs
scraped every ``SCRAPE_INTERVAL_S`` (three times as often as a common Prometheus setup's 15 s).

``python -m benchmarks --only metrics`` prints both figures (medians), the change and the bound.
"""

from __future__ import annotations

import socket
import statistics
import threading
import urllib.request
from pathlib import Path

from benchmarks.harness import Measured, downloaded_times, steady_rate, write_batch
from benchmarks.scenarios import FULL, Figure, Figures, Plan, _count, _fast_config, _run
from orchestrator.simulator.process import SimProcess

ROUNDS = 4
SMOKE_ROUNDS = 1
"""``--smoke`` (a toy batch) checks only that the figures come out: one round."""
SCRAPE_INTERVAL_S = 5.0
MAX_CHANGE = 0.05
"""No measurable cost: the CPU per row with metrics within 5 % of without (the spread of one
side alone on a shared machine is about that)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Scraper(threading.Thread):
    """Scrapes ``url`` every ``SCRAPE_INTERVAL_S`` until stopped; counts the answers."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.answers = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(SCRAPE_INTERVAL_S):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    resp.read()
                    self.answers += 1
            except OSError:
                pass  # not up yet, or already gone


def _one(work: Path, plan: Plan, rows: int, with_metrics: bool) -> tuple[Measured, Path, int]:
    manifest, template = write_batch(work, rows)
    config = _fast_config(work / "config.toml")
    extra: list[str] = []
    scraper: _Scraper | None = None
    if with_metrics:
        port = _free_port()
        extra = ["--metrics-port", str(port)]
        scraper = _Scraper(f"http://127.0.0.1:{port}/metrics")
        scraper.start()
    try:
        with SimProcess("--profile", "test", "--seed", str(plan.seed)) as sim:
            m, run_dir = _run(work, sim, manifest, template, config, plan, *extra)
    finally:
        if scraper is not None:
            scraper.stopped.set()
            scraper.join(timeout=10)
    return m, run_dir, scraper.answers if scraper is not None else 0


def metrics_cost(work: Path, plan: Plan) -> Figures:
    rows = plan.overhead_rows
    rounds = ROUNDS if rows >= FULL.overhead_rows else SMOKE_ROUNDS
    cpu: dict[bool, list[float]] = {False: [], True: []}
    rate: dict[bool, list[float]] = {False: [], True: []}
    scrapes = 0
    done = True
    for round_no in range(rounds):
        for with_metrics in (False, True) if round_no % 2 == 0 else (True, False):
            side = "with" if with_metrics else "without"
            m, run_dir, answers = _one(work / f"{round_no}-{side}", plan, rows, with_metrics)
            cpu[with_metrics].append(m.cpu_s * 1000 / rows)
            steady = steady_rate(downloaded_times(run_dir / "ledger.jsonl")[1])
            if steady:
                rate[with_metrics].append(steady)
            scrapes += answers
            done = done and _count(run_dir, "done") == rows
    without, with_ = statistics.median(cpu[False]), statistics.median(cpu[True])
    change = with_ / without - 1
    spread = " · ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(cpu[False], cpu[True], strict=True))
    return {
        "cpu_ms_per_row_without": Figure(round(without, 3), "ms/row", f"median of {rounds}"),
        "cpu_ms_per_row_with": Figure(round(with_, 3), "ms/row", f"median of {rounds}"),
        "cpu_change": Figure(
            round(change, 4),
            "ratio",
            f"<= +{MAX_CHANGE:.0%} (rounds: {spread})",
            change <= MAX_CHANGE,
        ),
        "rows_per_s_without": Figure(
            round(statistics.median(rate[False]), 2) if rate[False] else None, "rows/s"
        ),
        "rows_per_s_with": Figure(
            round(statistics.median(rate[True]), 2) if rate[True] else None, "rows/s"
        ),
        "scrapes": Figure(scrapes, "answers", f"every {SCRAPE_INTERVAL_S:g} s during the runs"),
        "all_done": Figure(int(done), "bool", "every row of every run", done),
    }
