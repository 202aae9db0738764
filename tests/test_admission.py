"""Admission: halt policy, spend cap and the overnight window, on virtual time."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from orchestrator.clock import VirtualClock, local_time
from orchestrator.errors import UserError
from orchestrator.events import ListSink
from orchestrator.run.admission import Admission, HaltPolicy, Window


def test_halt_after_count_and_percent() -> None:
    """N failed rows, or P% of finished rows once enough have finished, trips the halt."""
    assert HaltPolicy.parse("3").tripped(finished=3, failed=3)
    assert not HaltPolicy.parse("3").tripped(finished=10, failed=2)
    pct = HaltPolicy.parse("10%")
    assert not pct.tripped(finished=5, failed=5)  # too few finished rows to judge
    assert pct.tripped(finished=20, failed=2)
    assert not pct.tripped(finished=20, failed=1)


@pytest.mark.parametrize("bad", ["0", "-2", "abc", "150%", "0%"])
def test_halt_after_rejects_nonsense(bad: str) -> None:
    """A halt value that is not a count or a share is a usage error saying what to write."""
    with pytest.raises(UserError, match="--halt-after"):
        HaltPolicy.parse(bad)


def test_window_parsing_and_midnight() -> None:
    """A window crossing midnight is open late at night and closed at noon."""
    window = Window.parse("22:00-06:30")
    night = dt.datetime(2026, 11, 28, 23, 0)
    noon = dt.datetime(2026, 11, 28, 12, 0)
    assert window.seconds_until_open(night) == 0
    assert window.seconds_left(night) == 7.5 * 3600
    assert window.seconds_until_open(noon) == 10 * 3600
    with pytest.raises(UserError, match="HH:MM"):
        Window.parse("25:00-01:00")
    with pytest.raises(UserError, match="HH:MM"):
        Window.parse("22:00:60-01:00")
    assert Window.parse("22:00:30-06:30:05").end == dt.time(6, 30, 5)
    with pytest.raises(UserError, match="HH:MM-HH:MM"):
        Window.parse("22:00")


async def test_spend_cap_counts_renders_and_stops() -> None:
    """--max-renders N allows N renders, then refuses and stops admitting rows."""
    sink = ListSink()
    admission = Admission(VirtualClock(), sink, max_renders=2)
    assert admission.take_render("a") and admission.take_render("b")
    assert not admission.take_render("c")
    assert admission.stop_reason is not None and "spend cap" in admission.stop_reason
    assert not await admission.admit()
    assert sink.kinds().count("stop_admitting") == 1


async def test_spend_cap_reserves_renders_in_order_and_passes_unused_ones_on() -> None:
    """Two renders: rows a and b reserve them; c waits; b ends without rendering (its preview
    failed), so c gets b's render; once a and c have rendered, d is refused: the cap is spent."""
    admission = Admission(VirtualClock(), ListSink(), max_renders=2)
    assert await admission.reserve_render("a") and await admission.reserve_render("b")
    waiting = asyncio.ensure_future(admission.reserve_render("c"))
    await asyncio.sleep(0)
    assert not waiting.done()
    admission.row_left("b")
    assert await waiting
    assert admission.take_render("a") and admission.take_render("c")
    admission.row_left("a")
    admission.row_left("c")
    assert not await admission.reserve_render("d")
    assert admission.renders_sent == 2 and "spend cap" in (admission.stop_reason or "")


async def test_window_waits_until_open_on_virtual_time() -> None:
    """Started before the window, admission sleeps (virtually) until it opens."""
    clock = VirtualClock(wall_start=dt.datetime(2026, 11, 28, 21, 0))
    admission = Admission(clock, ListSink(), window=Window.parse("22:00-06:00"), assumed_row_s=60)
    assert await admission.admit()
    assert clock.now() == pytest.approx(3600)
    assert local_time(clock) == dt.datetime(2026, 11, 28, 22, 0)


async def test_no_row_starts_that_cannot_finish_before_the_window_ends() -> None:
    """Near the end of the window, rows longer than the time left are not started."""
    admission = Admission(
        VirtualClock(wall_start=dt.datetime(2026, 11, 28, 5, 50)),
        ListSink(),
        window=Window.parse("06:00", option="--until"),
        assumed_row_s=300,
    )
    assert await admission.admit()  # 10 min left, a row takes 5
    for _ in range(5):
        admission.row_finished("done", 900.0)  # observed: rows take 15 min
    assert not await admission.admit()
    assert admission.stop_reason is not None and "window closes" in admission.stop_reason
