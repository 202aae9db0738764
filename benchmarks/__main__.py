"""``python -m benchmarks [--smoke] [--rows N] [--only NAME,...] [--out FILE] [--ab GITREF]``.

Runs the scenarios (``benchmarks.scenarios``), prints a markdown table (each figure beside the
bound it is measured against) and writes every figure, the plan and the machine as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import metrics_cost, scenarios, startup, versus_peer
from benchmarks.scenarios import FULL, SMOKE, Figures, Plan

RESULTS_DIR = Path(__file__).parent / "results"
SCENARIOS = (
    "rate_poll",
    "rate_webhook",
    "render_bound",
    "render_bound_queued",
    "overhead",
    "startup",
    "metrics",
    "scale",
    "validate_xlsx",
    "faults",
    "peer_clean",
    "peer_render_capped",
    "peer_flaky",
    "peer_direct_webhook",
)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(results: dict[str, Figures]) -> str:
    lines = [
        "| scenario | figure | value | unit | bound / target | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in results.items():
        for key, fig in figures.items():
            met = "" if fig.met is None else ("yes" if fig.met else "**no**")
            value = "n/a" if fig.value is None else f"{fig.value:g}"
            lines.append(f"| {name} | {key} | {value} | {fig.unit} | {fig.bound} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and durations (CI)")
    parser.add_argument("--rows", type=int, help="rows of the rate-bound and fault runs")
    parser.add_argument("--render-rows", type=int, help="rows of the render-bound run")
    parser.add_argument("--rows-in-flight", type=int, help="max_rows_in_flight of rate-bound runs")
    parser.add_argument(
        "--fault-timeout", type=float, help="seconds before a fault pass is stopped"
    )
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, help="JSON file (default results/latest.json)")
    parser.add_argument("--work", type=Path, help="keep the runs' files here (default: a temp dir)")
    parser.add_argument(
        "--ab",
        metavar="GITREF",
        help="run the scenarios on GITREF and on this tree, alternating, and compare them",
    )
    parser.add_argument("--rounds", type=int, default=1, help="--ab: rounds per side (default 1)")
    args = parser.parse_args(argv)
    if args.ab:
        from benchmarks.ab import run_ab

        passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
        passthrough = _without(passthrough, {"--ab", "--rounds", "--out"})
        out = args.out or RESULTS_DIR / "ab.json"
        return run_ab(args.ab, args.rounds, passthrough, out)
    plan: Plan = SMOKE if args.smoke else FULL
    if args.rows:
        plan = dataclasses.replace(plan, rows=args.rows)
    if args.render_rows:
        plan = dataclasses.replace(plan, render_rows=args.render_rows)
    if args.rows_in_flight:
        plan = dataclasses.replace(plan, rows_in_flight=args.rows_in_flight)
    if args.fault_timeout:
        plan = dataclasses.replace(plan, fault_pass_timeout_s=args.fault_timeout)
    only = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    out: Path = args.out or RESULTS_DIR / ("smoke.json" if args.smoke else "latest.json")

    results: dict[str, Figures] = {}
    timings: dict[str, float] = {}
    keep = contextlib.nullcontext(str(args.work)) if args.work else None
    with keep or tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp:
        work = Path(tmp)
        runners: dict[str, Callable[[], Figures]] = {
            "rate_poll": lambda: scenarios.rate_bound(work / "rate_poll", plan, webhook=False),
            "rate_webhook": lambda: scenarios.rate_bound(work / "rate_webhook", plan, webhook=True),
            "render_bound": lambda: scenarios.render_bound(work / "render_bound", plan),
            "render_bound_queued": lambda: scenarios.render_bound(
                work / "render_bound_queued", plan, profile=True
            ),
            "overhead": lambda: scenarios.overhead(work / "overhead", plan),
            "startup": lambda: startup.startup(work / "startup", plan),
            "metrics": lambda: metrics_cost.metrics_cost(work / "metrics", plan),
            "scale": lambda: scenarios.scale(work / "scale", plan),
            "validate_xlsx": lambda: scenarios.validate_xlsx(work / "validate_xlsx", plan),
            "faults": lambda: scenarios.faults(work / "faults", plan, _clean(results, out, plan)),
            "peer_clean": lambda: versus_peer.clean(work / "peer_clean", plan),
            "peer_render_capped": lambda: versus_peer.render_capped(work / "peer_render", plan),
            "peer_flaky": lambda: versus_peer.flaky(work / "peer_flaky", plan),
            "peer_direct_webhook": lambda: versus_peer.direct_webhook(work / "peer_direct", plan),
        }
        for name in SCENARIOS:
            if name not in only:
                continue
            print(f"bench: {name} …", file=sys.stderr, flush=True)
            started = time.monotonic()
            results[name] = runners[name]()
            timings[name] = round(time.monotonic() - started, 1)
            _write(out, plan, results, timings, merge=args.only is not None)
    print(table(results))
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def _without(argv: list[str], options: set[str]) -> list[str]:
    """``argv`` without ``options`` and their values (``--opt V`` or ``--opt=V``)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in options:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return kept


def _write(
    out: Path, plan: Plan, results: dict[str, Figures], timings: dict[str, float], *, merge: bool
) -> None:
    """Write the figures so far (after every scenario, so a long run never loses them all).
    With ``--only``, scenarios already in ``out`` from an earlier run are kept."""
    document: dict[str, Any] = {"scenarios": {}, "plans": {}, "bench_seconds": {}}
    if merge and out.exists():
        document.update(json.loads(out.read_text()))
    document["when"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    document["machine"] = machine()
    for name, figures in results.items():
        document["scenarios"][name] = {key: fig.to_json() for key, fig in figures.items()}
        document["plans"][name] = plan.describe()
        document["bench_seconds"][name] = timings[name]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")


def _clean(results: dict[str, Figures], out: Path, plan: Plan) -> float | None:
    """The clean rate-bound makespan: from this invocation, else from ``out`` when it was
    measured on the same plan (``--only faults`` after a full run)."""
    clean = results.get("rate_poll", {}).get("makespan_s")
    if clean is not None and clean.value is not None:
        return float(clean.value)
    if not out.exists():
        return None
    document = json.loads(out.read_text())
    if document.get("plans", {}).get("rate_poll") != plan.describe():
        return None
    value = document["scenarios"]["rate_poll"].get("makespan_s", {}).get("value")
    return float(value) if value is not None else None


if __name__ == "__main__":
    raise SystemExit(main())
