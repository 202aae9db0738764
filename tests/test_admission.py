"""Admission: halt policy, spend cap and the overnight window, on virtual time."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

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


NEW_YORK = "America/New_York"


def test_a_window_counts_real_seconds_across_the_spring_forward_night() -> None:
    """2026-03-08 in New York loses an hour at 02:00: a 22:00-06:00 window entered at 23:00 on
    the 7th closes 6 real hours later, not 7, and --until 03:30 from 01:00 is 1.5 h away."""
    zone = ZoneInfo(NEW_YORK)
    eleven_pm = dt.datetime(2026, 3, 7, 23, 0, tzinfo=zone)
    window = Window.parse("22:00-06:00", zone=NEW_YORK)
    clock = VirtualClock(wall_start=eleven_pm.timestamp())
    assert window.now(clock) == eleven_pm
    assert window.seconds_left(window.now(clock)) == pytest.approx(6 * 3600)
    until = Window.parse("03:30", option="--until", zone=NEW_YORK)
    one_am = VirtualClock(wall_start=dt.datetime(2026, 3, 8, 1, 0, tzinfo=zone).timestamp())
    assert until.seconds_left(until.now(one_am)) == pytest.approx(1.5 * 3600)


def test_workers_in_other_zones_agree_on_a_recorded_zone() -> None:
    """The same instant read by a worker whose machine is in Tokyo or in Paris gives the same
    seconds to the window's end: the window's own zone is used, never the machine's."""
    instant = dt.datetime(2026, 3, 8, 4, 0, tzinfo=dt.UTC).timestamp()  # 23:00 in New York
    window = Window.parse("22:00-06:00", zone=NEW_YORK)
    answers = []
    for machine_zone in ("Asia/Tokyo", "Europe/Paris"):
        with _machine_zone(machine_zone):
            clock = VirtualClock(wall_start=instant)
            answers.append(window.seconds_left(window.now(clock)))
    assert answers == [pytest.approx(6 * 3600)] * 2


def test_an_unknown_time_zone_is_refused_by_name() -> None:
    """--time-zone Mars/Olympus: a one-line error that names the option and the zone."""
    with pytest.raises(UserError, match=r"--window: 'Mars/Olympus' is not an IANA time zone"):
        Window.parse("22:00-06:00", zone="Mars/Olympus")


@contextlib.contextmanager
def _machine_zone(name: str) -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()
