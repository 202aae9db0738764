"""What a run directory's session takes over from the sessions before it.

- **The batch-wide choices** (``records.BatchChoices``). ``resume`` and ``approve`` continue
  a batch: they obey each choice they state, and the batch's recorded one for each choice they
  do not state (``carried_choices``), so ``orchestrator approve RUN_DIR`` keeps the canary
  run's ``--notify``, halt, spend cap and window, and a plain ``resume`` keeps them too. A
  choice stated again replaces the recorded one; ``--window`` or ``--until`` replaces the whole
  window (its time zone and ``--at-window-end`` with it). ``run`` states the batch's choices
  anew, all of them: running the ``run`` command again without an option drops that choice
  (the way to lift a recorded cap or window).
- **Jobs of an embedded simulator that stopped.** ``--simulate`` runs the simulator inside the
  process, and its jobs live in that process's memory. A later session against the embedded
  simulator therefore finds none of the jobs the ledger records: they are certainly gone, and
  nothing real was billed for them. Such rows (``retry.lost_with_simulator`` decides which)
  start over at once, each with a ``retry`` event saying why, without ``--retry-failed``, and
  the console says so once. This holds only when the earlier session's ``run`` record says it
  ran against the embedded simulator too (``RunStarted.target``); a ledger older than targets
  is left as it is (its lost render jobs end ``job_lost``).

May import what ``run`` may; ``execute`` calls it.
"""

from __future__ import annotations

import contextlib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import anyio

from orchestrator.api.retry import lost_with_simulator
from orchestrator.config import NOTIFY_FROM_CONFIG, Config, notify_url
from orchestrator.events import Sink
from orchestrator.ledger.protocol import Ledger
from orchestrator.ledger.records import BatchChoices, Retry

WINDOW_CHOICES = ("window", "until", "time_zone", "at_window_end")
"""One choice among the batch-wide ones: a session that states ``--window`` or ``--until``
states these four anew (the time zone and what happens at the window's end belong to it)."""

SIMULATOR_GONE_REASON = (
    "its jobs were held by the embedded simulator of an earlier session, which stopped with "
    "that session's process (--simulate): made again, nothing real billed"
)


def carried_choices(recorded: BatchChoices, given: BatchChoices) -> BatchChoices:
    """This session's choices: each one ``given`` states (it differs from the default), else
    the ``recorded`` one (the window's four as one: ``WINDOW_CHOICES``)."""
    default = BatchChoices()
    stated_window = given.window is not None or given.until is not None
    carried: dict[str, Any] = {}
    for f in fields(BatchChoices):
        if f.name == "ts":
            continue
        value = getattr(given, f.name)
        stated = stated_window if f.name in WINDOW_CHOICES else value != getattr(default, f.name)
        carried[f.name] = value if stated else getattr(recorded, f.name)
    return replace(given, **carried)


def obey_choices(
    config: Config, choices: BatchChoices, sink: Sink, *, run_dir: Path, notify_stated: bool
) -> Config:
    """The config this session runs with, given the batch's ``choices``: ``--rerender-changed``
    stated by an earlier session holds here too. Says (``notify_unset``) when the batch
    notifies ``[notify] url`` and this session's config has none: a ``--notify URL`` given to
    an earlier session is never recorded (a chat webhook's URL is its key)."""
    if choices.rerender_changed and not config.run.rerender_changed:
        run = config.run.model_copy(update={"rerender_changed": True})
        config = config.model_copy(update={"run": run})
    if choices.notify == NOTIFY_FROM_CONFIG and notify_url(choices.notify, config) is None:
        sink.emit("notify_unset", run_dir=str(run_dir), stated=notify_stated)
    return config


def simulator_gone(ledger: Ledger, *, simulated: bool) -> bool:
    """Whether this session (``simulated``: against the embedded simulator) follows a session
    that ran against an embedded simulator too, so that every job the ledger records was in a
    simulator that stopped. Read before this session's own ``run`` record is appended."""
    if not simulated or not ledger.state.runs:
        return False
    earlier = ledger.state.runs[-1].target
    return bool(earlier and earlier.get("simulate"))


async def start_over_lost_with_simulator(ledger: Ledger, videos_dir: Path, sink: Sink) -> int:
    """Record a ``retry`` for every row whose jobs died with an earlier session's embedded
    simulator, drop its partial download (part of that simulator's video), and say so once
    (``simulator_jobs_lost``). Returns how many rows start over."""
    lost: list[tuple[str, str | None, bool]] = []
    for state in ledger.state.rows.values():
        if lost_with_simulator(state):
            output = state.output_override or state.output
            lost.append((state.row, output, state.render_job is not None))
    if not lost:
        return 0
    async with anyio.create_task_group() as tg:  # side by side: the appends share their fsyncs
        for row, _, _ in lost:
            tg.start_soon(ledger.append, Retry(row=row, reason=SIMULATOR_GONE_REASON))
    for row, output, _ in lost:
        ledger.release(row)
        if output:
            with contextlib.suppress(FileNotFoundError):
                (videos_dir / f".{output}.part").unlink()
    sink.emit(
        "simulator_jobs_lost",
        rows=len(lost),
        renders=sum(1 for _, _, rendered in lost if rendered),
    )
    return len(lost)
