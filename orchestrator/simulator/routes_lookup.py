"""The look-up and list routes an API-key client uses (contract §6.2, §6.4), beside ``routes_api``.

Served to both credential kinds and counted, authenticated and rate-limited by the middleware
like every other route. Shapes [doc] are those of the docs.pictory.ai API reference pages, and
the fields named in Pictory's skill reference [S2]; the values come from ``catalogue``.

- ``GET /v1/jobs`` → ``{"items": [job answer…], "nextPageKey": "…" | null}`` [doc "List Jobs"]:
  this account's retained jobs, newest first, each as ``GET /v1/jobs/{id}`` answers it with
  ``data.jobId`` added (as the doc's items carry it). [choice] ``JOBS_PER_PAGE`` a page; the key
  is base64 of ``{"offset": n}`` (a job created between two pages shifts the next one by one).
  The contract's earlier [choice] (``data.items[]``) predates the published page, which wins.
- ``GET /v2/projects`` → ``{"items": [{"id", "name", "source", "projectPreview", "savedDate",
  "schemaVersion", "type"}], "pageKey": null}`` [doc "List Projects"]. [choice] A project is
  what a v2 storyboard preview or direct render saved with ``saveProject: true`` (the docs:
  "Projects can be created via the Create Storyboard Preview API with saveProject: true");
  its id is the preview job's id, its ``projectPreview`` the thumbnail of its newest finished
  render (null before), ``source`` ``"script"``, ``schemaVersion`` ``"v3"``; it is forgotten
  with its jobs (retention, clean). One page, always.
- ``POST /v2/projects/{id}/render`` (body optional: [choice] ``{"webhook"}`` as on the other
  render routes) → ``{"success": true, "data": {"jobId"}}`` [doc "Render Project"], a billed
  render job. [choice] An unknown project is 404 ``PROJECT_NOT_FOUND``; a preview still
  running is 409 ``PREVIEW_NOT_READY`` (legacy envelope, §1).
- ``GET /v1/voiceovers/tracks`` → a bare list of voices [doc "Get Voiceover Tracks"].
- ``POST /v1/music/search`` (body optional) → ``{"items": [track…]}`` [doc "Search Music"]:
  ``page`` ≥ 1, ``pageSize`` 20–100, ``sort`` ``latest``|``shuffle``|``featured``, filters
  ``genreGroup``, ``genre``, ``mood``, ``instrument``, ``purpose`` and their ``not*`` forms
  (lists of exact, case-sensitive values), ``minDuration``/``maxDuration`` (s), ``query``
  [doc][S2]. A value out of range is 400 ``INVALID_REQUEST_BODY``. [choice]s: defaults page 1,
  pageSize 20, sort featured; a filter keeps a track having any of its values, filters combine
  with AND; a string is taken as a one-value list; ``query`` keeps tracks whose title, genres,
  moods, instruments or purposes contain every word of it (case-insensitive); ``shuffle`` is a
  fixed order per query; only ``items`` is answered (a short page is the last).
- ``GET /v1/music/{moods,genres,genres/groups,instruments,purposes}`` → bare lists of strings
  [doc][S2].
- ``GET /v1/avatars`` → ``{"items": [group…], "nextPageKey": null}``; ``GET /v1/brands/video``
  and ``GET /v1/styles`` → bare lists of ``{"id", "name"}``; ``GET /v1/smartlayouts`` →
  ``{"items": [{"templateId", "templateName", "schemaVersion"}]}`` [doc].
- ``GET /v1/aicredits/usage``: ``credit_usage``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from orchestrator.simulator import catalogue, credit_usage
from orchestrator.simulator.answers import (
    ApiProblem,
    invalid_body,
    json_response,
    ok,
    optional_str,
    read_json_object,
)
from orchestrator.simulator.core import Simulator
from orchestrator.simulator.jobs import Job, JobKind, Phase
from orchestrator.simulator.routes_api import CURRENT_ACCOUNT, SIM_KEY, Handler, RouteSpec
from orchestrator.simulator.views import job_body

JOBS_PER_PAGE = 50
MUSIC_PAGE_SIZE_DEFAULT = 20
MUSIC_PAGE_SIZE_RANGE = (20, 100)
MUSIC_SORTS = ("featured", "latest", "shuffle")
MUSIC_FILTERS = {
    "genreGroup": "genre_group",
    "genre": "genres",
    "mood": "moods",
    "instrument": "instruments",
    "purpose": "purposes",
}


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


def _iso(timestamp_s: float) -> str:
    moment = datetime.fromtimestamp(timestamp_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mark_created(job: Job, body: Mapping[str, Any]) -> None:
    """Called for each job a v2 route creates: it answers the documented shapes (a finished
    preview says ``status``), and ``saveProject: true`` saves its preview as a project."""
    job.v2 = True
    name = body.get("videoName")
    if body.get("saveProject") is not True or not isinstance(name, str):
        return
    if job.kind is JobKind.PREVIEW:
        job.project_name = name
    elif job.kind is JobKind.RENDER and job.preview is not None:
        job.preview.project_name = name


def _own_jobs(sim: Simulator, account: str) -> list[Job]:
    """The account's retained jobs, newest first."""
    sim.jobs.purge(sim.now())
    return [job for job in reversed(list(sim.jobs)) if job.account == account]


# --- jobs and projects --------------------------------------------------------------------------


def _offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    try:
        token = json.loads(base64.b64decode(raw, validate=True))
        offset = token["offset"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        offset = None
    if not isinstance(offset, int) or offset < 0:
        raise invalid_body("query parameter 'nextPageKey' must be a key from a previous answer")
    return offset


def _page_key(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /v1/jobs``: this account's jobs, newest first, a page at a time."""
    sim = _sim(request)
    offset = _offset(request.query.get("nextPageKey"))
    jobs = _own_jobs(sim, CURRENT_ACCOUNT.get())
    now = sim.now()
    items = []
    for job in jobs[offset : offset + JOBS_PER_PAGE]:
        answer = job_body(sim, job, now)
        items.append({**answer, "data": {**answer["data"], "jobId": job.job_id}})
    more = offset + JOBS_PER_PAGE < len(jobs)
    next_key = _page_key(offset + JOBS_PER_PAGE) if more else None
    return json_response({"items": items, "nextPageKey": next_key})


def _projects(sim: Simulator, account: str) -> Iterator[tuple[Job, Job | None]]:
    """Each saved project's preview and its newest finished render (or None), newest first."""
    jobs = _own_jobs(sim, account)
    now = sim.now()
    rendered: dict[str, Job] = {}
    for job in jobs:
        preview = job.preview
        if (
            job.kind is JobKind.RENDER
            and preview is not None
            and preview.project_name
            and job.phase(now) is Phase.DONE
        ):
            rendered.setdefault(preview.job_id, job)
    seen: set[str] = set()
    for job in jobs:
        source = job.preview if job.kind is JobKind.RENDER else job
        if source is None or not source.project_name or source.job_id in seen:
            continue
        seen.add(source.job_id)
        yield source, rendered.get(source.job_id)


async def list_projects(request: web.Request) -> web.Response:
    """``GET /v2/projects``: the projects this account saved with ``saveProject: true``."""
    sim = _sim(request)
    now = sim.now()
    items = [
        {
            "id": preview.job_id,
            "name": preview.project_name,
            "source": "script",
            "projectPreview": (
                sim.link("thumbnails", f"{render.job_id}.png", now) if render else None
            ),
            "savedDate": _iso(preview.created_at),
            "schemaVersion": "v3",
            "type": "project",
        }
        for preview, render in _projects(sim, CURRENT_ACCOUNT.get())
    ]
    return json_response({"items": items, "pageKey": None})


async def render_project(request: web.Request) -> web.Response:
    """``POST /v2/projects/{id}/render``: render a saved project (billed)."""
    sim, account = _sim(request), CURRENT_ACCOUNT.get()
    project_id = request.match_info["id"]
    body = await read_json_object(request, empty_ok=True)
    webhook = optional_str(body, "webhook")
    found = next((p for p, _ in _projects(sim, account) if p.job_id == project_id), None)
    if found is None:
        raise ApiProblem(
            404,
            "PROJECT_NOT_FOUND",
            f"no project {project_id} in this account; GET /v2/projects lists them",
        )
    stored = sim.jobs.get(project_id, sim.now()) is found
    job = (
        sim.render_preview(account, project_id, webhook)
        if stored
        else sim.render_direct(account, found, webhook)
    )
    job.v2 = True
    return json_response(ok({"jobId": job.job_id}))


# --- catalogue ----------------------------------------------------------------------------------


async def voice_tracks(request: web.Request) -> web.Response:
    """``GET /v1/voiceovers/tracks``."""
    return json_response(catalogue.voices(_sim(request).public_url))


def _int(body: Mapping[str, Any], field: str, default: int, low: int, high: int | None) -> int:
    value = body.get(field, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f"from {low}"
        raise invalid_body(f"field {field!r} must be a whole number {bounds}")
    return value


def _values(body: Mapping[str, Any], field: str) -> set[str] | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_body(f"field {field!r} must be a list of strings (see GET /v1/music/…)")
    return set(value)


def _duration(body: Mapping[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise invalid_body(f"field {field!r} must be a number of seconds")
    return float(value)


def _track_values(track: catalogue.Track, attribute: str) -> set[str]:
    value = getattr(track, attribute)
    return {value} if isinstance(value, str) else set(value)


def _matches_query(track: catalogue.Track, words: list[str]) -> bool:
    text = " ".join(
        (track.title, *track.genres, *track.moods, *track.instruments, *track.purposes)
    ).lower()
    return all(word in text for word in words)


def search_tracks(body: Mapping[str, Any]) -> list[catalogue.Track]:
    """The page of tracks a music-search body asks for (rules in the module docstring)."""
    page = _int(body, "page", 1, 1, None)
    low, high = MUSIC_PAGE_SIZE_RANGE
    page_size = _int(body, "pageSize", MUSIC_PAGE_SIZE_DEFAULT, low, high)
    sort = body.get("sort", "featured")
    if sort not in MUSIC_SORTS:
        raise invalid_body(f"field 'sort' must be one of {', '.join(MUSIC_SORTS)}")
    query = body.get("query") or ""
    if not isinstance(query, str):
        raise invalid_body("field 'query' must be a string")
    words = query.lower().split()
    wanted = {a: _values(body, f) for f, a in MUSIC_FILTERS.items()}
    unwanted = {a: _values(body, "not" + f[0].upper() + f[1:]) for f, a in MUSIC_FILTERS.items()}
    shortest, longest = _duration(body, "minDuration"), _duration(body, "maxDuration")
    found = [
        t
        for t in catalogue.TRACKS
        if _matches_query(t, words)
        and all(v is None or v & _track_values(t, a) for a, v in wanted.items())
        and not any(v and v & _track_values(t, a) for a, v in unwanted.items())
        and (shortest is None or t.duration_s >= shortest)
        and (longest is None or t.duration_s <= longest)
    ]
    if sort == "latest":
        found.sort(key=lambda t: -t.track_id)
    elif sort == "shuffle":
        found.sort(key=lambda t: hashlib.sha256(f"{query}\0{t.track_id}".encode()).digest())
    start = (page - 1) * page_size
    return found[start : start + page_size]


async def music_search(request: web.Request) -> web.Response:
    """``POST /v1/music/search``."""
    body = await read_json_object(request, empty_ok=True)
    public_url = _sim(request).public_url
    return json_response({"items": [t.item(public_url) for t in search_tracks(body)]})


def _music_option(name: str) -> Handler:
    values = list(catalogue.MUSIC_OPTIONS[name])

    async def handler(request: web.Request) -> web.Response:
        del request
        return json_response(values)

    handler.__doc__ = f"``GET /v1/music/{name}``: a bare list of strings."
    return handler


async def list_avatars(request: web.Request) -> web.Response:
    """``GET /v1/avatars``."""
    items = catalogue.avatars(_sim(request).public_url)
    return json_response({"items": items, "nextPageKey": None})


async def video_brands(request: web.Request) -> web.Response:
    """``GET /v1/brands/video``."""
    del request
    return json_response(list(catalogue.BRANDS))


async def smart_layouts(request: web.Request) -> web.Response:
    """``GET /v1/smartlayouts``."""
    del request
    return json_response({"items": list(catalogue.SMART_LAYOUTS)})


async def text_styles(request: web.Request) -> web.Response:
    """``GET /v1/styles``."""
    del request
    return json_response(list(catalogue.TEXT_STYLES))


LOOKUP_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/v1/jobs", list_jobs),
    RouteSpec("GET", "/v2/projects", list_projects),
    RouteSpec("POST", "/v2/projects/{id}/render", render_project, creating=True),
    RouteSpec("GET", "/v1/voiceovers/tracks", voice_tracks),
    RouteSpec("POST", "/v1/music/search", music_search),
    *(RouteSpec("GET", f"/v1/music/{n}", _music_option(n)) for n in catalogue.MUSIC_OPTIONS),
    RouteSpec("GET", "/v1/avatars", list_avatars),
    RouteSpec("GET", "/v1/brands/video", video_brands),
    RouteSpec("GET", "/v1/smartlayouts", smart_layouts),
    RouteSpec("GET", "/v1/styles", text_styles),
    RouteSpec("GET", "/v1/aicredits/usage", credit_usage.ai_credits_usage),
)
