"""Webhook mode: a small local receiver that turns Pictory's job callbacks into job answers.

Job-creating requests carry ``webhook = BASE/hooks/{secret}/{row}/{stage}``; Pictory POSTs the
finished job's JSON there (the same JSON ``GET /v1/jobs/{id}`` answers; the payload itself is
undocumented, contract §3). Waiters get the parsed job at once instead of polling; a slow poll
stays as the fallback in case a callback is lost.

**Which row and stage.** The v2 storyboard routes take ``webhookInput`` ("any JSON object,
echoed in the webhook POST", §6.3): there the client sends ``input_for(row, stage)``, ``{"batch",
"row", "stage"}``, and a callback echoing it is matched by it (another batch's: ``other_batch``);
others by the row and stage of the URL path, which every hook URL keeps. [choice] Where the echo
sits is unpublished: it is read at the top level or inside ``data``. The secret comes first.

Because a callback names the row and the stage, it also resolves a render whose request was
answered by a dropped connection: the job id arrives with the callback (see ``stages.render``,
which confirms that job with one ``GET /v1/jobs/{id}`` before recording it).

What is exposed, and how it is protected (a tunnel may make the receiver public). The rule
throughout: traffic without the secret costs a genuine callback nothing it needs.

- **A secret in the path, checked first.** Each run directory holds ``webhook.secret`` (256
  random bits, created once with mode 0600, never logged or printed). A callback whose path does
  not carry it is answered 404, like any unknown path, and counted; the comparison is
  constant-time. Nothing is charged before it and its body is never read.
- **Only what is awaited.** A callback is kept only for a ``(row, stage)`` whose hook URL this
  run handed out, and only for the job the ledger records for that row and stage (checked when
  the callback arrives, if the job id is already recorded, and again when a waiter takes it). A
  callback naming another job is dropped and counted; it cannot overwrite a kept one.
- **A budget per source, charged after the secret.** Each remote address has its own token
  bucket (``webhook_budgets``): ``MAX_CALLBACKS_PER_S`` (200) a second, bursts of
  ``MAX_CALLBACK_BURST`` (400); beyond it, 429. Only callbacks with the secret spend it, so a
  flood without the secret never refuses a genuine callback, and one noisy source with the
  secret spends only its own bucket. Behind a tunnel every callback comes from the tunnel's
  address and shares one bucket (still far above the handful of callbacks a batch gets: one per
  job).
- **One request per connection, and a cap.** Every answer says ``Connection: close``: nothing
  idles in keep-alive (a callback is one POST per finished job), so a connection that was
  refused frees its slot at once, and no client reuses a connection we are closing. At most
  ``MAX_OPEN_CONNECTIONS`` (256) are open. A newcomer over the cap displaces the connection
  that has waited longest for its request head (a slow-loris, usually); only when every open
  connection is busy being answered is the newcomer closed at once. A genuine callback sends
  its request as it connects, so slow or silent connections cannot lock it out: it could be
  displaced only if, in the moment its head takes to be read, more new connections arrive than
  there are connections waiting ahead of it (the cap is above ``LISTEN_BACKLOG``, 100, the most
  the event loop accepts at a time).
- **Deadlines on reading.** A connection has ``REQUEST_HEAD_TIMEOUT_S`` (10 s) to deliver its
  request head whole (and as long again, once answered, for what aiohttp drains of a body left
  unread); otherwise it is closed (slow-loris). A body with the secret has
  ``REQUEST_BODY_TIMEOUT_S`` (30 s) to arrive, else 408. aiohttp bounds a head's size (8 KiB a
  line, 128 headers) but not the time it takes: its only timer is ``keepalive_timeout`` (an
  hour by default, aiohttp#9285), and only recent releases run it before a connection's first
  request (aiohttp#13681). So the deadlines are kept here, on the event loop's time rather than
  the ``Clock``: they concern real sockets, which a virtual clock would see as idle.
- **Size.** Bodies over ``MAX_BODY_BYTES`` (4 MiB) are refused (413).

What is refused is counted in ``rejected`` by reason: ``secret``, ``not_awaited`` (no hook
handed out for that row and stage, or none named at all), ``other_job``, ``other_batch``,
``not_json``, ``no_job_id``, ``rate`` (429), ``slow_request`` (a head or body that missed its
deadline), ``hung_up`` (a body cut short), ``too_many_connections`` (the cap was reached: a
connection displaced or closed at once).

This module and the simulator are the only servers in the package; the client side stays in
``orchestrator.api.client``.
"""

from __future__ import annotations

import asyncio
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

from orchestrator.api.connections import (
    LISTEN_BACKLOG,
    MAX_OPEN_CONNECTIONS,
    REQUEST_HEAD_TIMEOUT_S,
    ConnectionGuard,
    deadlines,
)
from orchestrator.api.responses import JobState, parse_job
from orchestrator.api.webhook_budgets import SourceBudgets
from orchestrator.clock import Clock, RealClock
from orchestrator.files import writing

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A finished transcription carries its whole transcript; 4 MiB is far above any real one."""
REQUEST_BODY_TIMEOUT_S = 30.0
"""To read a body with the secret: 4 MiB at about 1 Mbit/s."""
SHUTDOWN_TIMEOUT_S = 2.0
"""When the run ends, how long a callback being read may take to finish (aiohttp waits 60 s)."""
SECRET_NAME = "webhook.secret"
SECRET_BYTES = 32

WEBHOOK_INPUT = "webhookInput"
"""The request field the v2 storyboard routes echo in their webhook POST (contract §6.3)."""

RecordedJob = Callable[[str, str], str | None]
"""``(row, stage) -> the job id the ledger records for it`` (None: not recorded yet)."""


def run_secret(run_dir: Path) -> str:
    """The run directory's webhook secret: read, or created once with mode 0600."""
    path = run_dir / SECRET_NAME
    try:
        with writing(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    value = secrets.token_urlsafe(SECRET_BYTES)
    try:
        with writing(path), os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(value + "\n")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)  # a secret half written is no secret: make it again
        raise
    return value


class WebhookReceiver:
    """Listens on ``host:port`` (0 = a free port); ``url_for(row, stage)`` gives the hook URL,
    ``input_for(row, stage)`` the ``webhookInput`` that goes with it where a route takes one.
    ``batch`` names the batch in that input. The limits default to the module's constants
    (tests make them small)."""

    def __init__(
        self,
        *,
        secret: str,
        recorded_job: RecordedJob,
        batch: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        clock: Clock | None = None,
        max_open_connections: int = MAX_OPEN_CONNECTIONS,
        request_head_timeout_s: float = REQUEST_HEAD_TIMEOUT_S,
        request_body_timeout_s: float = REQUEST_BODY_TIMEOUT_S,
    ):
        self._secret = secret.encode()
        self._recorded_job = recorded_job
        self._batch = batch
        self._host = host
        self._port = port
        self._public_url = public_url
        self._body_timeout_s = request_body_timeout_s
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._issued: dict[str, set[str]] = {}
        """Row → the stages whose hook URL was handed out and not used yet."""
        self._held: dict[tuple[str, str], JobState] = {}
        """Hook → the callback kept for it (at most one per hook: memory stays per row)."""
        self._hook_of: dict[str, tuple[str, str]] = {}
        self._arrived = anyio.Event()
        self._budgets = SourceBudgets(clock or RealClock())
        self.base_url = ""
        """Where the receiver listens (or its public URL), without the secret: printable."""
        self.received = 0
        self.rejected: Counter[str] = Counter()
        """Callbacks and connections refused, by reason (see the module docstring)."""
        self.connections = ConnectionGuard(
            self.rejected,
            max_open=max_open_connections,
            head_timeout_s=request_head_timeout_s,
        )

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application(
            client_max_size=MAX_BODY_BYTES, middlewares=[deadlines(self.connections)]
        )
        app.router.add_post("/hooks/{secret}/{row}/{stage}", self._handle)
        app.router.add_post("/hooks/{secret}", self._handle)  # matched by webhookInput only
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        try:  # our own listener, not a TCPSite: its protocol factory is the connection guard
            self._listener = await asyncio.get_running_loop().create_server(
                self.connections.wrap(server), self._host, self._port, backlog=LISTEN_BACKLOG
            )
        except BaseException:
            await self._runner.cleanup()
            raise
        port = int(self._listener.sockets[0].getsockname()[1])
        self.base_url = (self._public_url or f"http://{self._host}:{port}").rstrip("/")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self.connections.close_all()
        if self._listener is not None:
            await self._listener.wait_closed()

    def url_for(self, row: str, stage: str) -> str:
        """The hook URL for ``row``'s ``stage`` job; from now on a callback there is awaited."""
        self._issued.setdefault(row, set()).add(stage)
        return f"{self.base_url}/hooks/{self._secret.decode()}/{row}/{stage}"

    def input_for(self, row: str, stage: str) -> dict[str, str]:
        """The ``webhookInput`` sent beside ``url_for(row, stage)`` on the routes that take one:
        the batch, the row and the stage, echoed back with the callback (module docstring). It
        holds no secret: the secret stays in the URL."""
        return {"batch": self._batch, "row": row, "stage": stage}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Authenticate first (in constant time), then charge the source's budget: traffic
        # without the secret is refused at no cost to it, so it can never crowd out a genuine
        # callback. Its body is never read.
        given = request.match_info["secret"].encode()
        if not hmac.compare_digest(given, self._secret):
            self.rejected["secret"] += 1
            raise web.HTTPNotFound()
        if not self._budgets.take(request.remote or ""):
            self.rejected["rate"] += 1
            return web.json_response({"ok": False, "error": "too many callbacks"}, status=429)
        path_hook = _path_hook(request)
        if path_hook is not None and not self._awaited(path_hook):
            self.rejected["not_awaited"] += 1  # refused before reading a body, as ever
            raise web.HTTPNotFound()
        raw: bytes | None = None
        try:
            with anyio.move_on_after(self._body_timeout_s):
                raw = await request.read()
        except ConnectionError:  # the caller hung up mid-body: no one to answer
            self.rejected["hung_up"] += 1
            raise web.HTTPBadRequest() from None
        if raw is None:
            self.rejected["slow_request"] += 1
            return web.json_response({"ok": False, "error": "body too slow"}, status=408)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            self.rejected["not_json"] += 1
            return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
        job_id = _job_id(body)
        if job_id is None:
            self.rejected["no_job_id"] += 1
            return web.json_response({"ok": False, "error": "no job_id"}, status=400)
        echoed = _echoed_input(body)
        if echoed is not None and echoed[0] != self._batch:
            self.rejected["other_batch"] += 1
            raise web.HTTPNotFound()
        hook = echoed[1] if echoed is not None else path_hook
        if hook is None or not self._awaited(hook):
            self.rejected["not_awaited"] += 1
            raise web.HTTPNotFound()
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

    def _awaited(self, hook: tuple[str, str]) -> bool:
        return hook[1] in self._issued.get(hook[0], ())

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


def _path_hook(request: web.Request) -> tuple[str, str] | None:
    """The ``(row, stage)`` a hook URL's path names (None: posted to ``/hooks/{secret}``)."""
    row, stage = request.match_info.get("row"), request.match_info.get("stage")
    return (row, stage) if row is not None and stage is not None else None


def _echoed_input(body: Any) -> tuple[str, tuple[str, str]] | None:
    """``(batch, (row, stage))`` from the callback's echoed ``webhookInput``, at the top level
    or inside ``data`` (module docstring); None when there is none of ours (no echo, or an
    object without a row and a stage: the URL path decides then)."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    for source in (body, data if isinstance(data, dict) else {}):
        echoed = source.get(WEBHOOK_INPUT)
        if isinstance(echoed, dict):
            batch, row, stage = echoed.get("batch"), echoed.get("row"), echoed.get("stage")
            if isinstance(row, str) and isinstance(stage, str) and row and stage:
                return (batch if isinstance(batch, str) else ""), (row, stage)
    return None


def _job_id(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    job_id = body.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        data = body.get("data")
        job_id = data.get("job_id") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) and job_id else None
