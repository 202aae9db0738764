"""VirtualClock: time moves only when every task is blocked, straight to the earliest deadline."""

from __future__ import annotations

import datetime as dt
import time

import anyio
import anyio.lowlevel
import pytest

from orchestrator.clock import Clock, RealClock, VirtualClock, local_time


async def test_sleep_advances_now_exactly() -> None:
    """now() equals the sleeper's deadline exactly after it wakes, starting from start_s."""
    clock = VirtualClock(start_s=100.0)
    assert clock.now() == 100.0
    await clock.sleep(1.5)
    assert clock.now() == 101.5
    await clock.sleep(0.25)
    assert clock.now() == 101.75


@pytest.mark.parametrize("seconds", [0.0, -3.0, float("nan")])
async def test_non_positive_sleep_is_a_checkpoint_without_moving_time(seconds: float) -> None:
    """sleep(0), a negative or a NaN delay yields to other tasks but leaves now() alone."""
    clock = VirtualClock()
    await clock.sleep(seconds)
    assert clock.now() == 0.0


async def test_concurrent_sleepers_wake_in_deadline_order() -> None:
    """Sleepers started together wake in deadline order, each seeing now() == its deadline."""
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async with anyio.create_task_group() as tg:
        for name, seconds in [("c", 3.0), ("a", 1.0), ("b", 2.0), ("a2", 1.0)]:
            tg.start_soon(sleeper, name, seconds)
    assert woke == [("a", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0)]


async def test_time_stands_still_while_any_task_can_run() -> None:
    """A task busy with checkpoints holds time still: the sleeper wakes only after it blocks."""
    clock = VirtualClock()
    seen: list[float] = []

    async def busy() -> None:
        for _ in range(200):
            await anyio.lowlevel.checkpoint()
            seen.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.sleep, 1.0)
        tg.start_soon(busy)
    assert set(seen) == {0.0}
    assert clock.now() == 1.0


async def test_a_task_woken_by_an_event_sleeps_before_time_jumps_past_it() -> None:
    """A chain sleeper → event → new short sleep is honoured before a later deadline fires."""
    clock = VirtualClock()
    done = anyio.Event()
    woke: list[tuple[str, float]] = []

    async def setter() -> None:
        await clock.sleep(1.0)
        done.set()

    async def follower() -> None:
        await done.wait()
        await clock.sleep(0.5)
        woke.append(("follower", clock.now()))

    async def late() -> None:
        await clock.sleep(1.6)
        woke.append(("late", clock.now()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(setter)
        tg.start_soon(follower)
        tg.start_soon(late)
    assert woke == [("follower", 1.5), ("late", 1.6)]


async def test_tasks_queued_on_a_lock_count_as_blocked() -> None:
    """Tasks waiting on a lock held by a sleeper do not stop time; they run in turn."""
    clock = VirtualClock()
    lock = anyio.Lock()
    entered: list[float] = []

    async def user() -> None:
        async with lock:
            entered.append(clock.now())
            await clock.sleep(1.0)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(user)
    assert entered == [0.0, 1.0, 2.0]


async def test_cancelled_sleeper_leaves_no_trace() -> None:
    """A sleeper cancelled early neither wakes later nor drags now() to its deadline."""
    clock = VirtualClock()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await clock.sleep(50.0)
    assert clock.pending_sleepers == 0

    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.sleep, 100.0)
        await clock.sleep(1.0)
        tg.cancel_scope.cancel()
    await clock.sleep(2.0)
    assert clock.now() == 3.0
    assert clock.pending_sleepers == 0


async def test_infinite_sleep_waits_for_cancellation_without_moving_time() -> None:
    """sleep(inf) never wakes by time and does not drag now() to infinity."""
    clock = VirtualClock()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.sleep, float("inf"))
        await clock.sleep(2.0)
        tg.cancel_scope.cancel()
    assert clock.now() == 2.0


async def test_two_virtual_clocks_on_one_loop_do_not_stall_each_other() -> None:
    """Each clock's driver ignores the other's, so both timelines advance."""
    first, second = VirtualClock(), VirtualClock(start_s=10.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.sleep, 5.0)
        tg.start_soon(second.sleep, 7.0)
    assert (first.now(), second.now()) == (5.0, 17.0)


async def test_hours_of_virtual_time_take_no_real_time() -> None:
    """Ten thousand virtual seconds across many sleepers pass in well under a real second."""
    clock = VirtualClock()

    async def ticker(step_s: float) -> None:
        while clock.now() < 10_000:
            await clock.sleep(step_s)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for step_s in (7.0, 11.0, 13.0, 50.0):
            tg.start_soon(ticker, step_s)
    assert clock.now() >= 10_000
    assert time.perf_counter() - started < 1.0


async def test_real_clock_is_monotonic_and_tolerates_negative_sleeps() -> None:
    """RealClock reads the monotonic clock; a negative sleep returns at once."""
    clock: Clock = RealClock()
    before = clock.now()
    await clock.sleep(-1.0)
    await clock.sleep(0.001)
    assert clock.now() > before


async def test_virtual_wall_time_starts_where_told_and_moves_with_virtual_time() -> None:
    """``wall_s``/``local_time`` start at ``wall_start`` and advance exactly as ``now`` does, so
    code reading the calendar (the overnight window, log timestamps) runs on virtual time too."""
    start = dt.datetime(2026, 11, 28, 21, 30)
    clock = VirtualClock(5.0, wall_start=start)
    assert local_time(clock) == start
    await clock.sleep(1800)
    assert clock.now() == 1805.0
    assert local_time(clock) == dt.datetime(2026, 11, 28, 22, 0)
    assert clock.wall_s() == start.timestamp() + 1800
