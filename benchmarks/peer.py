"""The script a user would write in an afternoon, as the orchestrator's peer in the benchmarks.

Written in our own words from the API contract (``../shared/pictory-api.md`` §2), the way a
competent user would: one aiohttp session, a token bucket at the account's rate, a semaphore of
rows in flight, fixed polling intervals, ``Retry-After`` honoured on 429, a few blind retries on
5xx and dropped connections, and no ledger. It is the baseline the orchestrator must beat on the
happy path and must beat by far when things go wrong.

    python -m benchmarks.peer MANIFEST TEMPLATE --out DIR --rps 20 --in-flight 160 \\
        --preview-poll 0.5 --render-poll 1.5 [--direct]

Credentials and base URL come from the environment, as for the orchestrator
(``PICTORY_API_BASE_URL``, ``PICTORY_CLIENT_ID``, ``PICTORY_CLIENT_SECRET``,
``PICTORY_USER_ID``). Prints one JSON line: rows done, rows lost (raised after its retries: with
no ledger, a rerun would start them from scratch), requests sent, 429s seen, makespan, and when
each row was done (seconds from the start).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

BLIND_RETRIES = 5
RETRY_PAUSE_S = 1.0


class Peer:
    def __init__(self, base_url: str, rps: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.interval_s = 1.0 / rps
        self.next_slot = 0.0
        self.token: str | None = None
        self.token_lock = asyncio.Lock()
        self.requests = 0
        self.rate_limited = 0
        self.session: aiohttp.ClientSession | None = None

    async def slot(self) -> None:
        """A token bucket of one token refilled at ``rps``: requests go out evenly spaced."""
        now = time.monotonic()
        self.next_slot = max(self.next_slot, now) + self.interval_s
        await asyncio.sleep(self.next_slot - self.interval_s - now)

    async def fetch_token(self) -> None:
        async with self.token_lock:
            body = await self.call(
                "POST",
                "/v1/oauth2/token",
                {
                    "client_id": os.environ["PICTORY_CLIENT_ID"],
                    "client_secret": os.environ["PICTORY_CLIENT_SECRET"],
                },
                auth=False,
            )
            self.token = body["access_token"]

    async def call(
        self, method: str, path: str, payload: Any = None, *, auth: bool = True, raw: bytes = b""
    ) -> Any:
        assert self.session is not None
        for attempt in range(BLIND_RETRIES + 1):
            headers = {"X-Pictory-User-Id": os.environ.get("PICTORY_USER_ID", "")}
            if auth:
                if self.token is None:
                    await self.fetch_token()
                headers["Authorization"] = self.token or ""
            await self.slot()
            self.requests += 1
            try:
                kwargs: dict[str, Any] = {"headers": headers}
                if raw:
                    kwargs["data"] = raw
                    headers["Content-Type"] = "application/octet-stream"
                elif payload is not None:
                    kwargs["json"] = payload
                async with self.session.request(method, self.base_url + path, **kwargs) as resp:
                    if resp.status == 429:
                        self.rate_limited += 1
                        await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                        continue
                    if resp.status == 401 and auth:
                        self.token = None
                        continue
                    if resp.status >= 500:
                        raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
                    body = await resp.json(content_type=None)
                    if resp.status >= 400 and not path.startswith("/v1/jobs/"):
                        raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {body}")
                    return body
            except (TimeoutError, aiohttp.ClientError):
                if attempt == BLIND_RETRIES:
                    raise
                await asyncio.sleep(RETRY_PAUSE_S)  # and send it again, whatever it was
        raise RuntimeError(f"{method} {path}: still refused after {BLIND_RETRIES} retries")

    async def wait(
        self, job_id: str, poll_s: float, done: str, max_wait_s: float
    ) -> dict[str, Any]:
        give_up_at = time.monotonic() + max_wait_s
        while True:
            if time.monotonic() > give_up_at:
                raise RuntimeError(f"job {job_id} unfinished after {max_wait_s:g} s")
            await asyncio.sleep(poll_s)
            body = await self.call("GET", f"/v1/jobs/{job_id}")
            data = body.get("data") or {}
            if data.get("status") == "failed" or body.get("success") is False:
                raise RuntimeError(f"job {job_id} failed")
            if data.get("status") == "completed" or done in data:
                return dict(data)

    async def row(
        self, template_id: str, row: dict[str, str], args: argparse.Namespace, out: Path
    ) -> None:
        variables = {k: v for k, v in row.items() if k != "id"}
        if args.direct:
            created = await self.call(
                "POST",
                "/v2/video/storyboard/render",
                {"videoName": row["id"], "templateId": template_id, "variables": variables},
            )
            render_id = created["data"]["jobId"]
        else:
            created = await self.call(
                "POST",
                "/v1/video/from-template",
                {"templateId": template_id, "variables": variables},
            )
            preview = await self.wait(
                created["data"]["jobId"], args.preview_poll, "renderParams", args.max_wait
            )
            rendered = await self.call(
                "PUT", f"/v1/video/render/{created['data']['jobId']}", preview["renderParams"]
            )
            render_id = rendered["data"].get("job_id") or rendered["data"].get("jobId")
        done = await self.wait(render_id, args.render_poll, "videoURL", args.max_wait)
        assert self.session is not None
        async with self.session.get(done["videoURL"]) as resp:
            resp.raise_for_status()
            (out / f"{row['id']}.mp4").write_bytes(await resp.read())


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with args.manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    args.out.mkdir(parents=True, exist_ok=True)
    peer = Peer(os.environ["PICTORY_API_BASE_URL"], args.rps)
    gate = asyncio.Semaphore(args.in_flight)
    lost = 0
    done_at_s: list[float] = []  # when each row's video was saved, from the start
    started = time.monotonic()
    async with aiohttp.ClientSession(headers={"User-Agent": "peer-script/1.0"}) as session:
        peer.session = session
        template = await peer.call("POST", "/v1/templates", raw=args.template.read_bytes())

        async def one(row: dict[str, str]) -> None:
            nonlocal lost
            async with gate:
                try:
                    await peer.row(template["templateId"], row, args, args.out)
                    done_at_s.append(round(time.monotonic() - started, 3))
                except Exception:  # a user's script logs it and moves on; the row is lost
                    lost += 1

        await asyncio.gather(*(one(r) for r in rows))
    return {
        "rows": len(rows),
        "done": len(rows) - lost,
        "lost": lost,
        "requests": peer.requests,
        "rate_limited": peer.rate_limited,
        "makespan_s": round(time.monotonic() - started, 3),
        "done_at_s": sorted(done_at_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("template", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rps", type=float, required=True)
    parser.add_argument("--in-flight", type=int, required=True)
    parser.add_argument("--preview-poll", type=float, default=2.0)
    parser.add_argument("--render-poll", type=float, default=5.0)
    parser.add_argument("--max-wait", type=float, default=600.0, help="give up on a job after")
    parser.add_argument("--direct", action="store_true", help="POST /v2/video/storyboard/render")
    report = asyncio.run(main_async(parser.parse_args()))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
