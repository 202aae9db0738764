"""Real ``orchestrator worker`` processes on one batch while PostgreSQL fails under them: the
server restarted mid-batch, every connection cut again and again, a worker frozen past its lease
and thawed. Each time every row ends (none lost), nothing is rendered twice (the simulator
counts every render), and the workers end by themselves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from e2e.helpers import read_results, write_batch

from .conftest import OwnServer
from .test_workers import WORKER_TIMEOUT_S, _check_every_row_once, _cli, _submit, _worker

pytestmark = pytest.mark.slow

ROWS = 60


@contextlib.contextmanager
def _cutting(url: str, *, seed: int, every_s: tuple[float, float]) -> Iterator[list[int]]:
    """Every other connection to ``url``'s database cut by the server
    (``pg_terminate_backend``) every ``every_s`` (uniform between the two), in a thread, while
    the ``with`` block runs; yields how many each round cut."""
    cuts: list[int] = []
    stop = threading.Event()

    def cut_again_and_again() -> None:
        rng = random.Random(seed)
        while not stop.wait(rng.uniform(*every_s)):
            cuts.append(
                _query(
                    url,
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
            )

    cutter = threading.Thread(target=cut_again_and_again)
    cutter.start()
    try:
        yield cuts
    finally:
        stop.set()
        cutter.join()


def _query(url: str, sql: str) -> Any:
    async def ask() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(ask())


def _wait_for_done(url: str, rows: int, workers: list[Any]) -> None:
    """Until ``rows`` rows are done (the batch is well under way), or a worker ended."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while _query(url, "SELECT count(*) FROM rows WHERE status = 'done'") < rows:
        assert all(w.poll() is None for w in workers), "a worker ended before the fault"
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.05)


def _finish(
    workers: list[Any], outs: list[Path], url: str, env: dict[str, str], tmp_path: Path, sim: Any
) -> list[dict[str, str]]:
    """Wait for the workers; check they ended by themselves, each with one line at most of
    trouble (no traceback, no lost database), and every row once, none rendered twice."""
    codes = [w.wait(timeout=WORKER_TIMEOUT_S) for w in workers]
    said = "\n".join((o / "worker.out").read_text()[-3000:] for o in outs)
    assert set(codes) <= {0, 1} and 0 in codes, said
    assert "Traceback" not in said and "lost the shared ledger" not in said, said
    report = _cli(["report", str(tmp_path / "results"), "--ledger", url], env)
    assert report.returncode == 0, report.stderr
    results = read_results(tmp_path / "results")
    _check_every_row_once(results, sim.stats(), outs, ROWS)
    return results


@pytest.mark.timeout(300)
def test_two_workers_carry_on_through_a_postgresql_restart(
    make_sim: Any, restartable: OwnServer, tmp_path: Path
) -> None:
    """PostgreSQL stopped (fast shutdown) under two working workers for longer than their lease,
    then started again: both wait for it, carry on and finish the batch; every row is done,
    none rendered twice, none taken from a live worker (a restart is not a takeover)."""
    url = restartable.create_database("restart_workers")
    sim = make_sim("demo", time_scale=0.2, rate_limit_rps=None, max_concurrent_renders=10)
    env = sim.env()
    assert _cli(["migrate", "--ledger", url], env).returncode == 0
    batch = write_batch(tmp_path, ROWS, config={"ledger": {"lease_s": 2.0}})
    _submit(batch, url, env)
    outs = [tmp_path / "w1", tmp_path / "w2"]
    workers = [_worker(url, out, batch["config"], env) for out in outs]
    _wait_for_done(url, 10, workers)
    restartable.down()
    time.sleep(2.5)  # longer than the lease: every claim ran out while the server was down
    restartable.up()
    results = _finish(workers, outs, url, env, tmp_path, sim)
    assert {r["status"] for r in results} == {"done"}
    taken = _query(url, "SELECT count(*) FROM rows WHERE taken_from IS NOT NULL")
    assert taken == 0, f"{taken} row(s) taken from a live worker after the restart"


@pytest.mark.timeout(300)
def test_connections_cut_again_and_again_lose_no_row(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """Every connection of the workers cut by the server (``pg_terminate_backend``) every few
    tenths of a second while two workers render the batch: statements cut mid-way are tried
    again, written once, and no row is lost, left leased, or rendered twice."""
    sim = make_sim("demo", time_scale=0.2, rate_limit_rps=None, max_concurrent_renders=10)
    env = sim.env()
    batch = write_batch(tmp_path, ROWS, config={"ledger": {"lease_s": 2.0}})
    _submit(batch, pg_url, env)
    outs = [tmp_path / "w1", tmp_path / "w2"]
    workers = [_worker(pg_url, out, batch["config"], env) for out in outs]
    with _cutting(pg_url, seed=26, every_s=(0.1, 0.5)) as cuts:
        results = _finish(workers, outs, pg_url, env, tmp_path, sim)
    assert sum(cuts) >= 10, cuts  # connections were cut while the workers worked
    assert {r["status"] for r in results} == {"done"}


@pytest.mark.timeout(300)
def test_report_reads_a_shared_batch_through_cut_connections(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """``report --ledger`` and ``status --ledger`` while the server cuts every connection every
    few hundredths of a second: their reads are tried again on a new connection, as a worker's
    statements are (they used to end in asyncpg's traceback), and results.csv holds every row,
    done."""
    rows = 20
    sim = make_sim("demo", time_scale=0.2, rate_limit_rps=None, max_concurrent_renders=10)
    env = sim.env()
    batch = write_batch(tmp_path, rows)
    _submit(batch, pg_url, env)
    worker = _worker(pg_url, tmp_path / "w1", batch["config"], env)
    assert worker.wait(timeout=WORKER_TIMEOUT_S) == 0
    with _cutting(pg_url, seed=31, every_s=(0.01, 0.04)) as cuts:
        for _ in range(3):
            report = _cli(["report", str(tmp_path / "results"), "--ledger", pg_url], env)
            assert report.returncode == 0, report.stderr
            assert "Traceback" not in report.stderr, report.stderr
            status = _cli(["status", "--ledger", pg_url, "--json"], env)
            assert status.returncode == 0, status.stderr
            assert json.loads(status.stdout)["rows_by_status"] == {"done": rows}
    assert sum(cuts) >= 1, cuts  # statements were cut while the reports read
    results = read_results(tmp_path / "results")
    assert len(results) == rows and {r["status"] for r in results} == {"done"}


@pytest.mark.timeout(300)
def test_forget_erases_shared_rows_through_cut_connections(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """``forget --ledger`` while the server cuts every connection every few hundredths of a
    second: the forget is tried again on a new connection (it used to end in asyncpg's
    traceback), and each row it names ends forgotten, its jobs cleaned at Pictory once or
    again, its results.csv written again."""
    rows = 12
    sim = make_sim("demo", time_scale=0.2, rate_limit_rps=None, max_concurrent_renders=10)
    env = sim.env()
    batch = write_batch(tmp_path, rows)
    _submit(batch, pg_url, env)
    out = tmp_path / "w1"
    worker = _worker(pg_url, out, batch["config"], env)
    assert worker.wait(timeout=WORKER_TIMEOUT_S) == 0
    shared = ["--ledger", pg_url, "--batch", "b", "--out", str(out)]
    assert _cli(["report", str(out), *shared[:4]], env).returncode == 0
    chosen = [f"row-{n:03d}" for n in (1, 4, 7)]
    with _cutting(pg_url, seed=37, every_s=(0.01, 0.04)) as cuts:
        for row in chosen:
            forgot = _cli(["forget", *shared, row], env)
            assert forgot.returncode == 0, forgot.stderr
            assert "Traceback" not in forgot.stderr, forgot.stderr
            said = forgot.stdout
            assert f"forgot row {row}" in said or f"row {row} was forgotten before" in said, said
    assert sum(cuts) >= 1, cuts  # statements were cut while the forgets ran
    values = _query(
        pg_url,
        "SELECT json_agg(variables ORDER BY row_key) FROM rows WHERE row_key = ANY("
        + "ARRAY["
        + ", ".join(f"'{row}'" for row in chosen)
        + "])",
    )
    for variables in json.loads(values):
        assert {v.startswith("[forgotten ") for v in variables.values()} == {True}, variables
    results = {r["id"]: r for r in read_results(out)}
    assert {results[row]["name"].startswith("[forgotten ") for row in chosen} == {True}


@pytest.mark.timeout(300)
def test_a_worker_frozen_past_its_lease_and_thawed_renders_nothing_twice(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """One of two workers frozen (SIGSTOP) for 2.5 leases mid-batch, then thawed (SIGCONT): the
    other takes its rows over; the thawed one can record nothing for them (its writes are fenced
    by owner and claim), so it sends no render for a row it lost, and every row ends once.
    (Found by hand with a 6 s lease and 15 s frozen; here 1.5 s and 3.75 s.)"""
    lease_s = 1.5
    sim = make_sim("demo", time_scale=0.2, rate_limit_rps=None, max_concurrent_renders=10)
    env = sim.env()
    batch = write_batch(tmp_path, ROWS, config={"ledger": {"lease_s": lease_s}})
    _submit(batch, pg_url, env)
    outs = [tmp_path / "frozen", tmp_path / "other"]
    workers = [_worker(pg_url, out, batch["config"], env) for out in outs]
    _wait_for_done(pg_url, 5, workers)
    workers[0].send_signal(signal.SIGSTOP)
    time.sleep(2.5 * lease_s)
    workers[0].send_signal(signal.SIGCONT)
    results = _finish(workers, outs, pg_url, env, tmp_path, sim)
    taken = _query(pg_url, "SELECT count(*) FROM rows WHERE taken_from IS NOT NULL")
    assert taken >= 1  # the other worker took rows of the frozen one
    fenced = [
        json.loads(line)
        for line in (outs[0] / "log.jsonl").read_text().splitlines()
        if '"lease_lost"' in line
    ]
    assert fenced, "the thawed worker never met a row it had lost"
    assert {r["status"] for r in results} <= {"done", "ambiguous"}
