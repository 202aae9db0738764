"""Everything outside ``/pictoryapis``: the CDN, the upload storage and the stats.

- ``GET /__cdn__/{kind}/{name}?expires=..&sig=..``: a finished job's files (``videos``,
  ``previews``, ``audio``, ``thumbnails``, ``subtitles``). No auth, no rate limit (it models a
  CDN); ``Content-Length``, ``ETag``, ``Range`` (206 + ``Content-Range``, 416 past the end),
  ``If-None-Match`` (304). 403 for a bad signature or an expired link, 404 for a job gone.
- ``PUT /__storage__/{key}?expires=..&sig=..``: the signed upload from ``generateUrl``. No auth;
  the ``Content-Type`` must be the one that was signed. The body is streamed and only its size
  and SHA-256 are kept.
- ``GET /__share__/{jobId}/{shareId}``: a viewing page (``text/html``, see ``pages``).
- ``GET /__stock__/{library}/{name}``: stock media found by ``GET /v1/media/search``
  (see ``stock``).
- ``GET /__sim__/stats``: ``Simulator.stats()`` as JSON.
- ``GET /__editor__/{jobId}``: the stub page a transcription's ``editVideoUrl`` points to.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from orchestrator.simulator import media, pages, stock
from orchestrator.simulator.answers import json_response
from orchestrator.simulator.core import CDN_PREFIX, STORAGE_PREFIX, Simulator
from orchestrator.simulator.jobs import Job, JobKind, Phase
from orchestrator.simulator.routes_api import SIM_KEY
from orchestrator.simulator.transcripts import EDITOR_PREFIX, editor_page
from orchestrator.simulator.views import render_subtitles, transcript_lines, video_box

UPLOAD_CHUNK_BYTES = 64 * 1024
DOWNLOAD_CHUNK_BYTES = 64 * 1024
_TEXT_TYPES = {
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "txt": "text/plain",
}


def _denied(message: str) -> web.Response:
    return web.Response(status=403, text=f"AccessDenied: {message}\n")


def _check_link(sim: Simulator, request: web.Request, extra: str = "") -> web.Response | None:
    """None if the signed link is valid now, else the 403 to answer."""
    expires = sim.signer.check(
        request.rel_url.raw_path, request.query.get("expires"), request.query.get("sig"), extra
    )
    if expires < 0:
        hint = " (the Content-Type must be exactly the one given to generateUrl)" if extra else ""
        return _denied(f"the signature does not match{hint}")
    if sim.now() > expires:
        return _denied("the link has expired; read the job again for a fresh one")
    return None


def _file(kind: str, ext: str, job: Job) -> tuple[bytes, str, str] | None:
    """``(body, content_type, etag)`` of one of a finished job's files."""
    box = video_box(kind, job)
    if box is not None and ext in ("mp4", "m4a"):
        digest = job.video if kind in ("videos", "audio") and job.video else None
        if digest is None:
            digest = media.video_digest(box)
        content_type = "audio/mp4" if kind in ("audio", "tts") else media.VIDEO_CONTENT_TYPE
        return media.video_bytes(box), content_type, digest.etag
    if kind == "thumbnails" and ext == "jpg":
        body = media.THUMBNAIL_JPEG
    elif kind == "subtitles" and ext in _TEXT_TYPES:
        if job.kind is JobKind.TRANSCRIPTION:
            body = media.subtitles(transcript_lines(job), ext, 4.0).encode()
        else:
            body = render_subtitles(job, ext).encode()
    else:
        return None
    content_type = _TEXT_TYPES.get(ext, "image/jpeg")
    return body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


async def cdn(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    denied = _check_link(sim, request)
    if denied is not None:
        return denied
    job_id, _, ext = request.match_info["name"].rpartition(".")
    job = sim.jobs.get(job_id, sim.now())
    if job is None or job.phase(sim.now()) is not Phase.DONE:
        return web.Response(status=404, text="NoSuchKey: the job is gone\n")
    found = _file(request.match_info["kind"], ext, job)
    if found is None:
        return web.Response(status=404, text="NoSuchKey\n")
    body, content_type, etag = found
    if request.match_info["kind"] == "videos" and sim.faults.html_instead_of_video():
        return web.Response(text=HTML_INSTEAD_OF_VIDEO, content_type="text/html")
    return await _serve(sim, request, body, content_type, etag)


HTML_INSTEAD_OF_VIDEO = "<!doctype html><title>Pictory</title><p>Sign in to watch this video.</p>\n"
"""What the ``fault_html_video_p`` fault answers at a video link."""


async def _serve(
    sim: Simulator, request: web.Request, body: bytes, content_type: str, etag: str
) -> web.StreamResponse:
    size = len(body)
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range != etag:
        range_header = None
    try:
        window = media.parse_range(range_header, size)
    except media.RangeNotSatisfiable:
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    status, start, end = 200, 0, size - 1
    if window is not None:
        status, (start, end) = 206, window
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_type = content_type
    resp.content_length = length
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    cut_at = sim.faults.download_cut_at(length)
    stop = start + (cut_at if cut_at is not None else length)
    for offset in range(start, stop, DOWNLOAD_CHUNK_BYTES):
        await resp.write(body[offset : min(stop, offset + DOWNLOAD_CHUNK_BYTES)])
    if cut_at is not None:
        if request.transport is not None:
            request.transport.close()
        return resp
    await resp.write_eof()
    return resp


async def storage_put(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    denied = _check_link(sim, request, request.headers.get("Content-Type", ""))
    if denied is not None:
        return denied
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_chunked(UPLOAD_CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    sim.accounting.upload_count += 1
    sim.accounting.upload_bytes += size
    return web.Response(status=200, headers={"ETag": f'"{digest.hexdigest()[:32]}"'})


async def share_page(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return pages.share_page(sim, request.match_info["job_id"], request.match_info["share_id"])


async def stock_file(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    found = stock.stock_file(request.match_info["library"], request.match_info["name"])
    if found is None:
        return web.Response(status=404, text="NoSuchKey\n")
    body, content_type = found
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return await _serve(sim, request, body, content_type, etag)


async def editor(request: web.Request) -> web.Response:
    """The stub behind a transcription's ``editVideoUrl`` (§5.2): an HTML page, no auth."""
    return web.Response(text=editor_page(request.match_info["id"]), content_type="text/html")


async def stats(request: web.Request) -> web.Response:
    return json_response(request.app[SIM_KEY].stats())


def add_routes(app: web.Application) -> None:
    """Register the routes outside ``/pictoryapis``."""
    app.router.add_get(CDN_PREFIX + "/{kind}/{name}", cdn)
    app.router.add_put(STORAGE_PREFIX + "/{key:.+}", storage_put)
    app.router.add_get(pages.SHARE_PREFIX + "/{job_id}/{share_id}", share_page)
    app.router.add_get(stock.STOCK_PREFIX + "/{library}/{name}", stock_file)
    app.router.add_get("/__sim__/stats", stats)
    app.router.add_get(EDITOR_PREFIX + "/{id}", editor)
