"""A notification receiver on loopback: an aiohttp server in its own thread, for sync tests."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web


class Receiver(threading.Thread):
    """Collects the JSON bodies POSTed to ``url``; answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        super().__init__(daemon=True)
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def __enter__(self) -> Receiver:
        self.start()
        self._ready.wait(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self.join(timeout=10)

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()

        async def hook(request: web.Request) -> web.Response:
            self.bodies.append(json.loads(await request.read()))
            return web.Response(status=self.status, text="ok")

        app = web.Application()
        app.router.add_post("/hooks/secret-key", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hooks/secret-key"
        self._ready.set()
        await self._stopping.wait()
        await runner.cleanup()
