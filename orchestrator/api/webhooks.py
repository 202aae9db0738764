"""Webhook mode: a small local receiver that turns Pictory's job callbacks into job answers.

Job-creating requests carry ``webhook = BASE/hooks/{secret}/{row}/{stage}``; Pictory POSTs the
finished job's JSON there (the same JSON ``GET /v1/jobs/{id}`` answers; the payload itself is
undocumented, contract §3). Waiters get the parsed job at once instead of polling; a slow poll
stays as the fallback in case a callback is lost.

Because the URL names the row and the stage, a callback also resolves a render whose request was
answered by a dropped connection: the job id arrives with the callback (see ``stages.render``,
which confirms that job with one ``GET /v1/jobs/{id}`` before recording it).

What is exposed, and how it is protected (a tunnel may make the receiver public):

- **A secret in the path.** Each run directory holds ``webhook.secret`` (256 random bits, created
  once with mode 0600, never logged or printed). A callback whose path does not carry it is
  answered 404, like any unknown path, and counted; the comparison is constant-time.
- **Only what is awaited.** A callback is kept only for a ``(row, stage)`` whose hook URL this
  run handed out, and only for the job the ledger records for that row and stage (checked when
  the callback arrives, if the job id is already recorded, and again when a waiter takes it). A
  callback naming another job is dropped and counted; it cannot overwrite a kept one.
- **Size and rate.** Bodies over ``MAX_BODY_BYTES`` are refused (413) and more than
  ``MAX_CALLBACKS_PER_S`` callbacks a second (with a burst of ``BURST``) are answered 429.

This module and the simulator are the only servers in the package; the client side stays in
``orchestrator.api.client``.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web

from orchestrator.api.responses import JobState, parse_job
from orchestrator.clock import Clock, RealClock

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A finished transcription carries its whole transcript; 4 MiB is far above any real one."""
MAX_CALLBACKS_PER_S = 200.0
BURST = 400
SECRET_NAME = "webhook.secret"
SECRET_BYTES = 32

RecordedJob = Callable[[str, str], str | None]
"""``(row, stage) -> the job id the ledger records for it`` (None: not recorded yet)."""


def run_secret(run_dir: Path) -> str:
    """The run directory's webhook secret: read, or created once with mode 0600."""
    path = run_dir / SECRET_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    value = secrets.token_urlsafe(SECRET_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(value + "\n")
        out.flush()
        os.fsync(out.fileno())
    return value


class WebhookReceiver:
    """Listens on ``host:port`` (0 = a free port); ``url_for(row, stage)`` gives the hook URL."""

    def __init__(
        self,
        *,
        secret: str,
        recorded_job: RecordedJob,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        clock: Clock | None = None,
    ):
        self._secret = secret.encode()
        self._recorded_job = recorded_job
        self._host = host
        self._port = port
        self._public_url = public_url
        self._clock = clock or RealClock()
        self._runner: web.AppRunner | None = None
        self._issued: dict[str, set[str]] = {}
        """Row → the stages whose hook URL was handed out and not used yet."""
        self._held: dict[tuple[str, str], JobState] = {}
        """Hook → the callback kept for it (at most one per hook: memory stays per row)."""
        self._hook_of: dict[str, tuple[str, str]] = {}
        self._arrived = anyio.Event()
        self._tokens = float(BURST)
        self._refilled_at = self._clock.now()
        self.base_url = ""
        """Where the receiver listens (or its public URL), without the secret: printable."""
        self.received = 0
        self.rejected: Counter[str] = Counter()
        """Callbacks refused, by reason (``secret``, ``not_awaited``, ``other_job``...)."""

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/hooks/{secret}/{row}/{stage}", self._handle)
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
        """The hook URL for ``row``'s ``stage`` job; from now on a callback there is awaited."""
        self._issued.setdefault(row, set()).add(stage)
        return f"{self.base_url}/hooks/{self._secret.decode()}/{row}/{stage}"

    async def _handle(self, request: web.Request) -> web.Response:
        # Authenticate first (in constant time), then charge the budget: traffic without the
        # secret is refused at no cost to it, so it can never crowd out a genuine callback.
        given = request.match_info["secret"].encode()
        if not hmac.compare_digest(given, self._secret):
            self.rejected["secret"] += 1
            raise web.HTTPNotFound()
        if not self._take_token():
            self.rejected["rate"] += 1
            return web.json_response({"ok": False, "error": "too many callbacks"}, status=429)
        hook = (request.match_info["row"], request.match_info["stage"])
        if hook[1] not in self._issued.get(hook[0], ()):
            self.rejected["not_awaited"] += 1
            raise web.HTTPNotFound()
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            self.rejected["not_json"] += 1
            return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
        job_id = _job_id(body)
        if job_id is None:
            self.rejected["no_job_id"] += 1
            return web.json_response({"ok": False, "error": "no job_id"}, status=400)
        recorded = self._recorded_job(*hook)
        owner = self._hook_of.get(job_id)
        if (recorded is not None and recorded != job_id) or (owner is not None and owner != hook):
            self.rejected["other_job"] += 1
            raise web.HTTPNotFound()
        replaced = self._held.get(hook)
        if replaced is not None and replaced.job_id != job_id:
            self._hook_of.pop(replaced.job_id, None)
        self._held[hook] = parse_job(job_id, body)
        self._hook_of[job_id] = hook
        self.received += 1
        arrived, self._arrived = self._arrived, anyio.Event()
        arrived.set()
        return web.json_response({"ok": True})

    def _take_token(self) -> bool:
        now = self._clock.now()
        elapsed_s, self._refilled_at = now - self._refilled_at, now
        self._tokens = min(float(BURST), self._tokens + elapsed_s * MAX_CALLBACKS_PER_S)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def take(self, job_id: str) -> JobState | None:
        """The job's callback, once, if it came to the hook of the row that records this job.
        It is forgotten here, so a long run keeps no callbacks."""
        hook = self._hook_of.pop(job_id, None)
        if hook is None:
            return None
        state = self._held.pop(hook)
        if self._recorded_job(*hook) != job_id:
            self.rejected["other_job"] += 1
            return None
        self._issued.get(hook[0], set()).discard(hook[1])
        return state

    async def wait(self, job_id: str, timeout_s: float) -> JobState | None:
        """The job's callback, if it arrives within ``timeout_s``; else None (poll then)."""
        with anyio.move_on_after(timeout_s):
            while (hook := self._hook_of.get(job_id)) is None:
                await self._arrived.wait()
            return self._held[hook]
        return None

    async def wait_hook(self, row: str, stage: str, timeout_s: float) -> JobState | None:
        """A callback to ``row``'s ``stage`` hook, whatever job it names: for a request whose
        answer was lost. The caller must confirm the job with the API before trusting it."""
        with anyio.move_on_after(timeout_s):
            while (state := self._held.get((row, stage))) is None:
                await self._arrived.wait()
            return state
        return None

    def forget_row(self, row: str) -> None:
        """The row's task ended: its hooks are no longer awaited, and nothing is kept for it."""
        for stage in self._issued.pop(row, ()):
            state = self._held.pop((row, stage), None)
            if state is not None:
                self._hook_of.pop(state.job_id, None)


def _job_id(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    job_id = body.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        data = body.get("data")
        job_id = data.get("job_id") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) and job_id else None
