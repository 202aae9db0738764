"""Helpers for the simulator's tests: a manual clock, a sample project, and a small JSON client that
speaks the documented API over loopback with plain aiohttp requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from orchestrator.simulator import RunningSimulator

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PROJECT = REPO_ROOT / ".." / "shared" / "fixtures" / "pictory-sample-project.pictai"
API_KEY = "pictai_test_key_1"
OTHER_API_KEY = "pictai_test_key_2"

PROJECT: dict[str, Any] = {
    "projectName": "Welcome",
    "scriptLanguage": "en",
    "title": "For {{customer_name}}",
    "audio": {"selectedTrackName": "Soul Lifting"},
    "scenes": [
        {
            "sceneId": 1,
            "sentence": "Hello <strong>{{customer_name}}</strong>",
            "image": "https://cdn.example/clip.mp4?x=1",
            "lines": [{"text": "Hello {{ customer_name }}, welcome to {{company}}!"}],
        },
        {
            "sceneId": 2,
            "sentence": "Bye {{first name}}",
            "image": "https://cdn.example/still.jpg",
        },
    ],
}
PROJECT_BYTES = json.dumps(PROJECT).encode()
VARIABLES = {"customer_name": "Ada", "company": "Acme", "first name": "Ada"}


class ManualClock:
    """A clock that only moves when told to (simulator times are compared with it)."""

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any = field(repr=False)


class Api:
    """Plain aiohttp calls against the simulator's base URL with one set of credentials."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        sim: RunningSimulator,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.session = session
        self.sim = sim
        self.headers = dict(headers if headers is not None else {"Authorization": API_KEY})

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        all_headers = {**self.headers, **(headers or {})}
        async with self.session.request(
            method, self.sim.base_url + path, json=json_body, data=data, headers=all_headers
        ) as resp:
            raw = await resp.read()
            body = json.loads(raw) if raw else None
            return Answer(resp.status, body, resp.headers)

    async def login_legacy(self, client_id: str = "client-1") -> str:
        """Get a token and use it (bare) with the user-id header from now on."""
        answer = await self.call(
            "POST",
            "/v1/oauth2/token",
            json_body={"client_id": client_id, "client_secret": "s3cret"},
            headers={"Authorization": ""},
        )
        assert answer.status == 200, answer.body
        token: str = answer.body["access_token"]
        self.headers = {"Authorization": token, "X-Pictory-User-Id": "user-1"}
        return token

    async def upload(self, project: bytes = PROJECT_BYTES) -> dict[str, Any]:
        answer = await self.call(
            "POST",
            "/v1/templates",
            data=project,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert answer.status == 200, answer.body
        body: dict[str, Any] = answer.body
        return body

    async def preview(self, template_id: str, variables: dict[str, str] | None = None) -> str:
        answer = await self.call(
            "POST",
            "/v1/video/from-template",
            json_body={
                "templateId": template_id,
                "variables": VARIABLES if variables is None else variables,
            },
        )
        assert answer.status == 200, answer.body
        job_id: str = answer.body["data"]["jobId"]
        return job_id

    async def job(self, job_id: str) -> Answer:
        return await self.call("GET", f"/v1/jobs/{job_id}")

    async def render(self, preview_id: str, body: dict[str, Any] | None = None) -> str:
        answer = await self.call("PUT", f"/v1/video/render/{preview_id}", json_body=body or {})
        assert answer.status == 200, answer.body
        data = answer.body["data"]
        job_id: str = data.get("job_id") or data["jobId"]
        return job_id

    async def wait(self, job_id: str, timeout_s: float = 3.0) -> Answer:
        """Poll (real time, a few ms apart) until the job is completed or failed."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            answer = await self.job(job_id)
            data = answer.body.get("data", {})
            if data.get("status") in ("completed", "failed") or "renderParams" in data:
                return answer
            assert asyncio.get_running_loop().time() < deadline, f"job {job_id} never finished"
            await asyncio.sleep(0.005)


MakeSim = Callable[..., Awaitable[RunningSimulator]]
