"""What the operator reads while a batch runs: the request rate actually sent beside the
limiter's ceiling, and an ETA that says "draining" or "halted" instead of a number when that is
the truth, computed from the rows that finished recently."""

from __future__ import annotations

import pytest

from orchestrator.clock import VirtualClock
from orchestrator.report.console import Tally


def test_the_rate_shown_is_the_measured_one_with_the_limit_beside_it() -> None:
    tally = Tally()
    tally.consume("rate", {"rps": 1.1, "limit_rps": 5.0, "rate_limited": 0, "requests": 40})
    assert "1.1 req/s (limit 5.0)" in tally.line()


@pytest.mark.parametrize(
    ("reason", "shown"),
    [("halt policy: 3 failed rows", "halted"), ("spend cap: 5 renders sent", "draining")],
)
def test_after_the_run_stops_admitting_the_eta_says_so(reason: str, shown: str) -> None:
    tally = Tally()
    tally.consume("run_started", {"rows": 10})
    for i in range(3):
        tally.consume("row_done", {"row": f"r{i}"})
    tally.consume("stop_admitting", {"reason": reason})
    assert tally.eta_s() is None
    assert tally.eta_text().startswith(shown)
    assert shown in tally.line()


async def test_the_eta_follows_recent_rows_not_the_whole_run() -> None:
    """Two rows an hour ago, then 50 rows a second: the ETA is seconds, not hours."""
    clock = VirtualClock()
    tally = Tally(clock)
    tally.consume("run_started", {"rows": 200})
    for i in range(2):
        tally.consume("row_done", {"row": f"slow{i}"})
    await clock.sleep(3600)
    for i in range(50):
        await clock.sleep(0.02)
        tally.consume("row_done", {"row": f"fast{i}"})
    eta = tally.eta_s()
    assert eta is not None and eta < 10


async def test_when_rows_stop_finishing_the_eta_says_so() -> None:
    """Rows finished a second apart, then none for two minutes: no "eta 2 s", but what is
    true: slow rows are being waited for."""
    clock = VirtualClock()
    tally = Tally(clock)
    tally.consume("run_started", {"rows": 10})
    for i in range(5):
        await clock.sleep(1.0)
        tally.consume("row_done", {"row": f"r{i}"})
    tally.consume("stage", {"row": "r9", "stage": "render"})
    assert tally.eta_text().startswith("eta ")
    await clock.sleep(120)
    assert tally.eta_text() == (
        "waiting for 1 slow row(s): none finished for 2m00s (a stuck job waits out its deadline)"
    )


def test_the_live_panel_says_stopping_once() -> None:
    """On a terminal the panel shows "stopping: …" in place; it is not printed as a line too
    (a Ctrl-C used to show it twice)."""
    import io

    from orchestrator.report.console import LiveSink

    stream = io.StringIO()
    sink = LiveSink(secrets=[], stream=stream)
    sink.emit("stop_admitting", reason="SIGINT: finishing the rows in flight")
    sink.close()
    assert stream.getvalue().count("stopping: SIGINT") == 1
