"""Workers sharing a batch through PostgreSQL, measured (``make bench-pg``; not run by CI).

    python -m benchmarks.pg_scale [--rows N] [--kill-rows N] [--only NAMES] [--json FILE]
    python -m benchmarks.pg_scale --only shared,three_by_three --ab GITREF --rounds 3

A throwaway PostgreSQL (``benchmarks.local_pg``) and a standalone simulator (demo profile, time
scaled) per scenario; every worker is ``orchestrator worker`` as a child process:

- ``one_account``: 1 worker on 1 account; ``three_accounts``: 3 workers on 3 accounts (each its
  own client id, so its own rate limit and render slots). Throughput is rows per second from the
  first worker's start to the last one's exit; the ratio is the issue's target (>= 2.7).
- ``shared`` (``one_by_three``): 3 workers on 1 account limited at R = 20 req/s (and 5 renders
  at once), each configured for R: rows per second against the bound R/k (k = 4 requests a row
  when polling), in the steady middle of the run (10-90 % of rows downloaded) and overall (first
  preview to last download), requests per row, and 429s. Target: >= 0.97 of R/k, 0 x 429.
- ``three_by_three``: 3 accounts x 3 workers, each account as above: its rows per second against
  ``shared``'s (target: >= 2.9x) and against 3 R/k.
- ``kills``: 3 workers on 3 accounts, worker 0 SIGKILLed and restarted every few seconds until
  the batch is done: rows done, renders started, duplicate renders (must be 0), rows taken over
  and how long after each kill its rows were claimed by another worker. Rows left ambiguous (a
  kill between a render intent and its job id) are then rendered again by choice
  (``worker --rerender-ambiguous``): ``renders_started`` counts those too.

``--ab GITREF`` runs the chosen scenarios with GITREF's orchestrator (a temporary ``git
worktree``; the simulator and this harness stay this tree's) and with this tree's, alternating
round by round, and prints each figure per side (median over rounds) and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks import local_pg
from benchmarks.harness import (
    orchestrator_argv,
    overall_rate,
    steady_rate,
    write_batch,
    write_config,
)
from orchestrator.simulator.process import SimProcess

TIME_SCALE = 0.2
"""Demo jobs at a fifth of their time: previews ~0.2 s, renders ~0.6 s."""
RATE_RPS = 50
"""Each simulated account's request limit in the throughput scenarios."""
SHARED_RATE_RPS = 20
_DATABASES = itertools.count(1)
K_POLL = 4
"""The fewest API requests a row needs when polling: from-template, preview read, render, read."""
LEASE_S = 3.0
KILL_EVERY_S = (3.0, 6.0)
WORKER_TIMEOUT_S = 1800.0


def _config(folder: Path, rate_rps: float) -> Path:
    preview_s, render_s = 1.0 * TIME_SCALE, 3.0 * TIME_SCALE
    return write_config(
        folder / "worker.toml",
        {
            "limits": {
                "max_requests_per_s": rate_rps,
                "max_rows_in_flight": 16,
                "max_renders_in_flight": 7,
            },
            "poll": {
                "preview_interval_s": preview_s / 4,
                "render_interval_s": render_s / 4,
                "preview_deadline_s": 60.0,
                "render_deadline_s": 120.0,
            },
            "ledger": {"lease_s": LEASE_S},
        },
    )


class Scenario:
    """A fresh database and simulator, a submitted batch, and workers to start (``tree``: with
    that tree's orchestrator, for ``--ab``; None: this one's)."""

    def __init__(
        self,
        pg: local_pg.LocalPostgres,
        name: str,
        rows: int,
        rate_rps: float,
        tree: Path | None = None,
    ) -> None:
        self.tree = tree
        self.folder = Path(tempfile.mkdtemp(prefix=f"pg-bench-{name}-"))
        self.url = pg.create_database(f"{name}_{next(_DATABASES)}")  # --ab: each run its own
        self.sim = SimProcess(
            "--profile", "demo", "--time-scale", str(TIME_SCALE), "--rate-limit", str(rate_rps)
        )
        self.config = _config(self.folder, rate_rps)
        manifest, template = write_batch(self.folder, rows)
        self.rows = rows
        subprocess.run(  # a new database holds no schema: only `migrate` creates it
            orchestrator_argv("migrate", "--ledger", self.url),
            capture_output=True,
            check=True,
            env=self.env(),
            cwd=tree,
        )
        done = subprocess.run(
            orchestrator_argv(
                "submit", str(manifest), "--template", str(template), "--ledger", self.url
            ),
            env=self.env(),
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"submit failed: {done.stderr}")

    def env(self) -> dict[str, str]:
        env = self.sim.env()
        if self.tree is not None:
            env["PYTHONPATH"] = str(self.tree)
        return env

    def worker(self, index: int, account: str, *extra: str) -> subprocess.Popen[bytes]:
        env = self.env()
        env["PICTORY_CLIENT_ID"] = f"bench-{account}"
        out = self.folder / f"w{index}"
        return subprocess.Popen(
            orchestrator_argv(
                "worker",
                "--ledger",
                self.url,
                "--out",
                str(out),
                "--config",
                str(self.config),
                *extra,
            ),
            env=env,
            cwd=self.tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def close(self) -> None:
        self.sim.close()


def _run_workers(scenario: Scenario, accounts: list[str]) -> float:
    started = time.monotonic()
    workers = [scenario.worker(i, a) for i, a in enumerate(accounts)]
    _wait_all(workers)
    return time.monotonic() - started


def _wait_all(workers: list[subprocess.Popen[bytes]]) -> None:
    """Wait for every worker; a worker that failed (exit 2 or a crash) fails the benchmark."""
    codes = [w.wait(timeout=WORKER_TIMEOUT_S) for w in workers]
    if any(code not in (0, 1) for code in codes):
        raise RuntimeError(f"a worker failed: exit codes {codes}")


def throughput(pg: local_pg.LocalPostgres, rows: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, accounts in (("one_account", ["a"]), ("three_accounts", ["a", "b", "c"])):
        scenario = Scenario(pg, name, rows, RATE_RPS)
        try:
            elapsed = _run_workers(scenario, accounts)
            stats = scenario.sim.stats()
        finally:
            scenario.close()
        figures[name] = {
            "rows": rows,
            "workers": len(accounts),
            "elapsed_s": round(elapsed, 1),
            "rows_per_s": round(rows / elapsed, 2),
            "renders_started": stats["renders_started"],
            "duplicate_renders": stats["duplicate_renders"],
            "rate_limited": stats["rate_limited"],
        }
    figures["ratio"] = round(
        figures["three_accounts"]["rows_per_s"] / figures["one_account"]["rows_per_s"], 2
    )
    return figures


def shared(
    pg: local_pg.LocalPostgres, rows: int, accounts: int = 1, tree: Path | None = None
) -> dict[str, Any]:
    """``accounts`` accounts x 3 workers, each account limited at R = 20 req/s and 5 renders at
    once, ``rows`` rows per account: rows per second against ``accounts`` x R/k."""
    name = "shared" if accounts == 1 else f"shared{accounts}"
    scenario = Scenario(pg, name, rows * accounts, SHARED_RATE_RPS, tree)
    names = [chr(ord("a") + i) for i in range(accounts)]
    try:
        elapsed = _run_workers(scenario, [a for a in names for _ in range(3)])
        stats = scenario.sim.stats()
        first, times = asyncio.run(_download_times(scenario.url))
    finally:
        scenario.close()
    api = stats["requests_total"] - sum(
        n for route, n in stats["requests"].items() if route.split(" ", 1)[-1].startswith("/__")
    )
    bound = accounts * SHARED_RATE_RPS / K_POLL
    steady, overall = steady_rate(times), overall_rate(first, times)
    return {
        "rows": rows * accounts,
        "accounts": accounts,
        "workers": 3 * accounts,
        "limit_rps": SHARED_RATE_RPS,
        "elapsed_s": round(elapsed, 1),
        "bound_rows_per_s": bound,
        "steady_rows_per_s": round(steady or 0.0, 3),
        "steady_of_bound": round((steady or 0.0) / bound, 3),
        "overall_rows_per_s": round(overall or 0.0, 3),
        "overall_of_bound": round((overall or 0.0) / bound, 3),
        "api_requests": api,
        "requests_per_row": round(api / (rows * accounts), 3),
        "mean_rps_per_account": round(api / elapsed / accounts, 2),
        "busy_rps_per_account": round(api / (times[-1] - first) / accounts, 2)
        if first is not None and times
        else None,
        "rate_limited": stats["rate_limited"],
        "duplicate_renders": stats["duplicate_renders"],
    }


async def _download_times(url: str) -> tuple[float | None, list[float]]:
    """When the first preview was asked for, and when each row was downloaded (database time)."""
    conn = await asyncpg.connect(url)
    try:
        first = await conn.fetchval(
            "SELECT min((body->>'ts')::float8) FROM events WHERE body->>'e' = 'preview_job'"
        )
        times = await conn.fetch(
            "SELECT (body->>'ts')::float8 AS ts FROM events WHERE body->>'e' = 'downloaded' "
            "ORDER BY 1"
        )
    finally:
        await conn.close()
    return first, [float(t["ts"]) for t in times]


def kills(pg: local_pg.LocalPostgres, rows: int, seed: int = 16) -> dict[str, Any]:
    scenario = Scenario(pg, "kills", rows, RATE_RPS)
    rng = random.Random(seed)
    killed: list[tuple[int, float]] = []  # (pid, wall time of the kill)
    try:
        started = time.monotonic()
        workers = [scenario.worker(i, a) for i, a in enumerate(["a", "b", "c"])]
        while workers[0].poll() is None:
            time.sleep(rng.uniform(*KILL_EVERY_S))
            if workers[0].poll() is not None:
                break
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            killed.append((workers[0].pid, time.time()))
            workers[0] = scenario.worker(0, "a")
        _wait_all(workers)
        elapsed = time.monotonic() - started
        after_kills = asyncio.run(_kill_figures(scenario.url, killed))
        rerendered = after_kills["rows_by_status"].get("ambiguous", 0)
        if rerendered:  # render those again by choice, as a user would
            again = scenario.worker(0, "a", "--rerender-ambiguous")
            _wait_all([again])
        stats = scenario.sim.stats()
        db = asyncio.run(_kill_figures(scenario.url, killed))
    finally:
        scenario.close()
    return {
        "rows": rows,
        "kills": len(killed),
        "elapsed_s": round(elapsed, 1),
        "renders_started": stats["renders_started"],
        "duplicate_renders": stats["duplicate_renders"],
        "lease_s": LEASE_S,
        "ambiguous_after_kills": rerendered,
        "rows_by_status_after_kills": after_kills["rows_by_status"],
        **db,
    }


async def _kill_figures(url: str, killed: list[tuple[int, float]]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        counts = {
            r["status"]: r["n"]
            for r in await conn.fetch("SELECT status, count(*) AS n FROM rows GROUP BY status")
        }
        takeovers = await conn.fetch(
            "SELECT taken_from, extract(epoch FROM taken_at)::float8 AS at FROM rows "
            "WHERE taken_from IS NOT NULL"
        )
    finally:
        await conn.close()
    delays: list[float] = []
    for pid, at in killed:
        mine = [t["at"] for t in takeovers if f":{pid}:" in t["taken_from"]]
        if mine:
            delays.append(min(mine) - at)
    return {
        "rows_by_status": counts,
        "rows_taken_over": len(takeovers),
        "takeover_s_median": round(statistics.median(delays), 2) if delays else None,
        "takeover_s_max": round(max(delays), 2) if delays else None,
    }


SCENARIOS = ("kills", "shared", "three_by_three", "throughput")


def run_scenarios(
    pg: local_pg.LocalPostgres, args: argparse.Namespace, only: list[str], tree: Path | None
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name in only:
        if name == "kills":
            figures[name] = kills(pg, args.kill_rows)
        elif name == "shared":
            figures[name] = shared(pg, args.shared_rows, 1, tree)
        elif name == "three_by_three":
            figures[name] = shared(pg, args.shared_rows, 3, tree)
            if "shared" in figures:
                figures[name]["vs_shared"] = round(
                    figures[name]["steady_rows_per_s"] / figures["shared"]["steady_rows_per_s"], 3
                )
        else:
            figures[name] = throughput(pg, args.rows)
        print(json.dumps({name: figures[name]}), flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pg_scale")
    parser.add_argument("--rows", type=int, default=600, help="rows per throughput scenario")
    parser.add_argument(
        "--shared-rows", type=int, default=300, help="rows per account, shared scenarios"
    )
    parser.add_argument("--kill-rows", type=int, default=1000)
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--ab", metavar="GITREF", help="also run GITREF's orchestrator, alternating"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --ab (default 2)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    with local_pg.running() as pg:
        if args.ab:
            from benchmarks.pg_ab import run_ab

            figures = run_ab(pg, args, only, run_scenarios)
        else:
            figures = run_scenarios(pg, args, only, None)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
