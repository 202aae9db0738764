"""Every knob of the simulator in one frozen model, and the named profiles built from it.

``SimSettings.for_profile(name, **overrides)`` is the usual door:

- ``demo``: a few seconds per job (preview about 1 s, render 2–4 s), a gentle rate limit and
  render cap, no faults. What ``orchestrator run --simulate`` and ``orchestrator sim`` use.
- ``realistic``: minutes per job, like the real service (preview 30–60 s, render 1.5–4.5 min),
  5 requests per second, 3 concurrent renders per account. Poll every 10–30 s as Pictory advises;
  faster polling "may result in rate limiting" and here it does.
- ``flaky``: demo timing with every fault switched on at a modest probability (3–5 %).
- ``test``: milliseconds per job, no faults and no limits unless an override sets them.

Durations are nominal seconds; each job draws ``nominal × time_scale × U(1 − jitter_frac,
1 + jitter_frac)`` from the seeded random generator. Lifetimes (tokens, links, retention) are not
scaled. Probabilities are per event: per API request (server error, 429, drop, slow, token
revoked), per job (failed, stuck) or per video download (cut short).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.simulator.profiles import PROFILE_NAMES, ProfileName

__all__ = ["PROFILE_NAMES", "ProfileName", "SimSettings"]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class SimSettings(BaseModel):
    """How the simulator behaves. Frozen; an unknown field is an error naming the field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    """One seed makes a run repeatable: same requests in the same order, same faults and times."""

    # --- time ---
    time_scale: float = Field(default=1.0, gt=0.0)
    """Multiplies every job duration below (not lifetimes)."""
    preview_s: float = Field(default=1.0, ge=0.0)
    """Nominal preview duration (from-template and storyboard jobs)."""
    render_s: float = Field(default=3.0, ge=0.0)
    """Nominal render duration, once a render slot is free."""
    transcription_s: float = Field(default=2.0, ge=0.0)
    """Nominal transcription duration."""
    jitter_frac: float = Field(default=1 / 3, ge=0.0, lt=1.0)
    """Each duration is drawn uniformly within ± this fraction of its nominal value."""
    video_duration_s: float = Field(default=30.0, gt=0.0)
    """Nominal ``videoDuration`` reported by finished renders (jittered, spent from the quota),
    where ``template_video_length`` does not decide it."""
    template_video_length: Literal["scenes", "drawn"] = "scenes"
    """How long a render of an uploaded template lasts (its ``videoDuration``, spent from the
    quota): ``scenes``, as long as the project's scenes say (``contract.video_length``: their
    lines' times, else ``sceneTime``, else their text at 2.5 words a second; the reading the
    cost estimate counts with); ``drawn``, ``video_duration_s`` jittered, as a render of a
    template whose scenes say nothing. [choice] Pictory does not publish how a render's length
    follows its project; a video of the project's scenes lasting as long as they are timed is
    the plain reading."""

    # --- limits ---
    rate_limit_rps: float | None = Field(default=None, gt=0.0)
    """Requests per second per account (fixed window); ``None`` = unlimited."""
    rate_limit_rpm: int | None = Field(default=None, ge=1)
    """Requests per minute per account (fixed 60 s windows on the clock's minutes), on top of
    ``rate_limit_rps``; ``None`` = none. [choice] Pictory publishes no rate limit (contract §1);
    a per-minute one is what many APIs add, so workers sharing an account can be shown to keep
    it. A 429 past it says ``Retry-After``: the whole seconds left in the minute."""
    max_concurrent_renders: int | None = Field(default=None, ge=1)
    """Renders running at once per account; later ones wait, reported as ``queued_status``
    without ``renderProgress`` (contract §5.4), unless ``renders_over_cap`` refuses them.
    ``None`` = no cap."""
    renders_over_cap: Literal["queue", "refuse-429", "refuse-409"] = "queue"
    """What a render sent while ``max_concurrent_renders`` renders run does. [choice] Pictory
    publishes no render cap nor what happens past it (contract §1, §4): ``queue`` (default) keeps
    it waiting for a slot (``queued_status``, §5.4's ``pending``); ``refuse-429`` answers 429
    ``RENDER_LIMIT_REACHED`` with ``Retry-After`` (as its rate limit does, §1), ``refuse-409``
    answers 409 ``RENDER_LIMIT_REACHED``, each in the legacy error envelope (§1), and starts no
    job. The client sends a render beyond its cap (``[limits] max_renders_in_flight``) only when
    a calibration profile measured that the account queues (``queues_renders``), one at most."""
    token_lifetime_s: float = Field(default=3600.0, gt=0.0)
    """Access-token lifetime, answered as ``expires_in``."""
    job_retention_s: float = Field(default=86400.0, gt=0.0)
    """How long after it finishes a job can still be read; then it answers ``status: cleaned``
    (contract §5.4; the body ``{"job_id", "success": true, "data": {"status": "cleaned"}}`` is a
    [choice]) and its files stop serving."""
    video_link_lifetime_s: float = Field(default=3600.0, gt=0.0)
    """How long a video (or subtitle, thumbnail…) link stays valid after the job read gave it.
    Pictory says its links expire without saying when (contract §2 step 7): [choice] ours state
    it in the link (``?expires=EPOCH&sig=…``), which the client reads for ``results.csv``'s
    ``*_expires`` columns; a Pictory link stating none is ``unknown`` there."""
    upload_link_lifetime_s: float = Field(default=86400.0, gt=0.0)
    """How long a signed upload URL from generateUrl stays valid."""
    accepted_client_secret: str | None = None
    """Accept only this client secret at the token endpoint (401 otherwise); ``None`` = any."""
    accepted_api_key: str | None = None
    """Accept only this ``pictai_`` key (401 otherwise); ``None`` = any."""
    quota_video_minutes: float = Field(default=10_000.0, ge=0.0)
    """``videoMinutes.limit`` answered by ``GET /v1/quota`` (informative; never enforced)."""
    quota_ai_credits: float = Field(default=22_000.0, ge=0.0)
    """``aiCredits.limit`` answered by ``GET /v1/quota`` (the doc example's; never enforced)."""
    quota_published: bool = True
    """Whether the account answers ``GET /v1/quota`` and ``GET /v1/aicredits/usage``. [choice]
    Off: both answer 404 ``QUOTA_NOT_PUBLISHED`` (legacy envelope, §1), as for an account whose
    plan does not publish them (nothing public says which do); the client then runs on its
    estimate alone ("quota not published for this account")."""

    # --- answers ---
    new_shapes: bool = False
    """Answer the newer shapes: ``status: completed`` on previews, ``data.jobId`` everywhere."""
    queued_status: Literal["in-progress", "pending"] = "in-progress"
    """What a render queued behind ``max_concurrent_renders`` reports. [choice] ``in-progress``
    (no ``renderProgress``), because every Pictory sample polls only while the status is exactly
    ``in-progress`` (§5.4); ``pending`` is what the render-project page documents for a queued
    job."""
    render_subtitle_form: Literal["url", "content", "none"] = "url"
    """How a finished render offers ``srtFile``/``vttFile``/``txtFile`` (§2 step 6; the form is
    unpublished, §5.2 gives a transcription's as contents): signed CDN links, the files'
    contents, or not at all. [choice] Clients must cope with all three."""
    ai_credits_per_video_minute: float = Field(default=0.0, ge=0.0)
    """A flat charge of ``round(videoDuration / 60 × this)`` AI credits on every render, on top of
    what its AI features cost. Pictory charges AI credits only for generative features (AI
    images and videos, avatars: ``contract.ai_credits``, the price list a render is charged by),
    so 0. [choice] Kept for tests of the old behaviour (44 reproduced S2's one example, 48 credits
    for a 65.6 s video); its debits say ``source`` ``"Video Render"`` in
    ``GET /v1/aicredits/usage``."""
    ai_credits_field: Literal["always", "when-used"] = "always"
    """Whether a finished render says ``aiCreditsUsed`` when it used none. [choice] Pictory shows
    the field on a render that used AI visuals (S2: "if AI visuals were used, ``aiCreditsUsed``")
    and publishes no answer of one that did not: ``always`` answers 0, ``when-used`` leaves the
    field out. The client reads both (a render without it: credits unknown)."""
    template_spelling: Literal["documented", "depricated", "deprecated"] = "documented"
    """How the bare template answers spell the deprecation flag. ``documented`` [choice] follows
    each page: ``POST /v1/templates`` (create-template page example) says ``deprecated``;
    ``GET`` and ``PUT /v1/templates/{id}`` say ``depricated`` (the get-template page notes "API
    uses 'depricated' spelling"); ``GET /v1/templates`` items always say ``deprecated``.
    ``depricated`` or ``deprecated`` answers that spelling everywhere. The client reads both."""
    strict_variables: bool = True
    """Reject from-template variables the template does not declare (400 INVALID_REQUEST_BODY)."""
    storyboard_body_rules: bool = True
    """Check the body of ``POST /v2/video/storyboard[/render]`` against Pictory's rules (§6.3,
    ``contract.storyboard_body``): 400 ``INVALID_REQUEST_BODY`` listing every offending field,
    unknown fields stripped. [choice] Where the page is silent: unknown fields are stripped at the
    top level and in scenes (whose fields it lists whole), nested objects kept whole;
    ``videoName`` is required on the preview route too; ``autoMusic`` excludes ``musicUrl`` only
    when true. Off: the body is taken as sent (only a ``videoName`` and scene objects needed)."""
    webhook_timeout_s: float = Field(default=5.0, gt=0.0)
    """Timeout of each webhook POST."""
    webhook_allow_remote: bool = False
    """Deliver webhooks to non-loopback hosts too (off: they are skipped and counted)."""
    webhook_input_placement: Literal["top", "data", "none"] = "top"
    """Where the webhook POST echoes the creating request's ``webhookInput`` (an object the v2
    routes take, "echoed to the webhook", §6.3 [S2]). [choice] Where the echo sits is
    unpublished: ``top`` (default) puts it beside ``job_id``/``success``/``data``, ``data``
    inside ``data``, ``none`` leaves it out (the callback is then matched by its URL alone).
    The client's receiver reads both places."""

    # --- credentials ---
    require_user_id: bool = False
    """Refuse (401) a request with a client-credential token that carries no
    ``X-Pictory-User-Id``. [choice] Off by default: Pictory's Getting Started asks only for the
    client id and secret, and its own v2 example sends the bare token without the header
    (contract §6.1); the legacy reference pages list the header on every call but the token
    call (§0), so a stricter account can be played with this on. The token call never needs
    it."""
    strict_credential_routes: bool = False
    """Refuse an API key (401) on the v1 video-creation routes (``POST /v1/video/from-template``,
    ``POST /v1/video/storyboard``, ``PUT /v1/video/render/{id}``, ``POST /v1/video/render``),
    which Pictory documents for tokens only (contract §5.6). [choice] Off by default: the
    contract's simulator serves every route to both credential kinds; on, tests prove a client
    with a key takes the v2 routes. Tokens stay accepted on the v2 routes either way
    (documented, §5.6)."""

    # --- faults ---
    fault_server_error_p: Probability = 0.0
    """An API request is answered 500/502/503 without being handled."""
    fault_rate_limit_p: Probability = 0.0
    """An API request is answered 429 with ``Retry-After: fault_retry_after_s``."""
    retry_after_header: bool = True
    """[choice] Every 429 (the rate limit's and injected ones) carries ``Retry-After``; False
    answers bare 429s, which nothing published rules out (§1)."""
    fault_retry_after_s: int = Field(default=1, ge=0)
    """``Retry-After`` of injected 429s (whole seconds)."""
    fault_drop_p: Probability = 0.0
    """The connection is closed without an answer; for job-creating requests half of the drops
    happen after the job was created (the ambiguous case)."""
    fault_slow_p: Probability = 0.0
    """The request waits ``fault_slow_delay_s`` before being handled."""
    fault_slow_delay_s: float = Field(default=2.0, ge=0.0)
    fault_job_failed_p: Probability = 0.0
    """A job ends ``status: failed`` instead of completing."""
    fault_visual_not_found_p: Probability = 0.0
    """A job that searches stock visuals for its scenes (a storyboard preview, or a direct render
    of a storyboard) fails as Pictory's does when no stock visual fits a scene (§6.2, S2
    request-schema.md: "the job fails with SCENE_BACKGROUND_VISUAL_NOT_FOUND"): ``error_code``
    ``TEXT_TO_VIDEO_FAILED``, ``error_message`` starting ``SCENE_BACKGROUND_VISUAL_NOT_FOUND:``.
    [choice] Whether that name comes as the code or inside the message is unpublished; we put it
    in the message (the contract's reading) and the client looks in both. Decided per job at
    creation, after ``fault_job_failed_p`` (``flaky``: 2 %; only jobs that search draw)."""
    fault_job_stuck_p: Probability = 0.0
    """A job stays ``in-progress`` forever (its render slot is freed after the nominal time)."""
    fault_download_cut_p: Probability = 0.0
    fault_html_video_p: Probability = 0.0
    """A ``videoURL`` download answers an HTML page (``200``, ``text/html``) instead of the MP4:
    a CDN's error or login page, or a link that points at a viewing page (§5.5)."""
    """A download sends the full ``Content-Length`` header, then closes after part of the body."""
    fault_token_revoked_p: Probability = 0.0
    """A request with a legacy access token finds it revoked: 401, and the token stays dead."""
    fault_key_refused_p: Probability = 0.0
    """A request with a valid API key is answered 401 in passing, and the key stays good.
    [choice] Nothing public says whether Pictory ever does this; the client retries a key it
    has seen accepted and stops only when it stays refused (``api.tokens``)."""

    @classmethod
    def for_profile(cls, name: str, **overrides: Any) -> SimSettings:
        """The named profile's settings with ``overrides`` applied (unknown keys are errors)."""
        try:
            base = PROFILES[name]
        except KeyError:
            known = ", ".join(PROFILE_NAMES)
            raise ValueError(
                f"unknown simulator profile {name!r}; choose one of: {known}"
            ) from None
        return cls(**{**base, **overrides})

    def scaled_s(self, nominal_s: float) -> float:
        """A nominal duration with the time scale applied (before jitter)."""
        return nominal_s * self.time_scale


_FLAKY_FAULTS: dict[str, Any] = {
    "fault_server_error_p": 0.05,
    "fault_rate_limit_p": 0.05,
    "fault_drop_p": 0.03,
    "fault_slow_p": 0.05,
    "fault_slow_delay_s": 1.5,
    "fault_job_failed_p": 0.03,
    "fault_job_stuck_p": 0.03,
    "fault_visual_not_found_p": 0.02,
    "fault_download_cut_p": 0.05,
    "fault_html_video_p": 0.02,
    "fault_token_revoked_p": 0.03,
    "fault_key_refused_p": 0.02,  # drawn only for requests with an API key
}

_DEMO: dict[str, Any] = {
    "preview_s": 1.0,
    "render_s": 3.0,
    "transcription_s": 2.0,
    "jitter_frac": 1 / 3,
    "rate_limit_rps": 20.0,
    "max_concurrent_renders": 5,
}

PROFILES: dict[str, dict[str, Any]] = {
    "demo": _DEMO,
    "realistic": {
        "preview_s": 45.0,
        "render_s": 180.0,
        "transcription_s": 90.0,
        "jitter_frac": 0.5,
        "video_duration_s": 60.0,
        "rate_limit_rps": 5.0,
        "max_concurrent_renders": 3,
    },
    "flaky": {**_DEMO, **_FLAKY_FAULTS},
    "test": {
        "preview_s": 0.005,
        "render_s": 0.01,
        "transcription_s": 0.005,
        "jitter_frac": 0.5,
        "webhook_timeout_s": 2.0,
    },
}
