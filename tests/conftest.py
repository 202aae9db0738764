"""Shared fixtures: a simulator running beside the test, and the CLI called as users call it."""

from __future__ import annotations

import asyncio
import json
import threading
import types
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import core as aioresponses_core

from orchestrator.simulator import SimSettings, running_simulator
from orchestrator.simulator.process import cli_env
from orchestrator.simulator.routes_api import RouteSpec

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "jobs"


@dataclass
class SimHandle:
    """A simulator served from its own thread and event loop, so sync tests can drive the CLI."""

    base_url: str
    _root: str

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self._root + "/__sim__/stats", timeout=10) as resp:
            data: dict[str, Any] = json.load(resp)
            return data

    def env(self) -> dict[str, str]:
        """The environment a user would set to point a CLI process at this simulator (the test
        account's client credentials, as ``api`` uses; no API key)."""
        return cli_env(self.base_url, account="test")

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """One call to the simulated API, as the test account (``api_env``'s credentials)."""
        headers = {"Content-Type": "application/json", "X-Pictory-User-Id": "test-user"}
        if token:
            headers["Authorization"] = token
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.load(resp)

    def clean_job(self, job_id: str) -> None:
        """``DELETE /v1/jobs/{id}/clean`` as the test account: the job answers ``cleaned``."""
        credentials = {"client_id": "test-client", "client_secret": "s"}
        token = self.api("POST", "/v1/oauth2/token", credentials)["access_token"]
        assert self.api("DELETE", f"/v1/jobs/{job_id}/clean", token=token)["success"] is True


class _SimThread(threading.Thread):
    def __init__(self, settings: SimSettings, extra_routes: Sequence[RouteSpec] = ()) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.extra_routes = extra_routes
        self.ready = threading.Event()
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            async with running_simulator(
                self.settings, host="127.0.0.1", port=0, extra_routes=self.extra_routes
            ) as sim:
                self.base_url = sim.base_url
                self.ready.set()
                await self._stop_event.wait()
        except BaseException as exc:  # surfaced to the test by the fixture
            self.error = exc
            self.ready.set()

    def stop(self) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout=10)


@pytest.fixture
def make_sim() -> Iterator[Any]:
    """Factory: ``make_sim(profile="test", extra_routes=(), **overrides)`` → a running SimHandle;
    closed after. ``extra_routes``: API routes beyond Pictory's (see ``create_app``)."""
    threads: list[_SimThread] = []

    def make(
        profile: str = "test", extra_routes: Sequence[RouteSpec] = (), **overrides: Any
    ) -> SimHandle:
        thread = _SimThread(SimSettings.for_profile(profile, **overrides), extra_routes)
        thread.start()
        thread.ready.wait(timeout=10)
        if thread.error is not None:
            raise thread.error
        threads.append(thread)
        root = thread.base_url.rsplit("/pictoryapis", 1)[0]
        return SimHandle(base_url=thread.base_url, _root=root)

    yield make
    for thread in threads:
        thread.stop()


@pytest.fixture(autouse=True)
def _no_calibration_profiles(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    """Calibration profiles are looked up under ``XDG_CONFIG_HOME`` (docs/calibrate.md): point it
    at an empty folder, so a profile on the machine running the tests changes no test's limits."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the CLI at a simulator with client credentials, as a user would in the shell."""

    def point(sim: SimHandle, **extra: str) -> None:
        monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
        monkeypatch.setenv("PICTORY_CLIENT_ID", extra.get("client_id", "test-client"))
        monkeypatch.setenv("PICTORY_CLIENT_SECRET", extra.get("client_secret", "test-secret"))
        monkeypatch.setenv("PICTORY_USER_ID", extra.get("user_id", "test-user"))
        monkeypatch.delenv("PICTORY_API_KEY", raising=False)

    return point


class _CompatResponse(aiohttp.ClientResponse):
    """aiohttp 3.14 made ``stream_writer`` a required argument that aioresponses 0.7.x does not
    pass (pnuckowski/aioresponses#289); canned answers never need one."""

    def __init__(self, *args: Any, stream_writer: Any = None, **kwargs: Any) -> None:
        writer = stream_writer or types.SimpleNamespace(output_size=0)
        super().__init__(*args, stream_writer=writer, **kwargs)


@pytest.fixture
def aioresponses_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of the aiohttp transport against aioresponses' canned answers (the client's own
    logic is tested on ``memory_transport.MemoryTransport``)."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real S3 server (moto, ``tests.s3_server``) with a bucket ``videos``; the AWS variables
    point at it, as a user's would (imported here only when a test asks for it)."""
    from tests.s3_server import aws_env, s3_server

    with s3_server() as server:
        for name, value in aws_env(server.url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        server.client.create_bucket(Bucket="videos")
        yield server
