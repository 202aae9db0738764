"""Webhook mode: a small local receiver that turns Pictory's job callbacks into job answers.

Job-creating requests carry ``webhook = BASE/hooks/{row}/{stage}``; Pictory POSTs the finished
job's JSON there (the same JSON ``GET /v1/jobs/{id}`` answers). Waiters get the parsed job at once
instead of polling; a slow poll stays as the fallback in case a callback is lost.

Because the URL names the row and the stage, a callback also resolves a render whose request was
answered by a dropped connection: the job id arrives with the callback (see ``stages.render``).

This module and the simulator are the only servers in the package; the client side stays in
``orchestrator.client``.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from aiohttp import web

from orchestrator.responses import JobState, parse_job

MAX_BODY_BYTES = 4 * 1024 * 1024


class WebhookReceiver:
    """Listens on ``host:port`` (0 = a free port); ``url_for(row, stage)`` gives the hook URL."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, public_url: str | None = None):
        self._host = host
        self._port = port
        self._public_url = public_url
        self._runner: web.AppRunner | None = None
        self._by_job: dict[str, JobState] = {}
        self._by_hook: dict[tuple[str, str], JobState] = {}
        self._hook_of_job: dict[str, tuple[str, str]] = {}
        self._arrived = anyio.Event()
        self.base_url = ""
        self.received = 0

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/hooks/{row}/{stage}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses
        port = int(addresses[0][1]) if addresses else self._port
        self.base_url = (self._public_url or f"http://{self._host}:{port}").rstrip("/")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url_for(self, row: str, stage: str) -> str:
        return f"{self.base_url}/hooks/{row}/{stage}"

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
        job_id = body.get("job_id") if isinstance(body, dict) else None
        if not isinstance(job_id, str) or not job_id:
            data = body.get("data") if isinstance(body, dict) else None
            job_id = data.get("job_id") if isinstance(data, dict) else None
        if not isinstance(job_id, str) or not job_id:
            return web.json_response({"ok": False, "error": "no job_id"}, status=400)
        state = parse_job(job_id, body)
        hook = (request.match_info["row"], request.match_info["stage"])
        self._by_job[job_id] = state
        self._by_hook[hook] = state
        self._hook_of_job[job_id] = hook
        self.received += 1
        arrived, self._arrived = self._arrived, anyio.Event()
        arrived.set()
        return web.json_response({"ok": True})

    def take(self, job_id: str) -> JobState | None:
        """The job's callback, once: it is forgotten here, so a long run keeps no callbacks."""
        state = self._by_job.pop(job_id, None)
        hook = self._hook_of_job.pop(job_id, None)
        if hook is not None:
            self._by_hook.pop(hook, None)
        return state

    async def wait(self, job_id: str, timeout_s: float) -> JobState | None:
        """The job's callback, if it arrives within ``timeout_s``; else None (poll then)."""
        with anyio.move_on_after(timeout_s):
            while (state := self._by_job.get(job_id)) is None:
                await self._arrived.wait()
            return state
        return None

    async def wait_hook(self, row: str, stage: str, timeout_s: float) -> JobState | None:
        with anyio.move_on_after(timeout_s):
            while (state := self._by_hook.get((row, stage))) is None:
                await self._arrived.wait()
            return state
        return None
