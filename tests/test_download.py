"""The download stage against a small local server: which URLs are followed, redirects, cut-short
bodies resumed with Range, and refused links re-read from the job.

A row whose render is recorded (``render_job`` + ``render_ready`` in the ledger) goes straight to
its download when ``run_row`` runs it, exactly as on a resume.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from pydantic import SecretStr

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.transport import _range_start
from orchestrator.clock import RealClock
from orchestrator.config import ApiConfig, Credentials, PollConfig
from orchestrator.errors import PermanentError
from orchestrator.events import ListSink
from orchestrator.ledger.file import FileLedger
from orchestrator.ledger.records import (
    PreviewJob,
    PreviewReady,
    RenderIntent,
    RenderJob,
    RenderReady,
)
from orchestrator.run.pipeline import run_row
from orchestrator.run.stages.base import RowJob, Services
from orchestrator.simulator.media import clip_bytes

BODY = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 400  # an MP4 head
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()
RENDER_JOB = "render-1"


@dataclass
class VideoServer:
    """The API's token and job endpoints plus a CDN with misbehaving video links."""

    root: str = ""
    ranges: list[str | None] = field(default_factory=list)
    job_reads: int = 0
    cut_next: bool = True

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/oauth2/token", self.token)
        app.router.add_get("/api/v1/jobs/{id}", self.job)
        app.router.add_get("/video/fresh.mp4", self.fresh)
        app.router.add_get("/video/cut.mp4", self.cut)
        app.router.add_get("/video/expired.mp4", self.expired)
        app.router.add_get("/hop/{n}", self.hop)
        app.router.add_get("/loop", self.loop)
        app.router.add_get("/to-file", self.to_file)
        app.router.add_get("/video/clip.mp4", self.clip)
        app.router.add_get("/video/other-range.mp4", self.other_range)
        app.router.add_get("/video/page-range.mp4", self.page_range)
        return app

    async def other_range(self, request: web.Request) -> web.StreamResponse:
        """Cut short first (as ``cut``); asked for the rest, it answers 206 with the whole
        body from byte 0 and says so in ``Content-Range``; asked for all of it, it sends it."""
        if not self.ranges:
            return await self.cut(request)
        self.ranges.append(request.headers.get("Range"))
        if request.headers.get("Range"):
            return web.Response(
                status=206,
                body=BODY,
                content_type="video/mp4",
                headers={"Content-Range": f"bytes 0-{len(BODY) - 1}/{len(BODY)}"},
            )
        return web.Response(body=BODY, content_type="video/mp4")

    async def page_range(self, request: web.Request) -> web.StreamResponse:
        """Cut short first (as ``cut``); asked for the rest, a 206 web page of the right range."""
        if not self.ranges:
            return await self.cut(request)
        self.ranges.append(request.headers.get("Range"))
        start = int(request.headers.get("Range", "bytes=0-").removeprefix("bytes=").rstrip("-"))
        page = b"<html>please sign in</html>"
        return web.Response(
            status=206,
            body=page,
            content_type="text/html",
            headers={"Content-Range": f"bytes {start}-{start + len(page) - 1}/*"},
        )

    async def clip(self, request: web.Request) -> web.Response:
        """A real (tiny) MP4, as the simulator's CDN serves it."""
        return web.Response(body=clip_bytes(), content_type="video/mp4")

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t", "expires_in": 3600})

    async def job(self, request: web.Request) -> web.Response:
        self.job_reads += 1
        data = {"status": "completed", "videoURL": f"{self.root}/video/fresh.mp4"}
        return web.json_response({"success": True, "data": data})

    async def fresh(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=BODY, content_type="video/mp4")

    async def cut(self, request: web.Request) -> web.StreamResponse:
        """The first answer promises every byte and closes after a third; later ones honour
        ``Range`` (206)."""
        self.ranges.append(request.headers.get("Range"))
        start = 0
        if request.headers.get("Range"):
            start = int(request.headers["Range"].removeprefix("bytes=").rstrip("-"))
        resp = web.StreamResponse(status=206 if start else 200)
        resp.content_length = len(BODY) - start
        resp.content_type = "video/mp4"
        if start:
            resp.headers["Content-Range"] = f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
        await resp.prepare(request)
        if self.cut_next:
            self.cut_next = False
            await resp.write(BODY[: len(BODY) // 3])
            await asyncio.sleep(0.05)  # let the client take those bytes before the cut
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write(BODY[start:])
        await resp.write_eof()
        return resp

    async def expired(self, request: web.Request) -> web.Response:
        return web.Response(status=403, text="AccessDenied: the link has expired\n")

    async def hop(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        target = f"/hop/{n - 1}" if n > 0 else "/video/fresh.mp4"
        raise web.HTTPFound(target)

    async def loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def to_file(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")


@pytest.fixture
async def server() -> AsyncIterator[VideoServer]:
    videos = VideoServer()
    runner = web.AppRunner(videos.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    videos.root = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield videos
    await runner.cleanup()


@dataclass
class Harness:
    svc: Services
    ledger: FileLedger
    videos: Path


@pytest.fixture
async def harness(server: VideoServer, tmp_path: Path) -> AsyncIterator[Any]:
    """``await make(attempts)`` → a Services over a real client, ledger and videos folder."""
    made: list[tuple[PictoryClient, FileLedger]] = []

    async def make(attempts: int = 4, partials: frozenset[str] = frozenset()) -> Harness:
        clock = RealClock()
        policy = RetryPolicy(max_attempts=attempts, base_delay_s=0.0, max_delay_s=0.0)
        client = PictoryClient(
            ApiConfig(base_url=server.root + "/api"),
            Credentials(client_id=SecretStr("c"), client_secret=SecretStr("s"), user_id="u"),
            clock=clock,
            limiter=RateLimiter(clock, max_rps=1000),
            retry_policy=policy,
            rng=random.Random(0),
        )
        await client.__aenter__()
        ledger = FileLedger.open(tmp_path / "run")
        made.append((client, ledger))
        videos = tmp_path / "run" / "videos"
        videos.mkdir(exist_ok=True)
        svc = Services(
            client=client,
            ledger=ledger,
            clock=clock,
            sink=ListSink(),
            poll=PollConfig(),
            videos_dir=videos,
            render_slots=anyio.Semaphore(1),
            download_slots=anyio.Semaphore(1),
            templates=None,
            admission=None,
            transfer_policy=policy,
            partials=partials,
        )
        return Harness(svc, ledger, videos)

    yield make
    for client, ledger in made:
        ledger.close()
        await client.__aexit__(None, None, None)


async def _rendered_row(h: Harness, video_url: str) -> RowJob:
    """A row whose render finished with ``video_url``, as the ledger of a resumed run holds it."""
    row = RowJob(row_id="r1", line=2, variables={}, template=None, output_name="r1.mp4")
    for event in (
        PreviewJob(row="r1", job="preview-1"),
        PreviewReady(row="r1", job="preview-1"),
        RenderIntent(row="r1", preview_job="preview-1"),
        RenderJob(row="r1", job=RENDER_JOB),
        RenderReady(row="r1", job=RENDER_JOB, video_url=video_url),
    ):
        await h.ledger.append(event)
    return row


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/v.mp4", "/v.mp4"])
async def test_non_http_video_url_fails_the_row_permanently(harness: Any, url: str) -> None:
    """A video URL that is not http(s) is never followed: the row fails permanently, no file."""
    h = await harness()
    row = await _rendered_row(h, url)
    assert await run_row(row, h.svc) == "failed"
    state = h.ledger.state.rows["r1"]
    assert state.fail_permanent and state.fail_stage == "download"
    assert "only http(s) is followed" in (state.fail_message or "")
    assert list(h.videos.iterdir()) == []


async def test_redirects_are_followed_up_to_the_cap(harness: Any, server: VideoServer) -> None:
    """A few redirects are followed to the video; the file is the served bytes."""
    h = await harness()
    row = await _rendered_row(h, f"{server.root}/hop/3")
    assert await run_row(row, h.svc) == "done"
    assert hashlib.sha256((h.videos / "r1.mp4").read_bytes()).hexdigest() == BODY_SHA256


@pytest.mark.parametrize("path", ["/loop", "/hop/9", "/to-file"])
async def test_endless_or_non_http_redirect_fails_permanently(
    harness: Any, server: VideoServer, path: str
) -> None:
    """A redirect loop, a chain past the cap, or a redirect to a non-http(s) URL fails the row
    permanently at once (no retries), and no file appears."""
    h = await harness()
    row = await _rendered_row(h, server.root + path)
    assert await run_row(row, h.svc) == "failed"
    state = h.ledger.state.rows["r1"]
    assert state.fail_permanent, state.fail_message
    assert not (h.videos / "r1.mp4").exists()


async def test_cut_short_download_is_never_renamed_into_place(
    harness: Any, server: VideoServer
) -> None:
    """A body shorter than its Content-Length fails the attempt: the bytes stay in .r1.mp4.part
    and no r1.mp4 appears; the row is left for the next run (not permanent)."""
    h = await harness(1)
    row = await _rendered_row(h, f"{server.root}/video/cut.mp4")
    assert await run_row(row, h.svc) == "failed"
    state = h.ledger.state.rows["r1"]
    assert state.fail_kind == "download" and not state.fail_permanent
    assert not (h.videos / "r1.mp4").exists()
    assert (h.videos / ".r1.mp4.part").read_bytes() == BODY[: len(BODY) // 3]


async def test_cut_short_download_resumes_with_range(harness: Any, server: VideoServer) -> None:
    """The retry asks for the rest with Range and appends it: the final file is whole, its sha256
    is the served one, and the partial file is gone."""
    h = await harness()
    row = await _rendered_row(h, f"{server.root}/video/cut.mp4")
    assert await run_row(row, h.svc) == "done"
    assert server.ranges == [None, f"bytes={len(BODY) // 3}-"]
    assert (h.videos / "r1.mp4").read_bytes() == BODY
    assert h.ledger.state.rows["r1"].sha256 == BODY_SHA256
    assert not (h.videos / ".r1.mp4.part").exists()


async def test_a_resume_answered_with_another_range_starts_over(
    harness: Any, server: VideoServer
) -> None:
    """A 206 whose ``Content-Range`` does not start where the partial file ends is not the
    rest of that file: the partial is dropped and the video asked for whole, never spliced."""
    h = await harness()
    row = await _rendered_row(h, f"{server.root}/video/other-range.mp4")
    assert await run_row(row, h.svc) == "done"
    assert server.ranges == [None, f"bytes={len(BODY) // 3}-", None]
    assert (h.videos / "r1.mp4").read_bytes() == BODY
    assert h.ledger.state.rows["r1"].sha256 == BODY_SHA256


async def test_a_resume_answered_with_a_web_page_is_not_appended(
    harness: Any, server: VideoServer
) -> None:
    """A resumed download answered by a web page (a 206 of type text/html) is refused as not a
    video, like a first answer would be: the partial file is dropped and the job read again
    for a fresh link, so the recorded video is the whole MP4 with no page inside."""
    h = await harness()
    row = await _rendered_row(h, f"{server.root}/video/page-range.mp4")
    assert await run_row(row, h.svc) == "done"
    assert server.ranges == [None, f"bytes={len(BODY) // 3}-"]
    assert server.job_reads == 1  # the fresh link: /video/fresh.mp4
    assert (h.videos / "r1.mp4").read_bytes() == BODY
    assert h.ledger.state.rows["r1"].sha256 == BODY_SHA256


@pytest.mark.parametrize("listed", [True, False])
async def test_a_partial_an_earlier_run_left_is_resumed_when_the_run_found_it(
    harness: Any, server: VideoServer, listed: bool
) -> None:
    """A ``.NAME.part`` found when the run started (``Services.partials``) is resumed with Range;
    a download the run did not expect to find one for asks for the whole file and writes over
    whatever is there (no look for it: a worker-thread hop a video). Either way the video is
    whole."""
    server.cut_next = False
    h = await harness(partials=frozenset({".r1.mp4.part"}) if listed else frozenset())
    have = len(BODY) // 2
    (h.videos / ".r1.mp4.part").write_bytes(BODY[:have] if listed else b"stale bytes")
    row = await _rendered_row(h, f"{server.root}/video/cut.mp4")
    assert await run_row(row, h.svc) == "done"
    assert server.ranges == ([f"bytes={have}-"] if listed else [None])
    assert (h.videos / "r1.mp4").read_bytes() == BODY
    assert not (h.videos / ".r1.mp4.part").exists()


async def test_refused_link_is_re_read_from_the_job(harness: Any, server: VideoServer) -> None:
    """A 403 on the recorded video URL (expired) makes the stage read the render job again and
    download from the fresh URL; nothing is rendered again."""
    h = await harness()
    row = await _rendered_row(h, f"{server.root}/video/expired.mp4")
    assert await run_row(row, h.svc) == "done"
    assert server.job_reads == 1
    assert (h.videos / "r1.mp4").read_bytes() == BODY


async def test_client_refuses_non_http_urls_before_touching_the_file(
    harness: Any, tmp_path: Path
) -> None:
    """PictoryClient.download raises PermanentError for a file:// URL and creates no file."""
    h = await harness()
    dest = tmp_path / "x.part"
    with pytest.raises(PermanentError):
        await h.svc.client.download("file:///etc/passwd", dest)
    assert not dest.exists()


async def test_posters_are_made_as_videos_land(harness: Any, server: VideoServer) -> None:
    """With ``[report] posters`` each video's poster frame is made right after its download,
    during the run (the report at the end then has none left to make)."""
    h = await harness()
    h.svc.posters = True
    row = await _rendered_row(h, f"{server.root}/video/clip.mp4")
    assert await run_row(row, h.svc) == "done"
    poster = h.videos.parent / "thumbs" / "r1.jpg"
    assert poster.read_bytes()[:2] == b"\xff\xd8"  # a JPEG, made from the downloaded video


@pytest.mark.parametrize(
    ("header", "start"),
    [
        ("bytes 5-9/10", 5),
        ("bytes 0-9/*", 0),
        ("Bytes 7-9/10", 7),
        ("bytes */10", None),
        ("items 5-9/10", None),
        ("", None),
        (None, None),
    ],
)
def test_range_start_reads_content_range(header: str | None, start: int | None) -> None:
    """The first byte of a 206's ``Content-Range`` (RFC 9110 §14.4); anything else is None,
    so the answer is never appended."""
    assert _range_start(header) == start
