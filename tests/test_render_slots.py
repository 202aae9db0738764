"""Render-capped batches on virtual time: a slot the account frees is noticed when the render's
progress says it ends (not an interval later), and a render is queued ahead at Pictory only when
``[limits] renders_queued_ahead`` (a calibration profile) says the account queues, one at most."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from memory_transport import API_KEY, MemoryTransport, Reply, Sent, memory_client, reply

from orchestrator.api.calibration import CalibrationProfile, apply_profile
from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.render_slots import render_slots_total
from orchestrator.api.simulated import simulated_config
from orchestrator.clock import VirtualClock
from orchestrator.config import Config, PollConfig, load_config
from orchestrator.errors import ConfigError
from orchestrator.events import ListSink
from orchestrator.input.rows import RowJob
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import Event, PreviewJob, PreviewReady
from orchestrator.run.admission import Admission
from orchestrator.run.stages.base import Services
from orchestrator.run.stages.poll import until_done_s
from orchestrator.run.stages.render import render
from orchestrator.simulator import SimSettings

CAP = 3
RENDER_S = 6.0
INTERVAL_S = 1.5


@dataclass
class _Render:
    sent_s: float
    start_s: float
    end_s: float
    seen_done_s: float | None = None


@dataclass
class FakeAccount:
    """Pictory's render cap as the simulator plays it (a render past the cap waits for a slot,
    reported ``in-progress`` without ``renderProgress``), on the test's virtual clock."""

    clock: VirtualClock
    api: MemoryTransport
    cap: int
    durations: Iterator[float]
    renders: dict[str, _Render] = field(default_factory=dict)
    running_max: int = 0
    waiting_max: int = 0

    def at(self, now: float) -> tuple[int, int]:
        """(running, waiting) renders at ``now``."""
        running = sum(1 for r in self.renders.values() if r.start_s <= now < r.end_s)
        waiting = sum(1 for r in self.renders.values() if now < r.start_s)
        return running, waiting

    def send(self, sent: Sent) -> Reply:
        now = self.clock.now()
        ends = sorted(r.end_s for r in self.renders.values() if r.end_s > now)
        start = now if len(ends) < self.cap else ends[len(ends) - self.cap]
        job = f"r{len(self.renders) + 1}"
        self.renders[job] = _Render(now, start, start + next(self.durations))
        running, waiting = self.at(now)
        self.running_max = max(self.running_max, running)
        self.waiting_max = max(self.waiting_max, waiting)
        self.api.on("GET", f"/v1/jobs/{job}", functools.partial(self.read, job), repeat=True)
        return reply({"success": True, "data": {"jobId": job}})

    def read(self, job: str, sent: Sent | None = None) -> Reply:
        r, now = self.renders[job], self.clock.now()
        if now < r.start_s:
            return reply({"job_id": job, "success": True, "data": {"status": "in-progress"}})
        if now < r.end_s:
            pct = int(100 * (now - r.start_s) / (r.end_s - r.start_s))
            data: dict[str, Any] = {"status": "in-progress", "renderProgress": pct}
            return reply({"job_id": job, "success": True, "data": data})
        if r.seen_done_s is None:
            r.seen_done_s = now
        data = {"status": "completed", "videoURL": f"https://cdn.test/{job}.mp4"}
        return reply({"job_id": job, "success": True, "data": data})


class MemoryLedger:
    """The part of the ledger the render stage uses, in memory (no fsync off the event loop, so
    virtual time moves only when every task waits on it)."""

    def __init__(self) -> None:
        self.state = LedgerState()

    async def append(self, event: Event, files: Sequence[Path] = ()) -> None:
        self.state.apply(event)


@pytest.fixture
async def client_and_api() -> AsyncIterator[tuple[PictoryClient, MemoryTransport, VirtualClock]]:
    api, clock = MemoryTransport(), VirtualClock()
    async with memory_client(api, API_KEY, clock=clock) as client:
        yield client, api, clock


async def _render_batch(
    client: PictoryClient,
    api: MemoryTransport,
    clock: VirtualClock,
    tmp_path: Path,
    *,
    rows: int,
    slots: int,
    durations: Iterator[float],
    learned_first_read_s: float | None = None,
) -> FakeAccount:
    account = FakeAccount(clock, api, CAP, durations)
    ledger = MemoryLedger()
    svc = Services(
        client=client,
        ledger=ledger,  # type: ignore[arg-type]  # the render stage's part of the protocol
        clock=clock,
        sink=ListSink(),
        poll=PollConfig(render_interval_s=INTERVAL_S, jitter_fraction=0.0),
        videos_dir=tmp_path,
        render_slots=anyio.Semaphore(slots),
        download_slots=anyio.Semaphore(1),
        templates=None,  # type: ignore[arg-type]  # not used by the render stage
        admission=Admission(clock, ListSink()),
        rng=random.Random(0),
    )
    if learned_first_read_s is not None:  # earlier renders taught a late first read
        learned = svc.first_read("render", INTERVAL_S, 60 * INTERVAL_S)
        learned.delay_s = learned.done_by_s = learned_first_read_s
    batch = []
    for i in range(rows):
        row = RowJob(f"row{i}", i + 2, {}, None, f"row{i}.mp4")
        await ledger.append(PreviewJob(row=row.row_id, job=f"p{i}"))
        await ledger.append(PreviewReady(row=row.row_id, job=f"p{i}"))
        api.on("PUT", f"/v2/video/render/p{i}", account.send)
        batch.append(row)
    async with anyio.create_task_group() as tg:
        for row in batch:
            tg.start_soon(render, row, svc)
    return account


async def test_a_freed_slot_is_refilled_within_a_blink_of_the_render_end(
    client_and_api: tuple[PictoryClient, MemoryTransport, VirtualClock], tmp_path: Path
) -> None:
    """With the account's cap as our slots (no profile), every render but the first C is sent
    at most 0.25 % of a render (15 ms) after a render of the account ended, not up to a poll
    interval (1.5 s) later: renders of 4–8 s are read at their projected end."""
    client, api, clock = client_and_api
    rng = random.Random(3)
    durations = iter([rng.uniform(4.0, 8.0) for _ in range(30)])
    account = await _render_batch(
        client, api, clock, tmp_path, rows=30, slots=CAP, durations=durations
    )
    assert account.waiting_max == 0, "nothing queued at Pictory without a profile"
    assert account.running_max == CAP
    renders = sorted(account.renders.values(), key=lambda r: r.sent_s)
    ends = sorted(r.end_s for r in renders)
    for k, r in enumerate(renders[CAP:]):
        freed_s = ends[k]  # the slot this render took: the k-th render to end
        assert freed_s <= r.sent_s <= freed_s + 0.0025 * 8.0 + 1e-6, (k, freed_s, r.sent_s)
    steady_s = renders[-1].start_s  # until the last render starts, every slot has work
    busy_s = sum(min(r.end_s, steady_s) - r.start_s for r in renders if r.start_s < steady_s)
    assert busy_s / (CAP * steady_s) >= 0.998, "C / render time, less only the noticing gaps"


async def test_bursts_at_a_plentiful_rate_do_not_delay_first_reads(
    client_and_api: tuple[PictoryClient, MemoryTransport, VirtualClock], tmp_path: Path
) -> None:
    """Requests that come in bursts look saturated at 1,000 req/s, but the rate is far from
    used: a fresh render's first read is not put off to a learned 7.8 s (when 96 % of renders
    are done), which would leave the account's slots idle for seconds; every render is still
    noticed within a blink of its end."""
    client, api, clock = client_and_api
    client.limiter.saturation = 1.0  # as after a burst of reads in one millisecond
    account = await _render_batch(
        client,
        api,
        clock,
        tmp_path,
        rows=6,
        slots=CAP,
        durations=iter([4.0, 5.0, 6.0, 4.5, 5.5, 6.5]),
        learned_first_read_s=7.8,
    )
    for r in account.renders.values():
        assert r.seen_done_s is not None and r.seen_done_s - r.end_s <= 0.02, r


async def test_no_render_is_queued_ahead_without_a_profile(
    client_and_api: tuple[PictoryClient, MemoryTransport, VirtualClock], tmp_path: Path
) -> None:
    """Default limits: slots = the account's cap, so the account never holds a render waiting."""
    client, api, clock = client_and_api
    config = Config()
    slots = render_slots_total(CAP, config.limits.renders_queued_ahead)
    assert slots == CAP
    account = await _render_batch(
        client, api, clock, tmp_path, rows=12, slots=slots, durations=iter([RENDER_S] * 12)
    )
    assert account.waiting_max == 0 and account.running_max == CAP


async def test_with_a_profile_exactly_one_render_waits_at_pictory(
    client_and_api: tuple[PictoryClient, MemoryTransport, VirtualClock], tmp_path: Path
) -> None:
    """``renders_queued_ahead = 1`` (a profile said the account queues): one render, never two,
    waits at Pictory, and it starts the moment a slot frees (no gap at all)."""
    client, api, clock = client_and_api
    slots = render_slots_total(CAP, 1)
    assert render_slots_total(CAP, 5) == CAP + 1, "never more than one ahead"
    rng = random.Random(4)
    durations = iter([rng.uniform(4.0, 8.0) for _ in range(20)])
    account = await _render_batch(
        client, api, clock, tmp_path, rows=20, slots=slots, durations=durations
    )
    assert account.waiting_max == 1 and account.running_max == CAP
    queued = [r for r in account.renders.values() if r.start_s > r.sent_s]
    assert queued, "some render waited at Pictory"
    ends = {r.end_s for r in account.renders.values()}
    assert all(any(math.isclose(r.start_s, e) for e in ends) for r in queued)


def test_prompt_reads_aim_at_the_earliest_end_whole_percentages_allow() -> None:
    """Requests plentiful: 25 % after 1.5 s (so 25–26 %) ends at the earliest 1.5 × 74/26 s
    later; at 99 % the next read is 0.25 % of the projected length away, not 10 % of the
    interval. Without ``prompt`` the old margin (5 % late) stays."""
    early = until_done_s((0.0, 0.0), (1.5, 25.0), 9.0, 1.5, prompt=True)
    assert early == pytest.approx(1.5 * 74 / 26)
    assert until_done_s((0.0, 0.0), (1.5, 25.0), 9.0, 1.5) == pytest.approx(4.5 * 1.05)
    last = until_done_s((0.0, 0.0), (5.94, 99.0), 1.5, 1.5, prompt=True)
    assert last == pytest.approx(0.0025 * 6.0)
    assert until_done_s((0.0, 0.0), (1.5, 25.0), 1.5, 1.5, prompt=True) == 1.5, "never later"


def test_renders_queued_ahead_is_not_set_in_the_config_file(tmp_path: Path) -> None:
    """Only a calibration profile may say the account queues renders: the key in the config
    file is one error naming it and saying what to do."""
    path = tmp_path / "config.toml"
    path.write_text("[limits]\nmax_renders_in_flight = 3\nrenders_queued_ahead = 1\n")
    with pytest.raises(ConfigError, match=r"renders_queued_ahead.*calibration profile"):
        load_config(path)


@pytest.mark.parametrize(("queues", "cap_found", "ahead"), [(True, True, 1), (False, True, 0)])
def test_a_calibration_profile_that_measured_a_queue_sets_one_ahead(
    queues: bool, cap_found: bool, ahead: int
) -> None:
    """``apply_profile``: a profile that measured the account queuing renders past its cap sets
    ``renders_queued_ahead = 1`` (C + 1 slots); one that saw them refused sets none."""
    profile = CalibrationProfile(
        account="acc",
        base_url="https://api.example/pictoryapis",
        measured_at="2026-12-07T03:00:00Z",
        max_concurrent_renders=CAP,
        cap_found=cap_found,
        queues_renders=queues,
        billable_renders=CAP + 1,
    )
    limits = apply_profile(Config(), profile, Path("p.toml")).limits
    assert limits.renders_queued_ahead == ahead
    assert render_slots_total(limits.max_renders_in_flight, limits.renders_queued_ahead) == (
        CAP + ahead
    )


def test_simulate_queues_one_ahead_only_where_the_simulator_queues() -> None:
    """``--simulate``: slots = the simulated cap, and one more only if the simulator queues
    renders past it (``renders_over_cap``); a refusing simulator gets none."""
    queues = SimSettings.for_profile("demo")
    refuses = SimSettings.for_profile("demo", renders_over_cap="refuse-429")
    for settings, ahead in ((queues, 1), (refuses, 0)):
        limits = simulated_config(Config(), "http://127.0.0.1:1/pictoryapis", settings).limits
        assert limits.max_renders_in_flight == settings.max_concurrent_renders
        assert limits.renders_queued_ahead == ahead


async def test_utilization_tells_plentiful_requests_from_a_binding_rate() -> None:
    """At 1,000 req/s, bursts of five requests a second "wait their turn" (saturation high) but
    use 0.5 % of the rate (utilization low: renders are read at their earliest end); requests
    asking faster than the rate keep it near 1."""
    clock = VirtualClock()
    limiter = RateLimiter(clock, max_rps=1000)
    for _ in range(20):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(limiter.acquire)
        await clock.sleep(1.0)
    assert limiter.saturation > 0.5 and limiter.utilization < 0.01
    binding = RateLimiter(clock, max_rps=10)
    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(binding.acquire)
    assert binding.utilization > 0.8
