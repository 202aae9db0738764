"""The v2 video routes of API-key accounts (contract §5.6, §5.9), mounted beside ``routes_api``.

- ``POST /v2/video/storyboard``: a preview job, from ``templateId`` + ``variables`` (``scenes``
  then optional) or from ``scenes``;
- ``PUT /v2/video/render/{previewJobId}``: render that preview (body optional, ``{"webhook"}``);
- ``POST /v2/video/storyboard/render``: a direct render from the same body, billed as a render;
- ``POST /v2/video/render``: render a renderParams body.

Every one answers ``{"success": true, "data": {"jobId": "…"}}`` [doc]. Renders go through the same
``Simulator`` verbs as the v1 routes, so they share the render cap, the billing, the MP4 payload
and the accounting (renders per preview, duplicates per (template, variables) or storyboard).
Both credential kinds are served (§5.6 documents tokens on v2 too).

A malformed body answers 400 ``{"code": "INVALID_REQUEST_BODY", "message", "fields": [{"name",
"errors"}]}`` [sample S], one entry per offending field, every one listed: the storyboard routes
check the body with ``contract.storyboard_body`` (§6.3), the same model ``validate`` applies to
manifest rows; unknown fields are stripped [sample S, §6.3] and the job keeps the stripped body.
[choice] Other errors on these routes (unknown template 404, preview not ready 409, unknown job
404) keep the legacy envelope of §1: the v2 shape is published only for 400. A 401 answers
Pictory's ``{"message": "Unauthorized"}`` on every route (§6.1, ``auth``).

Bodies [doc "Create Storyboard Preview"; S ``request-schema.md``; N ``text_to_video_v2``]:
``videoName`` is required (the docs and S mark it so). A scene has exactly one content source
(``story``, ``storyCoPilot``, ``blogUrl``, ``pptUrl``, ``audioUrl``, ``videoUrl``) or only a
``background``. [choice] ``scenes`` sent with a ``templateId`` are checked as any scenes and
otherwise not modelled (the preview is the template's). [choice] A v2 storyboard is kept in the
simulator's v1 storyboard form (``story`` → ``text``, ``createSceneOnEndOfSentence`` →
``splitTextOnPeriod``, ``background.visualUrl`` → ``backgroundUri``, ``voiceOver`` →
``audio.aiVoiceOver``), so its preview, renderParams and video text are built as for v1; the AI
generations the v2 body asks for (``aiVisual``, ``avatar``: ``contract.ai_credits``) are kept
with the preview and charged on each of its renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from orchestrator.contract import ai_credits, storyboard_body
from orchestrator.simulator import routes_lookup
from orchestrator.simulator.answers import (
    ApiProblem,
    json_response,
    ok,
    optional_str,
    read_json_object,
)
from orchestrator.simulator.core import Simulator
from orchestrator.simulator.jobs import Job
from orchestrator.simulator.routes_api import CURRENT_ACCOUNT, SIM_KEY, Handler, RouteSpec
from orchestrator.simulator.templates import Template
from orchestrator.simulator.webhooks import keep_webhook_input

CONTENT_SOURCES = storyboard_body.CONTENT_SOURCES


class FieldProblem(ApiProblem):
    """A 400 naming the request fields at fault (answered in the v2 shape)."""

    def __init__(self, field: str, message: str, *, fields: list[tuple[str, str]] | None = None):
        super().__init__(400, "INVALID_REQUEST_BODY", message)
        self.fields = fields if fields is not None else [(field, message)]


def _checked(sim: Simulator, body: dict[str, Any]) -> dict[str, Any]:
    """The storyboard body with unknown fields stripped; a 400 listing every field that breaks
    one of Pictory's rules (``contract.storyboard_body``, §6.3; ``storyboard_body_rules``)."""
    if not sim.settings.storyboard_body_rules:
        return body
    clean, problems = storyboard_body.check(body)
    if clean is None:
        fields = [(p.name, p.text) for p in problems]
        raise FieldProblem(fields[0][0], storyboard_body.summary(problems), fields=fields)
    return clean


def _v2(handler: Handler) -> Handler:
    """Answer a 400 raised by ``handler`` in the v2 shape; other problems pass to the
    middleware, which answers the legacy envelope."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiProblem as problem:
            if problem.status != 400:
                raise
            fields = (
                [{"name": name, "errors": errors} for name, errors in problem.fields]
                if isinstance(problem, FieldProblem)
                else []
            )
            body = {"code": problem.error_code, "message": problem.message, "fields": fields}
            return json_response(body, status=400)

    return wrapped


def _created(job: Job, body: Mapping[str, Any]) -> web.Response:
    routes_lookup.mark_created(job, body)  # documented shapes; saveProject (§6.2, §6.4)
    keep_webhook_input(job, body)  # echoed in the webhook POST (§6.3)
    return json_response(ok({"jobId": job.job_id}))


def _string(body: Mapping[str, Any], field: str, *, required: bool = False) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise FieldProblem(field, f"'{field}' is required: a non-empty string")
    return value


def _object(body: Mapping[str, Any], field: str) -> dict[str, Any]:
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldProblem(field, f"'{field}' must be an object")
    return value


def _variables(body: Mapping[str, Any]) -> dict[str, str]:
    variables = _object(body, "variables")
    if not all(isinstance(v, str) for v in variables.values()):
        raise FieldProblem("variables", "'variables' must be an object of strings: {name: value}")
    return variables


def _scenes(body: Mapping[str, Any], *, required: bool) -> list[dict[str, Any]]:
    scenes = body.get("scenes")
    if scenes is None and not required:
        return []
    if (
        not isinstance(scenes, list)
        or (required and not scenes)
        or not all(isinstance(s, dict) for s in scenes)
    ):
        need = "a non-empty list of scene objects" if required else "a list of scene objects"
        raise FieldProblem("scenes", f"'scenes' must be {need} (or send a templateId)")
    return scenes


def _v1_scene(i: int, scene: Mapping[str, Any], voice: bool) -> dict[str, Any]:
    """One v2 scene in the simulator's v1 storyboard form (module docstring)."""
    sources = [f for f in CONTENT_SOURCES if scene.get(f) not in (None, "")]
    background = scene.get("background")  # one source or a background: checked (_checked)
    out: dict[str, Any] = {
        "voiceOver": voice,
        "splitTextOnNewLine": scene.get("createSceneOnNewLine") is True,
        "splitTextOnPeriod": scene.get("createSceneOnEndOfSentence") is True,
    }
    source = sources[0] if sources else None
    if source == "story":
        story = scene["story"]
        if not isinstance(story, str) or not story.strip():
            raise FieldProblem(f"scenes[{i}].story", "'story' must be a non-empty string")
        out["text"] = story
    elif source == "blogUrl":
        out["article_url"] = str(scene["blogUrl"])
    elif source is not None:
        out["text"] = f"Simulated scene from {source}."
    else:
        out["text"] = ""  # a visual-only scene
    if isinstance(background, dict):
        url = background.get("visualUrl")
        if isinstance(url, str) and url:
            out["backgroundUri"] = url
        kind = background.get("type")
        if kind in ("image", "video"):
            out["backgroundType"] = kind
    return out


def _v1_storyboard(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A v2 storyboard body in the simulator's v1 storyboard form."""
    voice_over = _object(body, "voiceOver")
    voices = voice_over.get("aiVoices")
    voice = voice_over.get("enabled") is True
    scenes = [_v1_scene(i, s, voice) for i, s in enumerate(_scenes(body, required=True))]
    out: dict[str, Any] = {"videoName": name, "scenes": scenes}
    for field in ("language", "videoWidth", "videoHeight"):
        if field in body:
            out[field] = body[field]
    audio: dict[str, Any] = {}
    if voice and isinstance(voices, list) and voices and isinstance(voices[0], dict):
        audio["aiVoiceOver"] = {k: voices[0][k] for k in ("speaker", "speed") if k in voices[0]}
    music = _object(body, "backgroundMusic")
    if music.get("enabled") is True:
        audio["autoBackgroundMusic"] = True
        volume = music.get("volume")
        if isinstance(volume, int | float):
            audio["backGroundMusicVolume"] = volume
    if audio:
        out["audio"] = audio
    return out


_Source = tuple[Template, dict[str, str]] | dict[str, Any]


def _source(sim: Simulator, account: str, body: Mapping[str, Any]) -> _Source:
    """What a storyboard body asks for: a template and its variables, or a storyboard."""
    name = _string(body, "videoName", required=True)
    assert name is not None
    template_id = _string(body, "templateId")
    if template_id is None:
        return _v1_storyboard(body, name)
    variables = _variables(body)
    _scenes(body, required=False)
    template = sim.templates.get(template_id, account)
    try:
        sim.check_variables(template, variables)
    except ApiProblem as problem:
        raise FieldProblem("variables", problem.message) from None
    return template, variables


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


async def storyboard_preview(request: web.Request) -> web.Response:
    """``POST /v2/video/storyboard``: a preview job (unbilled)."""
    sim, account = _sim(request), CURRENT_ACCOUNT.get()
    body = _checked(sim, await read_json_object(request))
    webhook = optional_str(body, "webhook")
    source = _source(sim, account, body)
    sim.accounting.record_pictory_delivery(body)
    asks = ai_credits.asks(body)
    if isinstance(source, dict):
        return _created(sim.create_storyboard(account, source, webhook, asks), body)
    template, variables = source
    return _created(sim.create_preview(account, template, variables, webhook, asks), body)


async def storyboard_render(request: web.Request) -> web.Response:
    """``POST /v2/video/storyboard/render``: a render straight from the body (billed)."""
    sim, account = _sim(request), CURRENT_ACCOUNT.get()
    body = _checked(sim, await read_json_object(request))
    webhook = optional_str(body, "webhook")
    source = _source(sim, account, body)
    sim.accounting.record_pictory_delivery(body)
    asks = ai_credits.asks(body)
    if isinstance(source, dict):
        unstored = sim.unstored_preview(account, storyboard_body=source, ai_asks=asks)
    else:
        template, variables = source
        unstored = sim.unstored_preview(
            account, template=template, variables=variables, ai_asks=asks
        )
    return _created(sim.render_direct(account, unstored, webhook), body)


async def render_preview(request: web.Request) -> web.Response:
    """``PUT /v2/video/render/{previewJobId}``: render a finished preview (billed)."""
    sim, account = _sim(request), CURRENT_ACCOUNT.get()
    body = await read_json_object(request, empty_ok=True)
    webhook = optional_str(body, "webhook")
    return _created(sim.render_preview(account, request.match_info["id"], webhook), body)


async def render_params(request: web.Request) -> web.Response:
    """``POST /v2/video/render``: render a renderParams body (billed), checked as v1's."""
    sim, account = _sim(request), CURRENT_ACCOUNT.get()
    body = await read_json_object(request)
    return _created(sim.render_params(account, body, optional_str(body, "webhook")), body)


V2_ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v2/video/storyboard", _v2(storyboard_preview), creating=True),
    RouteSpec("POST", "/v2/video/storyboard/render", _v2(storyboard_render), creating=True),
    RouteSpec("PUT", "/v2/video/render/{id}", _v2(render_preview), creating=True),
    RouteSpec("POST", "/v2/video/render", _v2(render_params), creating=True),
)
