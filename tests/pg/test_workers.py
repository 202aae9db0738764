"""Several ``orchestrator worker`` processes on one batch in a real PostgreSQL, through the CLI
as users run them: every row done once, no render twice, whatever kills a worker."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e.helpers import read_results, run_cli, write_batch

from orchestrator.ledger.pg import local as local_pg

pytestmark = pytest.mark.slow

LEASE_S = 1.0
KILL_EVERY_S = (0.5, 2.5)
WORKER_TIMEOUT_S = 200.0


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env, WORKER_TIMEOUT_S)


def _worker(
    url: str,
    out: Path,
    config: Path,
    env: dict[str, str],
    client_id: str = "test-client",
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "worker.out").open("a") as said:  # what it printed, for a failure's message
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "orchestrator", "worker"),
                *("--ledger", url, "--out", str(out), "--config", str(config)),
                *extra,
            ],
            env={**env, "PICTORY_CLIENT_ID": client_id},
            stdout=said,
            stderr=subprocess.STDOUT,
            text=True,
        )


def _submit(batch: dict[str, Path], url: str, env: dict[str, str]) -> None:
    done = _cli(
        [
            *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
            *("--ledger", url, "--name", "b"),
        ],
        env,
    )
    assert done.returncode == 0, done.stderr


def _check_every_row_once(
    results: list[dict[str, str]], stats: dict[str, Any], outs: list[Path], rows: int
) -> None:
    """Each row once and finished; no render twice; renders only for rows that are done or
    ambiguous; every done row's video in some worker's folder, the bytes the server served."""
    assert len(results) == rows
    assert len({r["id"] for r in results}) == rows
    statuses = {r["status"] for r in results}
    assert statuses <= {"done", "ambiguous"}, statuses
    assert stats["duplicate_renders"] == 0
    assert all(n == 1 for n in stats["renders_per_preview"].values())
    done = sum(r["status"] == "done" for r in results)
    assert done <= stats["renders_started"] <= rows
    for r in results:
        if r["status"] != "done":
            continue
        copies = [o / r["file"] for o in outs if (o / r["file"]).exists()]
        assert copies, r
        for copy in copies:
            assert hashlib.sha256(copy.read_bytes()).hexdigest() == r["sha256"]


def test_two_workers_share_a_batch(make_sim: Any, pg_url: str, tmp_path: Path) -> None:
    """Submit, then two workers on two accounts (each uploads its own template): every row is
    done once, and ``status``/``report`` read the batch from the database."""
    sim = make_sim("test")
    env = sim.env()
    batch = write_batch(tmp_path, 40, config={"ledger": {"lease_s": LEASE_S}})
    _submit(batch, pg_url, env)
    outs = [tmp_path / "w1", tmp_path / "w2"]
    workers = [
        _worker(pg_url, out, batch["config"], env, client_id=f"client-{i}")
        for i, out in enumerate(outs)
    ]
    codes = [w.wait(timeout=WORKER_TIMEOUT_S) for w in workers]
    said = "\n".join((o / "worker.out").read_text()[-3000:] for o in outs)
    assert 0 in codes and set(codes) <= {0, 1}, said  # 1: ended while the other's rows were out
    status = _cli(["status", "--ledger", pg_url], env)
    assert "40 rows: 40 done" in status.stdout, status.stdout + status.stderr
    late = _cli(["worker", "--ledger", pg_url, "--out", str(tmp_path / "late")], env)
    assert late.returncode == 0, late.stderr  # the batch is done: it ends at once
    assert "0 row(s) worked on" in late.stdout and "stopped: every row done" in late.stdout
    as_json = json.loads(_cli(["status", "--ledger", pg_url, "--json"], env).stdout)
    assert as_json["rows"] == {"done": 40} and as_json["batch"] == "b"
    report = _cli(["report", str(tmp_path / "results"), "--ledger", pg_url], env)
    assert report.returncode == 0, report.stderr
    results = read_results(tmp_path / "results")
    stats = sim.stats()
    _check_every_row_once(results, stats, outs, 40)
    assert stats["renders_started"] == 40
    assert stats["requests"]["POST /v1/templates"] == 2  # one per account


@pytest.mark.timeout(400)
def test_workers_killed_again_and_again_render_every_row_once(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """200 rows, three workers, one SIGKILLed and restarted every few seconds: the others take
    its rows over when its leases expire; every row ends done (or ambiguous, when a kill fell
    between the render intent and the job id) and no render is ever sent twice."""
    rows = 200
    sim = make_sim("demo", time_scale=0.2, rate_limit_rps=None, max_concurrent_renders=10)
    env = sim.env()
    batch = write_batch(tmp_path, rows, config={"ledger": {"lease_s": LEASE_S}})
    _submit(batch, pg_url, env)
    outs = [tmp_path / f"w{i}" for i in range(3)]
    workers = [_worker(pg_url, out, batch["config"], env) for out in outs]
    rng = random.Random(16)
    kills = 0
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while workers[0].poll() is None and time.monotonic() < deadline:
        time.sleep(rng.uniform(*KILL_EVERY_S))
        if workers[0].poll() is not None:
            break
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        kills += 1
        workers[0] = _worker(pg_url, outs[0], batch["config"], env)
    codes = [w.wait(timeout=max(1.0, deadline - time.monotonic())) for w in workers]
    assert kills >= 2, "the batch finished before the kills could test anything"
    assert all(code in (0, 1) for code in codes), codes
    report = _cli(["report", str(tmp_path / "results"), "--ledger", pg_url], env)
    results = read_results(tmp_path / "results")
    _check_every_row_once(results, sim.stats(), outs, rows)
    ambiguous = sum(r["status"] == "ambiguous" for r in results)
    if ambiguous:  # a kill fell between a render intent and its job id: render those by choice
        again = _worker(pg_url, outs[0], batch["config"], env, extra=("--rerender-ambiguous",))
        assert again.wait(timeout=WORKER_TIMEOUT_S) == 0
        _cli(["report", str(tmp_path / "results"), "--ledger", pg_url], env)
        results = read_results(tmp_path / "results")
        assert {r["status"] for r in results} == {"done"}
        assert sim.stats()["duplicate_renders"] <= ambiguous
    status = _cli(["status", "--ledger", pg_url], env).stdout
    assert "were taken over from a stopped worker" in status, status
    print(status)
    stats = sim.stats()
    print(f"{kills} kills, {ambiguous} ambiguous; {report.stdout.strip()}")
    print(f"renders {stats['renders_started']}, duplicates {stats['duplicate_renders']}")


def test_a_worker_that_loses_its_database_stops_with_one_line(
    make_sim: Any, tmp_path: Path
) -> None:
    """PostgreSQL goes away mid-run for good (its own server here, stopped under the worker):
    the worker waits for it ``[ledger] max_outage_s``, then ends with exit 1 and one line naming
    the database, the setting and what happens to its rows, never a traceback. (A database that
    comes back in time: ``test_fault_workers.py``.)"""
    server = local_pg.start()
    try:
        url = server.create_database("lost")
        sim = make_sim("demo", time_scale=0.5, rate_limit_rps=None)
        env = sim.env()
        assert _cli(["migrate", "--ledger", url], env).returncode == 0
        ledger = {"lease_s": 3.0, "max_outage_s": 2.0}
        batch = write_batch(tmp_path, 20, config={"ledger": ledger})
        _submit(batch, url, env)
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "orchestrator", "worker"),
                *("--ledger", url, "--out", str(tmp_path / "w"), "--config", str(batch["config"])),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)  # rows claimed, previews and renders under way
        assert worker.poll() is None, "the batch ended before the database could go away"
    finally:
        server.stop()
    _, stderr = worker.communicate(timeout=WORKER_TIMEOUT_S)
    assert worker.returncode == 1, stderr
    assert "lost the shared ledger" in stderr and "Traceback" not in stderr, stderr
    (said,) = [line for line in stderr.splitlines() if line.startswith("orchestrator:")]
    assert "[ledger] max_outage_s" in said, stderr
