"""Start-up: how long `orchestrator --help`, `status --help`, `validate --help` and `status
RUN_DIR` take, against the plain script's imports (issue 31: within ``MARGIN_S`` of them).

The script's imports are read from ``benchmarks/peer.py`` (the asyncio script a user would
write: aiohttp, asyncio, csv, json...), so the bound follows it. Every command is a fresh
interpreter, timed from spawn to exit; the commands take turns run after run (so a machine that
gets busier weighs on all alike), and each figure is the median of ``RUNS`` runs.

    python -m benchmarks --only startup                 # this tree, into results/latest.json
    python -m benchmarks.startup [--runs N] [--versus DIR]   # DIR: another tree, side by side

``--versus DIR`` (e.g. ``git archive HEAD | tar -x -C DIR``) runs the same commands from DIR's
code too, alternating with this tree's run after run, and prints the ratio of each median.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.scenarios import FULL, Figure, Figures, Plan

ROOT = Path(__file__).resolve().parents[1]
PEER = Path(__file__).with_name("peer.py")
RUNS = 21
SMOKE_RUNS = 3
MARGIN_S = 0.05
"""The target: a command starts within 50 ms of the script's own imports."""

COMMANDS: dict[str, list[str]] = {
    "help": ["--help"],
    "status_help": ["status", "--help"],
    "validate_help": ["validate", "--help"],
    "status": ["status", "{run_dir}"],
}


def script_imports() -> list[str]:
    """The top-level modules ``peer.py`` imports (the plain script's start-up)."""
    tree = ast.parse(PEER.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            names.append(node.module)
    return sorted(set(names))


def status_run_dir(folder: Path) -> Path:
    """A run directory whose ledger holds one run record over a one-row manifest."""
    from orchestrator.ledger.codec import encode
    from orchestrator.ledger.records import RunStarted

    run_dir = folder / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    manifest.write_text("id,name\nr1,Ann\n", encoding="utf-8")
    record = RunStarted(manifest=str(manifest), flow="template", target={"simulate": "test"})
    (run_dir / "ledger.jsonl").write_text(json.dumps(encode(record)) + "\n", encoding="utf-8")
    return run_dir


def _argvs(run_dir: Path) -> dict[str, list[str]]:
    argvs = {"script_imports": [sys.executable, "-c", f"import {', '.join(script_imports())}"]}
    for name, args in COMMANDS.items():
        argvs[name] = [
            sys.executable,
            "-m",
            "orchestrator",
            *(a.format(run_dir=run_dir) for a in args),
        ]
    return argvs


def _time(argv: list[str], tree: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=tree, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(runs: int, trees: dict[str, Path]) -> dict[str, dict[str, float]]:
    """The median wall time of each command per tree, the commands and trees taking turns."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-startup-") as tmp:
        argvs = _argvs(status_run_dir(Path(tmp)))
        times: dict[str, dict[str, list[float]]] = {t: {n: [] for n in argvs} for t in trees}
        for argv in argvs.values():  # one unmeasured run each: the file cache warmed
            for tree in trees.values():
                _time(argv, tree)
        for _ in range(runs):
            for name, argv in argvs.items():
                for label, tree in trees.items():
                    times[label][name].append(_time(argv, tree))
    return {t: {n: statistics.median(v) for n, v in by.items()} for t, by in times.items()}


def startup(work: Path, plan: Plan) -> Figures:
    """The ``startup`` scenario of ``python -m benchmarks``."""
    del work  # nothing to keep: the run directory is a temporary one
    runs = RUNS if plan == FULL else SMOKE_RUNS
    medians = measure(runs, {"this tree": ROOT})["this tree"]
    script_s = medians["script_imports"]
    bound_s = script_s + MARGIN_S
    figures: Figures = {
        "script_imports_s": Figure(
            round(script_s, 4), "s", f"import {', '.join(script_imports())}"
        ),
    }
    for name in COMMANDS:
        value = medians[name]
        figures[f"{name}_s"] = Figure(
            round(value, 4), "s", f"≤ script + {MARGIN_S:g} s = {bound_s:.3f} s", value <= bound_s
        )
    figures["runs"] = Figure(runs, "runs per command (median)")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs per command ({RUNS})")
    parser.add_argument("--versus", type=Path, metavar="DIR", help="another tree, side by side")
    args = parser.parse_args(argv)
    trees = {"this tree": ROOT}
    if args.versus:
        trees = {str(args.versus): args.versus.resolve(), **trees}
    medians = measure(args.runs, trees)
    labels = list(trees)
    ratio = " | ratio" if len(labels) == 2 else ""
    print(f"| command (median of {args.runs}) | {' | '.join(labels)}{ratio} | bound |")
    print(f"|---|{'---|' * len(labels)}{'---|' if ratio else ''}---|")
    for name in ["script_imports", *COMMANDS]:
        cells = [f"{medians[t][name]:.3f} s" for t in labels]
        if ratio:
            cells.append(f"{medians[labels[1]][name] / medians[labels[0]][name]:.2f}")
        bound = "" if name == "script_imports" else "≤ script + 0.05 s = "
        if bound:
            bound += " · ".join(f"{medians[t]['script_imports'] + MARGIN_S:.3f} s" for t in labels)
        print(f"| {name} | {' | '.join(cells)} | {bound} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
