"""A render's life in the simulator beyond its job: the account's render cap
(``renders_over_cap``), what a render bills (video minutes, AI credits) and counts (duplicates,
by ``render_key``), and what its MP4's ``free`` box carries (``render_box_payload``).
``Simulator``'s render verbs (``render_preview``, ``render_direct``, ``render_params``) start
theirs through ``start_render``."""

from __future__ import annotations

import hashlib
import math
from typing import Any, Protocol

from orchestrator.contract import ai_credits
from orchestrator.simulator import media
from orchestrator.simulator.accounting import Accounting
from orchestrator.simulator.answers import ApiProblem
from orchestrator.simulator.faults import JobFate
from orchestrator.simulator.jobs import Job, JobKind, JobStore
from orchestrator.simulator.settings import SimSettings


class Host(Protocol):
    """What a render needs of the simulator (``core.Simulator`` is one; this module does not
    import it, as it imports this)."""

    settings: SimSettings
    jobs: JobStore
    accounting: Accounting

    def duration_s(self, nominal_s: float) -> float: ...

    def new_job(self, kind: JobKind, account: str, webhook: str | None, **fields: Any) -> Job: ...


RENDER_LIMIT_REACHED = "RENDER_LIMIT_REACHED"
"""[choice] The ``error_code`` of a render refused past the render cap (``renders_over_cap``)."""


def check_render_cap(sim: Host, account: str, now: float) -> None:
    """``renders_over_cap``: a render past the account's cap is refused, not queued."""
    refuse = sim.settings.renders_over_cap
    if refuse == "queue" or not sim.jobs.render_cap_full(account, now):
        return
    sim.accounting.renders_refused += 1
    cap = sim.settings.max_concurrent_renders
    message = f"{cap} renders are running; send this one when one of them has finished"
    if refuse == "refuse-409":
        raise ApiProblem(409, RENDER_LIMIT_REACHED, message)
    retry_after_s = max(1, math.ceil(sim.jobs.next_render_slot_s(account) - now))
    raise ApiProblem(
        429, RENDER_LIMIT_REACHED, message, headers={"Retry-After": str(retry_after_s)}
    )


def start_render(
    sim: Host,
    account: str,
    webhook: str | None,
    *,
    key: str,
    preview: Job | None,
    params: str = "",
    length_s: float = 0.0,
    preview_is_job: bool = True,
) -> Job:
    """Start a render job (capped, billed, counted under ``key``); ``preview``: what it renders
    (None for a renderParams body, ``params``), a stored preview job unless ``preview_is_job``
    is False (``render_direct``)."""
    drawn_s = round(sim.duration_s(sim.settings.video_duration_s), 3)  # drawn always: seeds hold
    template = preview.template if preview is not None else None
    if not length_s and template is not None and sim.settings.template_video_length == "scenes":
        length_s = template.length_s or 0.0
    job = sim.new_job(
        JobKind.RENDER,
        account,
        webhook,
        preview=preview,
        searches_stock=preview is not None and preview.storyboard and not preview_is_job,
        payload_json=params,
        video_duration_s=length_s or drawn_s,
    )
    job.video = media.video_digest(media.free_box(render_box_payload(job)))
    sim.accounting.record_render(
        key=key,
        preview_id=preview.job_id if preview is not None and preview_is_job else None,
        account=account,
        video_minutes=job.video_duration_s / 60.0,
    )
    spent = ai_credits.charges(preview.ai_asks if preview else (), job.video_duration_s)
    flat = round(job.video_duration_s / 60.0 * sim.settings.ai_credits_per_video_minute)
    spent += [("Video Render", float(flat))] if flat else []
    job.ai_credits_used = sim.accounting.record_credits(account, job.job_id, job.created_at, spent)
    if job.fate is JobFate.OK:
        sim.accounting.record_video(job.job_id, job.end_at, job.video)
    return job


def render_key(preview: Job) -> str:
    """What a render of ``preview`` renders, for the duplicate-render accounting: the template and
    its variables, or the storyboard body."""
    if preview.template is None:
        return "storyboard:" + preview.payload_json
    return f"template:{preview.template.template_id}:{preview.payload_json}"


def render_box_payload(render: Job) -> str:
    """The JSON carried by a render's MP4 ``free`` box: its job id and what it rendered.

    Rebuilt on demand from the render's preview, so renders keep no copy of the variables.
    """
    preview = render.preview
    if preview is None:
        what = render.payload_json
    elif preview.template is None:
        digest = hashlib.sha256(preview.payload_json.encode()).hexdigest()
        what = f'"preview_job_id":"{preview.job_id}","storyboard_sha256":"{digest}"'
    else:
        what = (
            f'"preview_job_id":"{preview.job_id}",'
            f'"template_id":"{preview.template.template_id}",'
            f'"variables":{preview.payload_json}'
        )
    return f'{{"simulator":"orchestrator","job_id":"{render.job_id}",{what}}}'
