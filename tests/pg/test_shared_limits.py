"""Every limit of an account held across all the workers using it, through the database: its
requests per second and per minute (turns spaced under the account's learned guard) and its
renders at once (leased slots that a dead worker gives back)."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
from pathlib import Path
from typing import IO

import anyio
import asyncpg
import pytest
from e2e.helpers import config_toml, read_results

from orchestrator.api.limits import MINUTE_S, SECOND_S, RateLimiter, spacing_s
from orchestrator.api.window_guard import GUARD_STEPS_S, SHARED_FIRST_GUARD_S
from orchestrator.clock import VirtualClock
from orchestrator.ledger.pg.limits import PgSharedRate, PgSharedRenders
from orchestrator.simulator.auth import RateLimiter as SimRateLimiter
from orchestrator.simulator.jobs import JobKind
from orchestrator.simulator.process import cli_env
from orchestrator.simulator.server import RunningSimulator, running_simulator
from orchestrator.simulator.settings import SimSettings

from .conftest import submit_small

R = 20.0
PER_MINUTE = 30
C = 2
WORKER_TIMEOUT_S = 45.0


class Recording(PgSharedRate):
    """The account's turns as the server would see their requests arrive: at each turn."""

    seen: list[float]

    async def take(self) -> float:
        turn = await super().take()
        self.seen.append(turn)
        return turn


def _limiters(pool: asyncpg.Pool, n: int, **limits: float) -> list[tuple[RateLimiter, Recording]]:
    clock = VirtualClock()  # the turns are the database's schedule: nobody waits for them here
    seen: list[float] = []
    made = []
    for _ in range(n):
        shared = Recording(pool, "acct", clock, **limits)
        shared.seen = seen
        limiter = RateLimiter(clock, max_rps=limits["max_rps"], shared=shared)
        made.append((limiter, shared))
    return made


async def test_three_workers_turns_never_meet_the_accounts_second_or_minute_limit(
    pool: asyncpg.Pool,
) -> None:
    """Three limiters on one account limited at R per second and 30 per minute take their turns
    at once: counted as the simulator counts requests (fixed windows), none is refused, and the
    per-minute limit (the tighter) spaces the turns."""
    workers = _limiters(pool, 3, max_rps=R, max_per_minute=PER_MINUTE)

    async def work(limiter: RateLimiter) -> None:
        for _ in range(12):
            await limiter.acquire()

    async with asyncio.TaskGroup() as tg:
        for limiter, _ in workers:
            tg.create_task(work(limiter))
    turns = sorted(workers[0][1].seen)
    assert len(turns) == 36
    server = SimRateLimiter(R, PER_MINUTE)
    assert [server.retry_after_s("acct", t) for t in turns] == [None] * 36
    gaps = [b - a for a, b in itertools.pairwise(turns)]
    assert min(gaps) >= MINUTE_S / PER_MINUTE - 1e-6  # the minute's spacing, not the second's


async def test_a_429_widens_the_accounts_guard_once_for_every_worker(pool: asyncpg.Pool) -> None:
    """The account's guard starts at the shared first step (10 ms); 429s heard by two workers in
    one burst widen it one step (30 ms) for both, and the turns are spaced under it; a later
    429 widens it to the full guard (50 ms)."""
    (a, shared_a), (b, shared_b) = _limiters(pool, 2, max_rps=R)
    await a.acquire()
    await b.acquire()
    assert shared_a.guard_s == shared_b.guard_s == SHARED_FIRST_GUARD_S
    a.on_rate_limited(1.0)
    b.on_rate_limited(1.0)  # the same burst, heard by the other worker
    await a.acquire()
    await b.acquire()
    assert shared_a.guard_s == shared_b.guard_s == GUARD_STEPS_S[1]
    first, second = sorted(shared_a.seen)[-2:]
    assert second - first >= spacing_s(R, SECOND_S, GUARD_STEPS_S[1]) - 1e-6
    b.on_rate_limited(1.0)
    await b.acquire()
    await a.acquire()
    assert shared_a.guard_s == 0.05  # the limiter's window_guard_s


@pytest.mark.parametrize("max_rps", [0.5, 1.0, 2.5, 20.0])
@pytest.mark.parametrize("max_per_minute", [None, 0.5, 30.0, 1000.0])
async def test_the_accounts_spacing_is_one_limiters(
    pool: asyncpg.Pool, max_rps: float, max_per_minute: float | None
) -> None:
    """The database spaces an account's turns by the limiter's rule (``spacing_s``, the larger
    of the second's and the minute's) under the account's guard."""
    for guard_s in (0.001, 0.05):
        shared = PgSharedRate(
            pool, f"acct-{guard_s}", VirtualClock(), max_rps=max_rps, max_per_minute=max_per_minute
        )
        shared.widen(guard_s)
        expected = spacing_s(max_rps, SECOND_S, guard_s)
        if max_per_minute is not None:
            expected = max(expected, spacing_s(max_per_minute, MINUTE_S, guard_s))
        first, second = await shared.take(), await shared.take()
        assert second - first == pytest.approx(expected, abs=1e-5)
        assert shared.spacing_s(guard_s) == pytest.approx(expected, rel=1e-12)


# ---- workers as processes, as users run them ---------------------------------------------------


def _renders_at_once(sim: RunningSimulator) -> int:
    """The most renders the simulator held at once for one account: running or queued, from
    each render's request to its end (what our render slots must keep at C)."""
    renders = [j for j in sim.simulator.jobs if j.kind is JobKind.RENDER]
    return max(
        (
            sum(
                1
                for o in renders
                if o.account == r.account and o.created_at <= r.created_at < o.end_at
            )
            for r in renders
        ),
        default=0,
    )


async def _worker(url: str, out: Path, config: Path, base_url: str) -> asyncio.subprocess.Process:
    env = cli_env(base_url, account="shared")  # every worker on the one account
    said = _output(out)
    try:
        return await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "orchestrator", "worker"),
            *("--ledger", url, "--out", str(out), "--config", str(config)),
            env=env,
            stdout=said,
            stderr=asyncio.subprocess.STDOUT,
        )
    finally:
        said.close()


def _output(out: Path) -> IO[bytes]:
    """Where a worker's output goes (for a failure's message)."""
    out.mkdir(parents=True, exist_ok=True)
    return (out / "worker.out").open("ab")


def _config(folder: Path, lease_s: float, rows_in_flight: int = 8) -> Path:
    path = folder / "worker.toml"
    path.write_text(
        config_toml(
            {
                "limits": {
                    "max_requests_per_s": 50.0,
                    "max_requests_per_minute": 6000.0,
                    "max_renders_in_flight": C,
                    "max_rows_in_flight": rows_in_flight,
                },
                "ledger": {"lease_s": lease_s},
            }
        )
    )
    path.chmod(0o600)
    return path


def _said(outs: list[Path]) -> str:
    return "\n".join((o / "worker.out").read_text()[-2000:] for o in outs if o.exists())


@pytest.mark.slow
async def test_three_workers_on_one_account_never_hold_more_than_its_renders(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """Three ``orchestrator worker`` processes on one account whose cap is C = 2, each
    configured for C: the simulator never holds more than C of the account's renders at once,
    answers no 429, and every row is rendered once."""
    rows = 18
    await submit_small(pool, tmp_path, rows)
    settings = SimSettings.for_profile(
        "test", max_concurrent_renders=C, render_s=0.15, jitter_frac=0.0, rate_limit_rps=50.0
    )
    async with running_simulator(settings) as sim:
        config = _config(tmp_path, lease_s=5.0)
        outs = [tmp_path / f"w{i}" for i in range(3)]
        workers = [await _worker(pg_url, o, config, sim.base_url) for o in outs]
        codes = [await asyncio.wait_for(w.wait(), WORKER_TIMEOUT_S) for w in workers]
        assert set(codes) <= {0, 1} and 0 in codes, _said(outs)
        stats = sim.stats()
        assert stats["renders_started"] == rows and stats["duplicate_renders"] == 0
        assert stats["rate_limited"] == 0
        assert _renders_at_once(sim) == C  # the cap was reached, never passed


@pytest.mark.slow
async def test_a_dead_workers_render_slots_pass_to_its_rows_and_come_back(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """A worker SIGKILLed just after it sent a render (renders of 1.5 s, a lease of 1 s), another
    worker's rows waiting for a slot: the slots are not free when the dead
    worker's leases expire (its renders go on at Pictory) but once its renders must be over, so
    the simulator never holds more than C of the account's renders; the other worker then takes
    the dead worker's rows over and finishes the batch, and every slot is given back."""
    rows = 12
    await submit_small(pool, tmp_path, rows)
    settings = SimSettings.for_profile(
        "test", max_concurrent_renders=C, render_s=1.5, jitter_frac=0.0
    )
    async with running_simulator(settings) as sim:
        config = _config(tmp_path, lease_s=1.0, rows_in_flight=4)
        outs = [tmp_path / "dead", tmp_path / "alive"]
        dead = await _worker(pg_url, outs[0], config, sim.base_url)
        alive = await _worker(pg_url, outs[1], config, sim.base_url)
        await _until(
            pool, "SELECT count(DISTINCT owner) FROM rows WHERE owner IS NOT NULL", 2, outs
        )
        await _until(pool, "SELECT count(*) FROM rows WHERE status = 'done'", C, outs)
        fresh = (  # a render the first worker just sent: it goes on after its lease
            "SELECT count(*) FROM render_slots WHERE owner LIKE $1 "
            "AND taken_at > clock_timestamp() - interval '0.2 seconds'"
        )
        await _until(pool, fresh, 1, outs, f"%:{dead.pid}:%")
        dead.send_signal(signal.SIGKILL)
        await dead.wait()
        code = await asyncio.wait_for(alive.wait(), WORKER_TIMEOUT_S)
        # The kill may land between a row's render intent and its job id (the dead worker holds
        # up to 4 rows): that row is ambiguous, never rendered again (exit 1), as it should be.
        statuses = [r["status"] for r in read_results(outs[1])]
        ambiguous = statuses.count("ambiguous")
        assert code == (1 if ambiguous else 0), _said(outs)
        assert statuses.count("done") + ambiguous == rows, _said(outs)
        assert await pool.fetchval("SELECT count(*) FROM render_slots WHERE owner IS NOT NULL") == 0
        assert sim.stats()["duplicate_renders"] == 0
        assert _renders_at_once(sim) == C


async def _until(
    pool: asyncpg.Pool, query: str, value: int, outs: list[Path], *args: object
) -> None:
    """Wait until ``query`` counts at least ``value``."""
    for _ in range(1000):
        if await pool.fetchval(query, *args) >= value:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"never {query} >= {value}:\n{_said(outs)}")


async def _two_rows(pool: asyncpg.Pool, tmp_path: Path) -> tuple[int, str, str]:
    await submit_small(pool, tmp_path, 2)
    found = await pool.fetch("SELECT batch_id, row_key FROM rows ORDER BY line")
    return found[0]["batch_id"], found[0]["row_key"], found[1]["row_key"]


async def test_a_dead_workers_slot_is_its_rows_until_the_render_must_be_over(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A slot whose worker died (lease over) while its row's render went on at Pictory: not
    free for another row, but taken at once by the worker that took the row over; once given
    back, anyone's."""
    batch, row, other = await _two_rows(pool, tmp_path)
    clock = VirtualClock()

    def worker(name: str, lease_s: float) -> PgSharedRenders:
        return PgSharedRenders(
            pool, "acct", name, clock, max_renders=1, lease_s=lease_s, batch_id=batch
        )

    dead, alive = worker("dead", 0.1), worker("alive", 30.0)
    dead.longest_hold_s = 30.0  # its renders take this long: the one it sent goes on
    assert await dead.take(row) == 0
    await anyio.sleep(0.2)  # the database's clock decides leases: a real (short) wait
    assert await alive.take(other) is None  # the dead worker's render is still running
    assert await alive.take(row) == 0  # the row taken over: its slot with it
    await alive.give_back()
    assert await worker("third", 30.0).take(other) == 0


async def test_a_dead_workers_slot_comes_free_when_its_row_ends_or_its_render_must_be_over(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Nobody takes the dead worker's row over: its slot comes free once the row is no longer
    pending, or once a render's time has passed since it was taken (the longest the dead
    worker or the waiting worker had seen a render take, each at least its lease)."""
    batch, row, other = await _two_rows(pool, tmp_path)
    clock = VirtualClock()

    def worker(name: str, lease_s: float) -> PgSharedRenders:
        return PgSharedRenders(
            pool, "acct", name, clock, max_renders=1, lease_s=lease_s, batch_id=batch
        )

    dead, alive = worker("dead", 0.1), worker("alive", 30.0)
    dead.longest_hold_s = 30.0
    assert await dead.take(row) == 0
    await anyio.sleep(0.2)
    assert await alive.take(other) is None
    await pool.execute("UPDATE rows SET status = 'failed' WHERE row_key = $1", row)
    assert await alive.take(other) == 0  # the row ended: its render is not ours to wait for
    await pool.execute("UPDATE rows SET status = 'pending' WHERE row_key = $1", row)
    await alive.give_back()

    quick = worker("quick", 0.1)  # renders it saw took no longer than its lease
    assert await quick.take(row) == 0
    await anyio.sleep(0.3)  # past its lease and its render's time
    assert await worker("next", 0.1).take(other) == 0  # its own expectation: its lease
