"""Handlers for the API paths of sections 2 and 3, mounted under ``/pictoryapis``.

Each handler reads its body, asks the ``Simulator`` to act, and answers in the documented shape.
Authentication, rate limiting and request faults happen before, in ``middleware``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from orchestrator.simulator import media, stock
from orchestrator.simulator.answers import (
    ApiProblem,
    invalid_body,
    json_response,
    ok,
    optional_str,
    read_json_object,
    required_str,
)
from orchestrator.simulator.auth import client_account
from orchestrator.simulator.core import STORAGE_PREFIX, Simulator
from orchestrator.simulator.jobs import Job
from orchestrator.simulator.render_params import check_storyboard
from orchestrator.simulator.templates import deprecation_key
from orchestrator.simulator.views import job_body

API_PREFIX = "/pictoryapis"
SIM_KEY = web.AppKey("simulator", Simulator)
CURRENT_ACCOUNT: ContextVar[str] = ContextVar("sim_account")
"""The authenticated account of the request being handled (set by the middleware)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One API route: how it is counted, whether it needs auth, whether it creates a job."""

    method: str
    path: str
    handler: Handler
    auth: bool = True
    creating: bool = False

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


def _account(request: web.Request) -> str:
    del request  # the middleware authenticated it and set the account for this task
    return CURRENT_ACCOUNT.get()


def _created(sim: Simulator, job: Job, legacy_key: str) -> web.Response:
    key = "jobId" if sim.settings.new_shapes else legacy_key
    return json_response(ok({key: job.job_id}))


async def token(request: web.Request) -> web.Response:
    sim = _sim(request)
    body = await read_json_object(request)
    client_id = required_str(body, "client_id")
    sim.auth.check_client_secret(required_str(body, "client_secret"))
    sim.check_rate(client_account(client_id))
    access_token, lifetime_s = sim.auth.issue(client_id, sim.now())
    expires_in: float = int(lifetime_s) if float(lifetime_s).is_integer() else lifetime_s
    return json_response(
        {"access_token": access_token, "expires_in": expires_in, "token_type": "Bearer"}
    )


async def upload_template(request: web.Request) -> web.Response:
    sim = _sim(request)
    template = sim.templates.add(await request.read(), _account(request))
    return json_response(template.answer(spelling=_spelling(sim, created=True)))


async def list_templates(request: web.Request) -> web.Response:
    templates = _sim(request).templates.owned_by(_account(request))
    return json_response({"items": [t.list_item() for t in templates]})


async def get_template(request: web.Request) -> web.Response:
    sim = _sim(request)
    template = sim.templates.get(request.match_info["id"], _account(request))
    return json_response(template.answer(spelling=_spelling(sim, created=False)))


async def update_template(request: web.Request) -> web.Response:
    sim = _sim(request)
    template = sim.templates.get(request.match_info["id"], _account(request))
    body = await read_json_object(request)
    scenes = body.get("scenes")
    if not isinstance(scenes, list):
        raise invalid_body("field 'scenes' is required: a list of scenes")
    template.replace_scenes(scenes)
    return json_response(template.answer(spelling=_spelling(sim, created=False)))


def _spelling(sim: Simulator, *, created: bool) -> str:
    """The template answer's deprecation key (``settings.template_spelling``)."""
    return deprecation_key(sim.settings.template_spelling, created=created)


async def delete_template(request: web.Request) -> web.Response:
    template_id = request.match_info["id"]
    _sim(request).templates.delete(template_id, _account(request))
    return json_response({"templateId": template_id, "deleted": True})


def _variables(body: dict[str, Any]) -> dict[str, str]:
    variables = body.get("variables", {})
    if variables is None:
        return {}
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise invalid_body("field 'variables' must be an object of strings: {name: value}")
    return variables


def _check_scene_overrides(body: dict[str, Any], scene_ids: set[Any]) -> None:
    scenes = body.get("scenes")
    if scenes is None:
        return
    if not isinstance(scenes, list) or not all(isinstance(s, dict) for s in scenes):
        raise invalid_body("field 'scenes' must be a list of objects")
    for i, scene in enumerate(scenes):
        for field in ("sceneId", "insertBeforeSceneId", "insertAfterSceneId"):
            if field in scene and scene[field] not in scene_ids:
                raise invalid_body(
                    f"scenes[{i}].{field} = {scene[field]!r} is not a scene of the template "
                    f"(scene ids: {sorted(scene_ids, key=str)})"
                )


async def from_template(request: web.Request) -> web.Response:
    sim = _sim(request)
    account = _account(request)
    body = await read_json_object(request)
    template_id = required_str(body, "templateId")
    variables = _variables(body)
    webhook = optional_str(body, "webhook")
    template = sim.templates.get(template_id, account)
    _check_scene_overrides(body, {s["sceneId"] for s in template.scenes})
    job = sim.create_preview(account, template, variables, webhook)
    return json_response(ok({"jobId": job.job_id}))


async def get_job(request: web.Request) -> web.Response:
    sim = _sim(request)
    job_id, account = request.match_info["id"], _account(request)
    if sim.cleaned(job_id, account):  # §5.4; the body is our [choice]
        return json_response({"job_id": job_id, "success": True, "data": {"status": "cleaned"}})
    job = sim.get_job(job_id, account)
    return json_response(job_body(sim, job, sim.now()))


async def clean_job(request: web.Request) -> web.Response:
    """``DELETE /v1/jobs/{id}/clean`` → ``{"success": true}`` (§5.4)."""
    sim = _sim(request)
    sim.clean_job(request.match_info["id"], _account(request))
    return json_response({"success": True})


async def media_search(request: web.Request) -> web.Response:
    """``GET /v1/media/search?keyword=…`` (§5.8)."""
    return json_response(ok(stock.search(_sim(request), dict(request.query))))


async def render_preview(request: web.Request) -> web.Response:
    sim = _sim(request)
    body = await read_json_object(request, empty_ok=True)
    webhook = optional_str(body, "webhook")
    job = sim.render_preview(_account(request), request.match_info["id"], webhook)
    return _created(sim, job, "job_id")


async def render_params(request: web.Request) -> web.Response:
    sim = _sim(request)
    body = await read_json_object(request)
    job = sim.render_params(_account(request), body, optional_str(body, "webhook"))
    return _created(sim, job, "job_id")


async def storyboard(request: web.Request) -> web.Response:
    sim = _sim(request)
    body = await read_json_object(request)
    check_storyboard(body)
    job = sim.create_storyboard(_account(request), body, optional_str(body, "webhook"))
    return json_response({"success": True, "jobId": job.job_id, "data": {"jobId": job.job_id}})


async def transcription(request: web.Request) -> web.Response:
    sim = _sim(request)
    body = await read_json_object(request)
    file_url = required_str(body, "fileUrl")
    language = optional_str(body, "language") or "en"
    job = sim.create_transcription(
        _account(request), file_url, language, optional_str(body, "webhook")
    )
    return json_response(ok({"jobId": job.job_id}))


async def highlights(request: web.Request) -> web.Response:
    sim = _sim(request)
    body = await read_json_object(request)
    job = sim.create_highlights(_account(request), body, optional_str(body, "webhook"))
    return json_response(ok({"jobId": job.job_id}))


async def highlights_of(request: web.Request) -> web.Response:
    """``POST /v2/transcription/{transcriptionJobId}/highlights`` ``{highlight_duration,
    webhook?, language?}`` (§5.1)."""
    sim = _sim(request)
    body = await read_json_object(request, empty_ok=True)
    job = sim.highlights_of(
        _account(request), request.match_info["id"], body, optional_str(body, "webhook")
    )
    return json_response(ok({"jobId": job.job_id}))


async def generate_url(request: web.Request) -> web.Response:
    sim = _sim(request)
    body = await read_json_object(request)
    file_name = required_str(body, "fileName")
    content_type = required_str(body, "contentType")
    key = f"media/{sim.new_id()}/{media.quote_path(file_name)}"
    path = f"{STORAGE_PREFIX}/{key}"
    expires = math.ceil(sim.now() + sim.settings.upload_link_lifetime_s)
    query = sim.signer.sign(path, expires, content_type)
    url = f"{sim.public_url}{path}"
    return json_response(ok({"signedUrl": f"{url}?{query}", "url": url, "key": key}))


async def quota(request: web.Request) -> web.Response:
    """``GET /v1/quota``: a bare object [doc "Get Current Quota"] (§3, §6.4)."""
    sim = _sim(request)
    if not sim.settings.quota_published:
        raise ApiProblem(404, "QUOTA_NOT_PUBLISHED", "this account publishes no quota")
    return json_response(sim.quota(_account(request)))


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/oauth2/token", token, auth=False),
    RouteSpec("POST", "/v1/templates", upload_template, creating=True),
    RouteSpec("GET", "/v1/templates", list_templates),
    RouteSpec("GET", "/v1/templates/{id}", get_template),
    RouteSpec("PUT", "/v1/templates/{id}", update_template),
    RouteSpec("DELETE", "/v1/templates/{id}", delete_template),
    RouteSpec("POST", "/v1/video/from-template", from_template, creating=True),
    RouteSpec("GET", "/v1/jobs/{id}", get_job),
    RouteSpec("DELETE", "/v1/jobs/{id}/clean", clean_job),
    RouteSpec("PUT", "/v1/video/render/{id}", render_preview, creating=True),
    RouteSpec("POST", "/v1/video/render", render_params, creating=True),
    RouteSpec("POST", "/v1/video/storyboard", storyboard, creating=True),
    RouteSpec("POST", "/v2/transcription", transcription, creating=True),
    RouteSpec("POST", "/v2/transcription/highlights", highlights, creating=True),
    RouteSpec("POST", "/v2/transcription/{id}/highlights", highlights_of, creating=True),
    RouteSpec("POST", "/v1/media/generateUrl", generate_url),
    RouteSpec("POST", "/v1/media/generateurl", generate_url),
    RouteSpec("GET", "/v1/media/search", media_search),
    RouteSpec("GET", "/v1/quota", quota),
)
