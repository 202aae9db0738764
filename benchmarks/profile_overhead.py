"""Profile the overhead scenario's run: where the orchestrator's own CPU per row goes.

The same batch as ``python -m benchmarks --only overhead`` (``ROWS`` rows, a simulator with no
latency and no limits in its own process, the bench's config), the ``orchestrator run`` child
under ``cProfile``; writes the top ``TOP`` functions by own time and by cumulative time to
``benchmarks/results/profile-overhead.txt`` (or ``--out``), with the run's CPU per row.

    python -m benchmarks.profile_overhead [--rows 5000] [--out FILE]

cProfile slows the run about twofold, so its CPU per row is not the benchmark's figure; the
shares between functions are what it is for.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import write_batch
from benchmarks.scenarios import FULL, _fast_config
from orchestrator.simulator.process import SimProcess

OUT = Path(__file__).parent / "results" / "profile-overhead.txt"
TOP = 25


def profile(rows: int, work: Path, prof: Path) -> tuple[pstats.Stats, float, float]:
    """Run the batch under cProfile into ``prof``; the stats, the child's CPU seconds and wall
    seconds."""
    manifest, template = write_batch(work, rows)
    config = _fast_config(work / "config.toml")
    argv = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "orchestrator", "run"]
    argv += [str(manifest), "--template", str(template), "--out", str(work / "run")]
    argv += ["--config", str(config)]
    with SimProcess("--profile", "test", "--seed", str(FULL.seed)) as sim:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=sim.env(), stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall_s = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"orchestrator run exited {proc.returncode}")
    return pstats.Stats(str(prof)), usage.ru_utime + usage.ru_stime, wall_s


AREAS = 20


def area(filename: str, function: str) -> str:
    """Where a profiled function belongs: a third-party package, our module, the standard
    library's module, or the built-in call itself (socket send/recv, epoll...)."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/orchestrator/" in filename:
        return "orchestrator/" + filename.split("/orchestrator/", 1)[1]
    if filename == "~":
        return function
    return "stdlib " + "/".join(filename.rsplit("/", 2)[-2:])


def by_area(stats: pstats.Stats, rows: int) -> str:
    """Own time summed by ``area``: seconds, share of all profiled time, calls per row."""
    seconds: dict[str, float] = {}
    calls: dict[str, int] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, ncalls, tottime, _, _) in raw.items():
        key = area(filename, function)
        seconds[key] = seconds.get(key, 0.0) + tottime
        calls[key] = calls.get(key, 0) + ncalls
    total = sum(seconds.values()) or 1.0
    lines = ["   seconds  share  calls/row  area"]
    for key, value in sorted(seconds.items(), key=lambda kv: -kv[1])[:AREAS]:
        lines.append(f"{value:10.2f} {value / total:6.1%} {calls[key] / rows:10.1f}  {key}")
    ours = sum(v for k, v in seconds.items() if k.startswith("orchestrator/"))
    lines.append(f"{ours:10.2f} {ours / total:6.1%} {'':10}  (all of orchestrator/ together)")
    return "\n".join(lines)


def report(stats: pstats.Stats, rows: int, cpu_s: float, wall_s: float) -> str:
    head = (
        f"# cProfile of `orchestrator run`, overhead scenario, {rows} rows "
        f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)\n"
        f"# under the profiler: {cpu_s:.2f} s CPU ({cpu_s * 1000 / rows:.2f} ms/row), "
        f"{wall_s:.1f} s wall\n"
        f"# regenerate: python -m benchmarks.profile_overhead --rows {rows}\n"
    )
    parts = [head]
    for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        buffer = io.StringIO()
        stats.stream = buffer  # type: ignore[attr-defined]
        stats.sort_stats(key).print_stats(TOP)
        body = buffer.getvalue()
        body = body[body.index("   ncalls") :]  # drop pstats' banner (the temp file's name)
        parts.append(f"\n## top {TOP} by {title}\n\n{body.rstrip()}\n")
    parts.append(f"\n## own time by area (the {AREAS} largest)\n\n{by_area(stats, rows)}\n")
    text = "".join(parts)
    for prefix in sorted({*sys.path, str(Path(__file__).resolve().parents[1])}, key=len)[::-1]:
        if prefix.startswith("/"):
            text = text.replace(prefix.rstrip("/") + "/", "")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_overhead")
    parser.add_argument("--rows", type=int, default=FULL.overhead_rows)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--keep", type=Path, metavar="FILE", help="keep the raw profile here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="orchestrator-profile-") as tmp:
        prof = args.keep.resolve() if args.keep else Path(tmp) / "run.prof"
        stats, cpu_s, wall_s = profile(args.rows, Path(tmp), prof)
        text = report(stats, args.rows, cpu_s, wall_s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
