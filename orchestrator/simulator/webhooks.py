"""Webhook delivery: one background task POSTs each finished job's JSON to its ``webhook`` URL.

The payload is exactly what ``GET /v1/jobs/{id}`` answers at that moment, plus the creating
request's ``webhookInput`` when it sent one (§6.3: "echoed to the webhook"; where it sits is our
[choice], ``SimSettings.webhook_input_placement``: top level by default). Due deliveries sit in a
heap ordered by the job's end time; the task sleeps until the earliest is due (or a new earlier
one arrives), so there is one task however many jobs are waiting. Each POST runs in its own task
with ``webhook_timeout_s`` and is tried once. Jobs that never finish never call back. Unless
``webhook_allow_remote`` is set, only loopback hosts are called (others are counted as skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from orchestrator.simulator.answers import ApiProblem, dumps
from orchestrator.simulator.core import Simulator
from orchestrator.simulator.jobs import Job
from orchestrator.simulator.views import job_body

MAX_IDLE_WAIT_S = 0.5
"""Re-check the clock at least this often (the simulator's clock may be a test's fake)."""
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
WEBHOOK_INPUT = "webhookInput"


def keep_webhook_input(job: Job, body: Mapping[str, Any]) -> None:
    """Remember the creating request's ``webhookInput`` (any JSON object, §6.3) to echo it when
    the job calls back; anything else there is not kept (the v2 body model refuses it)."""
    value = body.get(WEBHOOK_INPUT)
    if isinstance(value, dict):
        job.webhook_input = value


def with_webhook_input(answer: dict[str, Any], job: Job, placement: str) -> dict[str, Any]:
    """The webhook POST body: the job's answer with its ``webhookInput`` placed as
    ``placement`` says (``top``, ``data`` or ``none``)."""
    if job.webhook_input is None or placement == "none":
        return answer
    if placement == "data" and isinstance(answer.get("data"), dict):
        return {**answer, "data": {**answer["data"], WEBHOOK_INPUT: job.webhook_input}}
    return {**answer, WEBHOOK_INPUT: job.webhook_input}


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookDispatcher:
    """Started and stopped with the web application (see ``server.create_app``)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self._due: list[tuple[float, int, str, str]] = []
        self._seq = 0
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def schedule(self, due_at: float, job_id: str, url: str) -> None:
        self._seq += 1
        heapq.heappush(self._due, (due_at, self._seq, job_id, url))
        if self._due[0][1] == self._seq:
            self._wake.set()

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self._sim.settings.webhook_timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._loop_task = asyncio.create_task(self._run(), name="sim-webhooks")
        self._sim.webhooks = self

    async def stop(self) -> None:
        self._sim.webhooks = None
        tasks = [t for t in (self._loop_task, *self._sends) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            now = self._sim.now()
            while self._due and self._due[0][0] <= now:
                _, _, job_id, url = heapq.heappop(self._due)
                self._send_soon(job_id, url, now)
            wait_s = MAX_IDLE_WAIT_S
            if self._due:
                wait_s = min(wait_s, max(0.0, self._due[0][0] - now))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)

    def _send_soon(self, job_id: str, url: str, now: float) -> None:
        accounting = self._sim.accounting
        if not (self._sim.settings.webhook_allow_remote or is_loopback(url)):
            accounting.webhooks["skipped"] += 1
            return
        try:
            job = self._sim.get_job(job_id, None)
        except ApiProblem:
            accounting.webhooks["skipped"] += 1
            return
        placement = self._sim.settings.webhook_input_placement
        body = dumps(with_webhook_input(job_body(self._sim, job, now), job, placement))
        task = asyncio.create_task(self._post(url, body))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _post(self, url: str, body: str) -> None:
        assert self._session is not None
        accounting = self._sim.accounting
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                await resp.read()
                ok = resp.status < 400
        except (aiohttp.ClientError, TimeoutError, ValueError):
            ok = False
        accounting.webhooks["sent" if ok else "failed"] += 1
