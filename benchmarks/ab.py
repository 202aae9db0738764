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
import os
import statistics
import subprocess
import sys
import tempfile
import time
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
            loads: list[float] = []
            started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            for round_no in range(1, rounds + 1):
                for name, tree in sides.items():
                    result = Path(tmp) / f"{len(found[name])}-{name.replace(' ', '-')}.json"
                    print(f"ab: round {round_no}, {name} …", file=sys.stderr, flush=True)
                    loads.append(os.getloadavg()[0])  # how busy the machine was (it is shared)
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
    record = {
        "ref": ref,
        "commit": _commit(ref),
        "rounds": rounds,
        "args": passthrough,
        "started": started,
        "load_average_1min": loads,
        "runs": found,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def _commit(ref: str) -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or ref


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    return env


def table(ref: str, found: dict[str, list[dict[str, Any]]]) -> str:
    """Median per side of every figure both sides measured, their ratio (this tree over
    ``ref``: below 1 is less of it, for times and costs the better side) and its bound."""
    a, b = found[ref], found["this tree"]
    lines = [
        f"| scenario | figure | {ref} | this tree | ratio (this / {ref}) | unit | bound / target |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario, figures in a[0]["scenarios"].items():
        for key, first in figures.items():
            before = _median(a, scenario, key)
            after = _median(b, scenario, key)
            if before is None or after is None:
                continue
            ratio = f"**{after / before:.3f}**" if before else ("1" if not after else "n/a")
            lines.append(
                f"| {scenario} | {key} | {before:g} | {after:g} | {ratio} | "
                f"{first.get('unit', '')} | {first.get('bound', '')} |"
            )
    return "\n".join(lines)


DOC_START = "<!-- ab-table:start (python -m benchmarks.ab --doc; do not edit by hand) -->"
DOC_END = "<!-- ab-table:end -->"


def doc_block(*records: dict[str, Any]) -> str:
    """The tables of ``--ab`` records, each with what it was: sides, rounds, sizes, load."""
    return f"{DOC_START}\n" + "\n\n".join(_doc_table(r) for r in records) + f"\n{DOC_END}"


def _doc_table(record: dict[str, Any]) -> str:
    """The table of an ``--ab`` record with what it was: sides, rounds, sizes, machine load."""
    ref = record["ref"]
    loads = record.get("load_average_1min") or []
    busy = (
        f"1-minute load average {min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores"
        if loads
        else "load not recorded"
    )
    args = " ".join(record.get("args") or []) or "(full sizes)"
    head = (
        f"`python -m benchmarks --ab {ref} --rounds {record['rounds']} {args}`, started "
        f"{record.get('started', '?')}: `{ref}` = {record.get('commit', ref)}, against the working "
        f"tree; sides alternating, median of {record['rounds']} round(s) each; {busy}."
    )
    return f"{head}\n\n{table(ref, record['runs'])}"


def write_doc(record: dict[str, Any] | list[dict[str, Any]], doc: Path) -> None:
    """Replace the marked block of ``doc`` with ``doc_block`` of the record(s)."""
    records = record if isinstance(record, list) else [record]
    text = doc.read_text(encoding="utf-8")
    start, end = text.find(DOC_START), text.find(DOC_END)
    if start < 0 or end < start:
        raise SystemExit(f"{doc}: no {DOC_START!r} … {DOC_END!r} block to replace")
    doc.write_text(text[:start] + doc_block(*records) + text[end + len(DOC_END) :], "utf-8")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.ab --doc docs/performance.md [--from FILE...]``: put the table of
    each ``--ab`` run (its JSON, default ``results/ab.json``) into the document's marked block."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=main.__doc__)
    parser.add_argument("--doc", type=Path, required=True, help="the markdown file to update")
    parser.add_argument(
        "--from",
        dest="sources",
        type=Path,
        nargs="+",
        default=[ROOT / "benchmarks" / "results" / "ab.json"],
    )
    args = parser.parse_args(argv)
    write_doc([json.loads(source.read_text()) for source in args.sources], args.doc)
    print(f"updated {args.doc} from {', '.join(map(str, args.sources))}")
    return 0


def _median(runs: list[dict[str, Any]], scenario: str, key: str) -> float | None:
    values = [
        float(v)
        for run in runs
        if (v := run["scenarios"].get(scenario, {}).get(key, {}).get("value")) is not None
    ]
    return statistics.median(values) if values else None


if __name__ == "__main__":
    raise SystemExit(main())
