"""How many renders of ours the account runs at once, and how many other things we do at once.

Concurrency caps
----------------
Rows, renders and downloads in flight are capped with ``anyio.Semaphore`` directly (``async with
slots:``, made by ``run.pool.slots``); it is FIFO-fair and cancellation-safe, so no wrapper lives
here.

Render slots
------------
A render holds a slot from its request until a read finds it finished (``stages.render``), so
the account never runs more than ``[limits] max_renders_in_flight`` (its cap, C) of ours. A slot
the account frees is noticed by reading the render when its progress says it ends
(``stages.poll``), or by its webhook. One render more (``render_slots_total``: C + 1) is sent
only when ``[limits] renders_queued_ahead`` is 1, which only a calibration profile that measured
the account queuing renders past its cap sets (or ``--simulate`` against a simulator that
queues): it then waits at Pictory and starts the moment a slot frees, before our read. Never more
than one: a queued render reports no progress (its end cannot be projected), and on an account
that refuses renders past its cap (``renders_over_cap`` in the simulator: 429 or 409) a render
sent ahead would be refused, so without a profile none is.
"""

from __future__ import annotations


def render_slots_total(max_renders: int, queued_ahead: int = 0) -> int:
    """Renders of ours at Pictory at once: the account's cap (``max_renders_in_flight``), plus
    ``queued_ahead`` (0 or 1, ``[limits] renders_queued_ahead``) waiting there for a slot."""
    return max_renders + min(1, max(0, queued_ahead))
