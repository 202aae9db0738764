"""The simulator's state and its verbs, independent of HTTP.

``Simulator`` owns the clock, the seeded generators (ids, durations, faults), the stores and the
accounting. Route handlers translate requests into calls here; ``views`` turns jobs into answers.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from orchestrator.contract import ai_credits
from orchestrator.contract.ai_credits import Ask
from orchestrator.simulator import media, render_body, renders, transcripts
from orchestrator.simulator.accounting import Accounting
from orchestrator.simulator.answers import ApiProblem, dumps, invalid_body, job_not_found
from orchestrator.simulator.auth import Authenticator, RateLimiter, rate_limited
from orchestrator.simulator.faults import FaultPlan, JobFate
from orchestrator.simulator.jobs import VISUAL_NOT_FOUND, Job, JobKind, JobStore, Phase
from orchestrator.simulator.settings import SimSettings
from orchestrator.simulator.templates import Template, TemplateStore

Clock = Callable[[], float]
CDN_PREFIX = "/__cdn__"
STORAGE_PREFIX = "/__storage__"
VOICE_OVER_MINUTES = 480
"""[choice] ``elevenLabsVoiceOverMinutes.limit`` of ``GET /v1/quota`` (the doc example's)."""


class WebhookScheduler(Protocol):
    def schedule(self, due_at: float, job_id: str, url: str) -> None: ...


class Simulator:
    """One simulated Pictory account system. Cheap to build; all state in memory."""

    def __init__(self, settings: SimSettings | None = None, *, clock: Clock | None = None) -> None:
        self.settings = settings or SimSettings()
        self.clock: Clock = clock or time.time
        seed = self.settings.seed
        self._ids = random.Random(f"{seed}:ids")
        self._durations = random.Random(f"{seed}:durations")
        self.faults = FaultPlan(self.settings)
        self.accounting = Accounting()
        self.auth = Authenticator(
            token_lifetime_s=self.settings.token_lifetime_s,
            new_token=lambda: f"simtok_{self._ids.getrandbits(160):040x}",
            faults=self.faults,
            accepted_client_secret=self.settings.accepted_client_secret,
            accepted_api_key=self.settings.accepted_api_key,
            require_user_id=self.settings.require_user_id,
        )
        self.limiter = RateLimiter(self.settings.rate_limit_rps, self.settings.rate_limit_rpm)
        self.jobs = JobStore(
            retention_s=self.settings.job_retention_s,
            max_concurrent_renders=self.settings.max_concurrent_renders,
        )
        self.templates = TemplateStore(self.new_id)
        self.signer = media.LinkSigner(random.Random(f"{seed}:secret").randbytes(32))
        self.public_url = ""
        """``http://host:port`` once serving; links and webhooks are built from it."""
        self.webhooks: WebhookScheduler | None = None

    # --- small helpers ---

    def now(self) -> float:
        return self.clock()

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def duration_s(self, nominal_s: float) -> float:
        """A jittered, scaled duration (always drawn, so the sequence does not depend on it)."""
        j = self.settings.jitter_frac
        factor = self._durations.uniform(1.0 - j, 1.0 + j)
        return self.settings.scaled_s(nominal_s) * factor

    def check_rate(self, account: str) -> None:
        """Count a request against the account's rate limit; 429 if over it."""
        retry_after_s = self.limiter.retry_after_s(account, self.now())
        if retry_after_s is not None:
            self.accounting.rate_limited += 1
            raise rate_limited(retry_after_s, header=self.settings.retry_after_header)

    def link(self, kind: str, name: str, now: float, lifetime_s: float | None = None) -> str:
        """A signed CDN link to ``/__cdn__/{kind}/{name}``."""
        path = f"{CDN_PREFIX}/{kind}/{name}"
        expires = math.ceil(now + (lifetime_s or self.settings.video_link_lifetime_s))
        return f"{self.public_url}{path}?{self.signer.sign(path, expires)}"

    def stats(self) -> dict[str, Any]:
        """Everything the accounting knows (see ``accounting`` for the shape)."""
        return self.accounting.snapshot(
            now=self.now(),
            faults=self.faults.counts,
            live_jobs=len(self.jobs),
            templates=len(self.templates),
        )

    # --- jobs ---

    def get_job(self, job_id: str, account: str | None) -> Job:
        """The job if it exists, is retained and belongs to ``account`` (None: anyone's)."""
        job = self.jobs.get(job_id, self.now())
        if job is None or (account is not None and job.account != account):
            raise job_not_found(job_id)
        return job

    def cleaned(self, job_id: str, account: str) -> bool:
        """Whether ``job_id`` was ``account``'s and is gone (retention or clean), §5.4."""
        if self.jobs.get(job_id, self.now()) is not None:
            return False
        return self.jobs.was_cleaned(job_id, account)

    def clean_job(self, job_id: str, account: str) -> None:
        """``DELETE /v1/jobs/{id}/clean`` (§5.4): only a finished job; idempotent.

        Its outputs (video, preview, share pages, subtitles) stop serving at once.
        [choice] A job still running is refused with 409 ``JOB_NOT_FINISHED``.
        """
        if self.cleaned(job_id, account):
            self.accounting.cleans[job_id] += 1
            return
        job = self.get_job(job_id, account)
        if job.phase(self.now()) not in (Phase.DONE, Phase.FAILED):
            raise ApiProblem(
                409,
                "JOB_NOT_FINISHED",
                f"job {job_id} is still running; clean it once it is completed or failed",
            )
        self.jobs.clean(job)
        self.accounting.cleans[job_id] += 1

    def new_job(
        self,
        kind: JobKind,
        account: str,
        webhook: str | None,
        *,
        searches_stock: bool = False,
        **fields: Any,
    ) -> Job:
        now = self.now()
        if kind is JobKind.RENDER:
            renders.check_render_cap(self, account, now)
        fate = self.faults.job_fate()
        if fate is JobFate.OK and searches_stock and self.faults.visual_not_found():
            fate, fields["cause"] = JobFate.FAILED, VISUAL_NOT_FOUND
        if kind is JobKind.RENDER:
            duration = self.duration_s(self.settings.render_s)
            start, end = self.jobs.render_window(account, now, duration)
            waiting = self.jobs.renders_waiting(account, now)
            self.accounting.renders_waiting_max = max(self.accounting.renders_waiting_max, waiting)
        else:
            nominal = (
                self.settings.transcription_s
                if kind in (JobKind.TRANSCRIPTION, JobKind.HIGHLIGHTS)
                else self.settings.preview_s
            )
            start, end = now, now + self.duration_s(nominal)
        job = Job(
            job_id=self.new_id(),
            kind=kind,
            account=account,
            created_at=now,
            start_at=start,
            end_at=end,
            fate=fate,
            webhook=webhook or None,
            **fields,
        )
        self.jobs.add(job, now)
        self.accounting.jobs_created[kind.value] += 1
        if job.webhook and self.webhooks is not None and fate is not JobFate.STUCK:
            self.webhooks.schedule(job.end_at, job.job_id, job.webhook)
        return job

    def create_preview(
        self,
        account: str,
        template: Template,
        variables: Mapping[str, str],
        webhook: str | None,
        ai_asks: tuple[Ask, ...] = (),
    ) -> Job:
        """``POST /v1/video/from-template`` (and ``POST /v2/video/storyboard`` with a template,
        whose body's own AI asks come in ``ai_asks``)."""
        self.check_variables(template, variables)
        payload = dumps(dict(sorted(variables.items())))
        asks = template.ai_asks + ai_asks
        return self.new_job(
            JobKind.PREVIEW, account, webhook, template=template, payload_json=payload, ai_asks=asks
        )

    def check_variables(self, template: Template, variables: Mapping[str, str]) -> None:
        """With ``strict_variables``, a variable the template does not declare is a 400."""
        if self.settings.strict_variables:
            unknown = sorted(set(variables) - set(template.variables))
            if unknown:
                known = ", ".join(sorted(template.variables)) or "none"
                raise invalid_body(
                    f"unknown variable(s) {', '.join(unknown)} for template "
                    f"{template.template_id}; the template declares: {known}"
                )

    def create_storyboard(
        self,
        account: str,
        body: dict[str, Any],
        webhook: str | None,
        ai_asks: tuple[Ask, ...] | None = None,
    ) -> Job:
        """``POST /v1/video/storyboard``: a preview built from text scenes (the v2 route passes
        the AI asks of the body it converted; else they are the body's)."""
        payload = dumps({k: v for k, v in sorted(body.items()) if k != "webhook"})
        return self.new_job(
            JobKind.PREVIEW,
            account,
            webhook,
            searches_stock=True,
            payload_json=payload,
            storyboard=True,
            ai_asks=ai_credits.asks(body) if ai_asks is None else ai_asks,
        )

    def render_preview(self, account: str, preview_id: str, webhook: str | None) -> Job:
        """``PUT /v1/video/render/{previewJobId}``."""
        preview = self.get_job(preview_id, account)
        if preview.kind is not JobKind.PREVIEW:
            raise invalid_body(f"job {preview_id} is a {preview.kind.value} job, not a preview")
        phase = preview.phase(self.now())
        if phase is Phase.FAILED:
            raise ApiProblem(
                409, "PREVIEW_FAILED", f"preview {preview_id} failed; create a new one"
            )
        if phase is not Phase.DONE:
            raise ApiProblem(
                409,
                "PREVIEW_NOT_READY",
                f"preview {preview_id} is not finished; poll /v1/jobs/{preview_id} first",
            )
        return renders.start_render(
            self, account, webhook, key=renders.render_key(preview), preview=preview
        )

    def render_direct(self, account: str, source: Job, webhook: str | None) -> Job:
        """``POST /v2/video/storyboard/render`` (§5.9): a render straight from a request, with no
        preview job. ``source`` is a preview-shaped job that was never stored (the template and
        variables, or the storyboard body); the render is billed, capped and counted under the
        same key as a render of the same preview (so a direct render of a row that was also
        rendered from a preview counts as a duplicate)."""
        return renders.start_render(
            self,
            account,
            webhook,
            key=renders.render_key(source),
            preview=source,
            preview_is_job=False,
        )

    def unstored_preview(
        self,
        account: str,
        *,
        template: Template | None = None,
        variables: Mapping[str, str] | None = None,
        storyboard_body: dict[str, Any] | None = None,
        ai_asks: tuple[Ask, ...] = (),
    ) -> Job:
        """The ``source`` of ``render_direct``: a finished preview-shaped job, not in the store;
        ``ai_asks``: the AI generations of the request's body."""
        now = self.now()
        if template is not None:
            self.check_variables(template, variables or {})
            payload = dumps(dict(sorted((variables or {}).items())))
        else:
            body = storyboard_body or {}
            payload = dumps({k: v for k, v in sorted(body.items()) if k != "webhook"})
        return Job(
            job_id=self.new_id(),
            kind=JobKind.PREVIEW,
            account=account,
            created_at=now,
            start_at=now,
            end_at=now,
            fate=JobFate.OK,
            template=template,
            payload_json=payload,
            storyboard=template is None,
            ai_asks=(template.ai_asks if template is not None else ()) + ai_asks,
        )

    def render_params(self, account: str, body: dict[str, Any], webhook: str | None) -> Job:
        """``POST /v1/video/render`` with a full renderParams body (§5.3 b, §5.7; checks and
        length in ``render_body``). The MP4 records the cut: each scene's source segment."""
        render_body.check(body)
        canonical = dumps({k: v for k, v in sorted(body.items()) if k != "webhook"})
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        scenes = render_body.cut(body)
        return renders.start_render(
            self,
            account,
            webhook,
            key="params:" + canonical,
            preview=None,
            params=dumps({"render_params_sha256": digest, "scenes": scenes})[1:-1],
            length_s=render_body.length_s(scenes),
        )

    def create_transcription(
        self, account: str, file_url: str, language: str, webhook: str | None
    ) -> Job:
        """``POST /v2/transcription``."""
        return self.new_job(
            JobKind.TRANSCRIPTION, account, webhook, file_url=file_url, language=language
        )

    def create_highlights(self, account: str, body: dict[str, Any], webhook: str | None) -> Job:
        """``POST /v2/transcription/highlights`` (§5.1; answer in ``transcripts``)."""
        transcripts.check_highlights_body(body)
        payload = dumps({k: v for k, v in sorted(body.items()) if k != "webhook"})
        return self.new_job(JobKind.HIGHLIGHTS, account, webhook, payload_json=payload)

    def highlights_of(
        self, account: str, transcription_id: str, body: dict[str, Any], webhook: str | None
    ) -> Job:
        """``POST /v2/transcription/{transcriptionJobId}/highlights`` (§5.1): the highlights of a
        finished transcription of this account. [choice] 409 ``TRANSCRIPTION_NOT_READY`` before
        it finishes, 400 for a job of another kind."""
        job = self.get_job(transcription_id, account)
        if job.kind is not JobKind.TRANSCRIPTION:
            raise invalid_body(
                f"job {transcription_id} is a {job.kind.value} job, not a transcription"
            )
        if job.phase(self.now()) is not Phase.DONE:
            raise ApiProblem(
                409,
                "TRANSCRIPTION_NOT_READY",
                f"transcription {transcription_id} is not finished; poll its job first",
            )
        full = {**body, "transcript": transcripts.transcript_for(job.file_url)}
        return self.create_highlights(account, full, webhook)

    def quota(self, account: str) -> dict[str, Any]:
        """``GET /v1/quota`` [doc "Get Current Quota"]: four ``{"used", "limit"}`` entries.
        [choice] Video minutes and AI credits are spent as renders start; nothing spends
        transcription or voice-over minutes here (their limits: the video minutes' and the
        doc example's 480)."""
        used = self.accounting.minutes_used.get(account, 0.0)
        credits = self.accounting.credits_used.get(account, 0.0)
        return {
            "videoMinutes": {"used": round(used, 3), "limit": self.settings.quota_video_minutes},
            "transcriptionMinutes": {"used": 0, "limit": self.settings.quota_video_minutes},
            "elevenLabsVoiceOverMinutes": {"used": 0, "limit": VOICE_OVER_MINUTES},
            "aiCredits": {"used": round(credits, 3), "limit": self.settings.quota_ai_credits},
        }
