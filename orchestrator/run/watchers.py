"""What runs beside a batch's rows until they are settled: signals (drain, then stop), the
end of the run window, the network watch and the request-rate report. Each is a task of
``run.pool.work_rows``'s control task group; ``stop`` stops admitting rows, ``rows_scope``
cancels the rows in flight (each resumes where the ledger left it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio

from orchestrator.api.client import PictoryClient
from orchestrator.clock import Clock
from orchestrator.config import Config
from orchestrator.events import Sink, human_duration
from orchestrator.run.admission import NetworkWatch, Window

RATE_REPORT_INTERVAL_S = 2.0
DRAIN_TICK_S = 1.0
"""How often a draining run says what it waits for (the console's countdown)."""
NETWORK_CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Drain:
    """How a first Ctrl-C drains: for at most ``limit_s``, counting down on ``clock``, while
    ``in_flight()`` rows finish."""

    clock: Clock
    limit_s: float
    in_flight: Callable[[], int]


async def watch_signals(
    stop: Callable[[str], None],
    rows_scope: anyio.CancelScope,
    sink: Sink,
    interrupted: Callable[[str], None],
    drain: Drain,
) -> None:
    """First SIGINT/SIGTERM: stop admitting and drain, counting down to ``drain.limit_s``, when
    the rows still in flight are stopped where they are. Second: stop them at once.
    ``interrupted`` is called with the signal's name on each signal (the run's exit code
    becomes 130). A run in another thread (``Batch.run_sync`` called from one) watches none:
    Python delivers signals to the main thread only, whose own code handles them."""
    if threading.current_thread() is not threading.main_thread():
        return
    async with anyio.create_task_group() as tg:
        with receive_signals(signal.SIGINT, signal.SIGTERM) as signals:
            count = 0
            async for signum in signals:
                count += 1
                name = signal.Signals(signum).name
                interrupted(name)
                if count == 1:
                    sink.emit("interrupt", signal=name, action="draining")
                    stop(
                        f"{name}: finishing the rows in flight (at most "
                        f"{human_duration(drain.limit_s)}); Ctrl-C again stops them now, and "
                        "every row resumes from the ledger"
                    )
                    tg.start_soon(count_down, drain, rows_scope, sink)
                else:
                    sink.emit("interrupt", signal=name, action="stopping now")
                    rows_scope.cancel()
                    tg.cancel_scope.cancel()
                    return


@contextlib.contextmanager
def receive_signals(*signums: signal.Signals) -> Iterator[AsyncIterator[int]]:
    """anyio's signal receiver where the event loop watches signals (POSIX), else (asyncio on
    Windows raises ``NotImplementedError``) ``python_signal_receiver``."""
    with contextlib.ExitStack() as stack:
        try:
            signals: AsyncIterator[int] = stack.enter_context(anyio.open_signal_receiver(*signums))
        except NotImplementedError:
            signals = stack.enter_context(python_signal_receiver(*signums))
        yield signals


@contextlib.contextmanager
def python_signal_receiver(*signums: signal.Signals) -> Iterator[AsyncIterator[int]]:
    """The signals through Python's own handlers, for an event loop that cannot watch them
    (Windows, where a Ctrl-C would otherwise cancel the whole run at once): each handler hands
    its signal to the (asyncio) loop, to be read as anyio's receiver is read, so a first Ctrl-C
    drains and a second stops there too. The previous handlers are put back on the way out."""
    loop = asyncio.get_running_loop()
    send, receive = anyio.create_memory_object_stream[int](math.inf)

    def deliver(signum: int) -> None:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            send.send_nowait(signum)

    def handler(signum: int, _frame: object) -> None:
        loop.call_soon_threadsafe(deliver, signum)

    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield receive
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)
        send.close()
        receive.close()


async def count_down(drain: Drain, rows_scope: anyio.CancelScope, sink: Sink) -> None:
    """Say every ``DRAIN_TICK_S`` how many rows the drain waits for and how long it may still
    wait (``draining``); at ``drain.limit_s``, stop them (``drain_limit``)."""
    deadline = drain.clock.now() + drain.limit_s
    while (left_s := deadline - drain.clock.now()) > 0:
        sink.emit("draining", rows=drain.in_flight(), left_s=round(left_s))
        await drain.clock.sleep(min(DRAIN_TICK_S, left_s))
    sink.emit("drain_limit", rows=drain.in_flight(), limit_s=drain.limit_s)
    rows_scope.cancel()


async def close_at_window_end(
    window: Window, clock: Clock, rows_scope: anyio.CancelScope, sink: Sink
) -> None:
    """With ``--at-window-end stop``: when the window closes, leave in-flight rows for resume."""
    await clock.sleep(window.seconds_left(window.now(clock)))
    sink.emit("window_closed", action="leaving in-flight rows for the next resume")
    rows_scope.cancel()


async def watch_network(
    client: PictoryClient,
    network: NetworkWatch,
    stop: Callable[[str], None],
    rows_scope: anyio.CancelScope,
    clock: Clock,
    config: Config,
) -> None:
    """Once a second: has the API answered anything? When requests keep failing to get through
    and nothing answers for ``network_dead_after_s``, stop admitting and stop the rows in flight
    (nothing reached the API, so each resumes where the ledger left it)."""
    answers = client.answers_received
    while True:
        await clock.sleep(NETWORK_CHECK_INTERVAL_S)
        if client.answers_received != answers:
            answers = client.answers_received
            network.answered()
        elif network.dead():
            host = urlsplit(config.api.base_url).netloc or config.api.base_url
            stop(
                f"network: no answer from {host} for {network.dead_after_s:.0f} s (DNS or "
                "connection failures); check the connection, then run the same command again"
            )
            rows_scope.cancel()
            return


async def report_rate(client: PictoryClient, sink: Sink, clock: Clock) -> None:
    """Every few seconds: the request rate actually sent since the last report (``rps``), the
    limiter's current ceiling beside it (``limit_rps``), and the 429 count (display, log,
    ``status``)."""
    sent_before, at_before = client.requests_sent, clock.now()
    while True:
        await clock.sleep(RATE_REPORT_INTERVAL_S)
        sent, now = client.requests_sent, clock.now()
        measured_rps = (sent - sent_before) / max(now - at_before, 1e-9)
        sent_before, at_before = sent, now
        limiter = client.limiter
        sink.emit(
            "rate",
            rps=round(measured_rps, 2),
            limit_rps=round(limiter.current_rps, 2),
            rate_limited=limiter.rate_limited_total,
            requests=sent,
        )
