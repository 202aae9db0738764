"""Viewing pages: what ``shareVideoURL`` / ``videoShareURL`` of a render and ``preview`` of a
preview point at (contract §5.5).

Pictory's share URLs are web pages (``https://video.pictory.ai/<projectId>/<shareId>``), not video
files [doc][sample S], and a preview's ``preview`` is a player page [doc]. The simulator serves
each as a small ``text/html`` page at ``/__share__/{jobId}/{shareId}`` that embeds the job's
video through a fresh signed CDN link. [choice] The ``shareId`` is derived from the job id and the
simulator's secret, so the pages need no state; a page answers 404 once its job is cleaned
(``DELETE /v1/jobs/{id}/clean`` or retention) or if the ``shareId`` is wrong.
"""

from __future__ import annotations

import hmac
import html

from aiohttp import web

from orchestrator.simulator.core import Simulator
from orchestrator.simulator.jobs import Job, JobKind, Phase

SHARE_PREFIX = "/__share__"
PAGE_CONTENT_TYPE = "text/html"


def _share_id(sim: Simulator, job_id: str) -> str:
    return sim.signer.signature(f"{SHARE_PREFIX}/{job_id}", 0)[:16]


def page_url(sim: Simulator, job: Job) -> str:
    """The viewing page of a finished render or preview."""
    return f"{sim.public_url}{SHARE_PREFIX}/{job.job_id}/{_share_id(sim, job.job_id)}"


def _page(title: str, video_url: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<video controls src="{html.escape(video_url)}"></video>\n'
        "</body></html>\n"
    )


def share_page(sim: Simulator, job_id: str, share_id: str) -> web.Response:
    """``GET /__share__/{job_id}/{share_id}``: the page, or 404."""
    if not hmac.compare_digest(_share_id(sim, job_id), share_id):
        return web.Response(status=404, text="Not found\n")
    now = sim.now()
    job = sim.jobs.get(job_id, now)
    if job is None or job.phase(now) is not Phase.DONE:
        return web.Response(status=404, text="Not found: the video is gone\n")
    if job.kind is JobKind.RENDER:
        title, video = "Pictory video", sim.link("videos", f"{job_id}.mp4", now)
    elif job.kind is JobKind.PREVIEW:
        title, video = "Pictory preview", sim.link("previews", f"{job_id}.mp4", now)
    else:
        return web.Response(status=404, text="Not found\n")
    return web.Response(text=_page(title, video), content_type=PAGE_CONTENT_TYPE)
