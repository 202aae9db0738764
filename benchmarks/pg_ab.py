"""``python -m benchmarks.pg_scale --ab GITREF --rounds N``: the shared-ledger scenarios with
GITREF's orchestrator (a temporary ``git worktree``; the simulator, PostgreSQL and harness stay
this tree's) and with this tree's, alternating round by round so a machine that gets busier
weighs on both; prints each figure per side (median over rounds) and their ratio, and the load
average at the start of each run (the machine is shared)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import local_pg


def run_ab(
    pg: local_pg.LocalPostgres,
    args: argparse.Namespace,
    only: list[str],
    run_scenarios: Callable[
        [local_pg.LocalPostgres, argparse.Namespace, list[str], Path | None], dict[str, Any]
    ],
) -> dict[str, Any]:
    """The scenarios with GITREF's orchestrator and with this tree's, alternating by round."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="pg-scale-ab-") as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(other), args.ab],
            cwd=root,
            check=True,
            capture_output=True,
        )
        sides: dict[str, Path | None] = {args.ab: other, "this tree": None}
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
        loads: list[float] = []
        try:
            for round_no in range(1, args.rounds + 1):
                for name, tree in sides.items():
                    print(f"ab: round {round_no}, {name}", file=sys.stderr, flush=True)
                    loads.append(os.getloadavg()[0])
                    found[name].append(run_scenarios(pg, args, only, tree))
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(other)], cwd=root, check=False
            )
    table: dict[str, Any] = {"rounds": args.rounds, "load_avg_1m": [round(x, 2) for x in loads]}
    for scenario in only:
        for figure in found["this tree"][0][scenario]:
            values = {
                side: [
                    r[scenario][figure]
                    for r in runs
                    if isinstance(r[scenario].get(figure), (int, float))
                ]
                for side, runs in found.items()
            }
            if not all(values.values()):
                continue
            a, b = (statistics.median(v) for v in values.values())
            table[f"{scenario}.{figure}"] = {
                args.ab: a,
                "this tree": b,
                "ratio": round(b / a, 3) if a else None,
            }
    print(json.dumps(table, indent=2))
    return {"ab": table, "runs": found}
