"""``python -m benchmarks --ab GITREF [--rounds N] [--only ...] [--smoke]``: the same scenarios
on another commit and on this working tree, alternating, on the same machine in one session.

GITREF is checked out into a temporary ``git worktree``; each side runs ``python -m benchmarks``
from its own tree (its own ``orchestrator`` and harness, with this interpreter and its installed
packages), so the two differ only in the code. Sides alternate round by round (A, B, A, B...)
so a machine that gets busier or quieter during the session weighs on both alike. The table
shows each figure per side (median over rounds), the change, and the bound it is measured
against.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_ab(ref: str, rounds: int, passthrough: list[str], out: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="orchestrator-ab-") as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(other), ref],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            sides = {ref: other, "this tree": ROOT}
            found: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
            for round_no in range(1, rounds + 1):
                for name, tree in sides.items():
                    result = Path(tmp) / f"{len(found[name])}-{name.replace(' ', '-')}.json"
                    print(f"ab: round {round_no}, {name} …", file=sys.stderr, flush=True)
                    subprocess.run(
                        [sys.executable, "-m", "benchmarks", *passthrough, "--out", str(result)],
                        cwd=tree,
                        env=_env(tree),
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    found[name].append(json.loads(result.read_text()))
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False
            )
    text = table(ref, found)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"ref": ref, "rounds": rounds, "runs": found}, indent=2) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def _env(tree: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    return env


def table(ref: str, found: dict[str, list[dict[str, Any]]]) -> str:
    """Median per side of every figure both sides measured, the change, and its bound."""
    a, b = found[ref], found["this tree"]
    lines = [
        f"| scenario | figure | {ref} | this tree | change | unit | bound / target |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario, figures in a[0]["scenarios"].items():
        for key, first in figures.items():
            before = _median(a, scenario, key)
            after = _median(b, scenario, key)
            if before is None or after is None:
                continue
            change = f"{(after - before) / before * 100:+.1f} %" if before else "n/a"
            lines.append(
                f"| {scenario} | {key} | {before:g} | {after:g} | {change} | "
                f"{first.get('unit', '')} | {first.get('bound', '')} |"
            )
    return "\n".join(lines)


def _median(runs: list[dict[str, Any]], scenario: str, key: str) -> float | None:
    values = [
        float(v)
        for run in runs
        if (v := run["scenarios"].get(scenario, {}).get(key, {}).get("value")) is not None
    ]
    return statistics.median(values) if values else None
