"""What runs beside a batch's rows until they are settled: signals (drain, then stop), the
end of the run window, the network watch and the request-rate report. Each is a task of
``run.work_rows``'s control task group; ``stop`` stops admitting rows, ``rows_scope`` cancels the
rows in flight (each resumes where the ledger left it).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from urllib.parse import urlsplit

import anyio

from orchestrator.api.client import PictoryClient
from orchestrator.clock import Clock
from orchestrator.config import Config
from orchestrator.events import Sink
from orchestrator.run.admission import NetworkWatch, Window

RATE_REPORT_INTERVAL_S = 2.0
NETWORK_CHECK_INTERVAL_S = 1.0


async def watch_signals(
    stop: Callable[[str], None],
    rows_scope: anyio.CancelScope,
    sink: Sink,
    interrupted: Callable[[str], None],
) -> None:
    """First SIGINT/SIGTERM: stop admitting and drain. Second: cancel the rows at once.
    ``interrupted`` is called with the signal's name on each signal (the run's exit code
    becomes 130)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        count = 0
        async for signum in signals:
            count += 1
            name = signal.Signals(signum).name
            interrupted(name)
            if count == 1:
                sink.emit("interrupt", signal=name, action="draining")
                stop(f"{name}: finishing the rows in flight; press Ctrl-C again to stop at once")
            else:
                sink.emit("interrupt", signal=name, action="stopping now")
                rows_scope.cancel()
                return


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
