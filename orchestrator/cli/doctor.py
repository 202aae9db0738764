"""``orchestrator doctor``: is this machine ready to run a batch against the configured API?

It checks, in order, and with zero billable calls (a token, the quota and the template list):

1. credentials: which kind the environment holds (an API key ``pictai_…``, or client id +
   secret, with or without a user id: it is optional, §6.1), and where each came from (its
   variable, the file its ``*_FILE`` variable names, or the OS keyring), never a value; a
   secret on a running orchestrator's command line (``command line``); and the routes that
   kind takes (§5.6: videos on v2 with a key, on v1 with a token;
   ``[run] route = "direct"`` renders on ``POST /v2/video/storyboard/render`` either way);
2. the base URL answers as the Pictory API, and accepts the credentials (for client
   credentials, ``POST /v1/oauth2/token``; for an API key, the first call below);
3. clock skew: the ``Date`` header of the API's answers against this machine's clock;
4. quota: ``GET /v1/quota`` (§3), video minutes used of the limit;
5. templates: ``GET /v1/templates`` (§3), how many the account holds.

A check that cannot run because an earlier one failed is reported as skipped. Each failure says
what to fix. ``diagnose`` returns the findings; the CLI prints them and exits 0 (all passed,
warnings allowed) or 2 (something to fix).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.tokens import TOKEN_ENDPOINT, refusal_hint
from orchestrator.clock import Clock, RealClock
from orchestrator.config import (
    DEFAULT_BASE_URL,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_USER_ID,
    Config,
    Credentials,
)
from orchestrator.errors import ApiError, AuthError, NotDeliveredError, PermanentError

Verdict = Literal["ok", "warn", "fail", "skip"]

MAX_SKEW_S = 300.0
"""Beyond this the clocks disagree enough to matter (signed links, token expiry): a failure."""
WARN_SKEW_S = 30.0
"""Beyond this, a warning."""
DOCTOR_RETRY = RetryPolicy(max_attempts=2, base_delay_s=0.5, max_delay_s=2.0)
"""A doctor asks once more after a passing fault, not for minutes."""


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    verdict: Verdict
    detail: str
    fix: str | None = None

    def line(self) -> str:
        fix = f"\n          fix: {self.fix}" if self.fix else ""
        return f"  {self.verdict.upper():<5} {self.check}: {self.detail}{fix}"


def credential_finding(credentials: Credentials | None, problem: str | None) -> Finding:
    """What the environment holds (``problem``: why ``load_credentials`` refused it)."""
    if credentials is None:
        return Finding(
            "credentials",
            "fail",
            problem or "no Pictory credentials in the environment",
            f"export {ENV_API_KEY}=pictai_… (an API key), or {ENV_CLIENT_ID} and "
            f"{ENV_CLIENT_SECRET} (and {ENV_USER_ID} if your account has one)",
        )
    return Finding("credentials", "ok", credentials.describe())


def command_line_finding(exposures: list[tuple[int, str]]) -> Finding:
    """Secrets on the command lines of this user's running orchestrators
    (``exposed.running_exposures``): a warning naming each process and flag, with the safer
    form; never the value."""
    from orchestrator.cli.exposed import SAFER

    if not exposures:
        return Finding(
            "command line", "ok", "no running orchestrator has a secret in its arguments"
        )
    shown = ", ".join(f"{flag} (process {pid})" for pid, flag in exposures)
    flags = dict.fromkeys(flag for _, flag in exposures)
    return Finding(
        "command line",
        "warn",
        f"a secret is on the command line of a running orchestrator: {shown}; other users "
        "of this machine can see it (ps) and the shell's history keeps it",
        "; ".join(f"instead of {flag}, {SAFER[flag]}" for flag in flags),
    )


def route_finding(config: Config, credentials: Credentials) -> Finding:
    """Which routes a run takes with ``credentials`` (contract §5.6; ``client.video_routes``):
    Pictory documents video creation with an API key only on v2, and the v1 video routes only
    for tokens. Transcription is v2, and jobs, templates, media and quota v1, for both."""
    if credentials.kind == "api_key":
        auth = "the key sent bare in Authorization, no token"
        videos = (
            "videos on v2: POST /v2/video/storyboard, then PUT /v2/video/render/{previewJobId} "
            "(video edits: POST /v2/video/render)"
        )
    else:
        user = " with X-Pictory-User-Id" if credentials.user_id else ", no X-Pictory-User-Id"
        auth = f"a token from POST /v1/oauth2/token, sent bare{user}"
        videos = (
            "videos on v1: POST /v1/video/from-template or /v1/video/storyboard, then PUT "
            "/v1/video/render/{previewJobId} (video edits: POST /v1/video/render)"
        )
    if config.run.route == "direct":
        videos += "; template and storyboard rows: POST /v2/video/storyboard/render ([run] route)"
    return Finding("routes", "ok", f"{auth}; {videos}")


async def diagnose(
    config: Config,
    credentials: Credentials,
    *,
    clock: Clock | None = None,
) -> list[Finding]:
    """Run checks 2–5 against ``config.api.base_url`` with ``credentials``; the API's clock is
    compared with ``clock``'s calendar time (the system's by default)."""
    clock = clock or RealClock()
    limiter = RateLimiter(clock, max_rps=config.limits.max_requests_per_s)
    base_url = config.api.base_url
    findings = [route_finding(config, credentials)]
    async with PictoryClient(
        config.api, credentials, clock=clock, limiter=limiter, retry_policy=DOCTOR_RETRY
    ) as client:
        try:
            quota = await client.quota()
        except ApiError as exc:
            findings.append(_access_failure(exc, base_url, credentials))
            for check in ("clock", "quota", "templates"):
                findings.append(Finding(check, "skip", "needs a working base URL and credentials"))
            return findings
        who = "token issued" if credentials.kind == "client_credentials" else "API key accepted"
        findings.append(Finding("API", "ok", f"{base_url} answers as the Pictory API ({who})"))
        findings.append(_skew_finding(client.server_date, clock.wall_s()))
        findings.append(_quota_finding(quota))
        try:
            templates = await client.list_templates()
        except ApiError as exc:
            findings.append(
                Finding(
                    "templates",
                    "fail",
                    f"GET /v1/templates failed: {exc.describe()}",
                    "check that the account may use templates; runs upload their own .pictai "
                    "but need the same access",
                )
            )
        else:
            findings.append(Finding("templates", "ok", f"{len(templates)} on the account"))
    return findings


def _access_failure(exc: ApiError, base_url: str, credentials: Credentials) -> Finding:
    """Why the first call failed: the address, the credentials, or the service."""
    host = urlsplit(base_url).netloc or base_url
    url_fix = f"set {ENV_BASE_URL} (or [api] base_url) to the API's root, {DEFAULT_BASE_URL}"
    if isinstance(exc, NotDeliveredError):
        return Finding(
            "API",
            "fail",
            f"cannot reach {host}: {exc.message}",
            f"check the network, or {url_fix}",
        )
    status = exc.status
    if status in (401, 403) or isinstance(exc, AuthError):
        if exc.endpoint == TOKEN_ENDPOINT:
            return Finding(
                "API",
                "fail",
                f"{base_url} refused the client credentials (HTTP {status})",
                f"check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} (copy them again from Pictory's "
                "API settings)",
            )
        what = (
            f"the API key in {ENV_API_KEY}"
            if credentials.kind == "api_key"
            else "the access token"
            + (f" or the user id in {ENV_USER_ID}" if credentials.user_id else "")
        )
        return Finding(
            "API",
            "fail",
            f"{base_url} refused {what} (HTTP {status})",
            refusal_hint(credentials),
        )
    if status in (404, 405) or (isinstance(exc, PermanentError) and status is None):
        return Finding(
            "API",
            "fail",
            f"{base_url} is not the Pictory API: {exc.endpoint} answered "
            + (f"HTTP {status}" if status else exc.message),
            url_fix,
        )
    if status is not None and 200 <= status < 300:
        return Finding(
            "API",
            "fail",
            f"{base_url} answers, but not as the Pictory API ({exc.message})",
            url_fix,
        )
    return Finding(
        "API",
        "fail",
        f"{exc.endpoint} failed: {exc.describe()}",
        "the service may be down or overloaded; try again in a few minutes",
    )


def _skew_finding(server_date: str | None, local_s: float) -> Finding:
    if not server_date:
        return Finding("clock", "warn", "the API sent no Date header; skew not measured")
    try:
        server_s = parsedate_to_datetime(server_date).timestamp()
    except (TypeError, ValueError):
        return Finding("clock", "warn", f"unreadable Date header {server_date!r}")
    skew_s = local_s - server_s
    detail = f"this machine is {abs(skew_s):.0f} s {'ahead of' if skew_s > 0 else 'behind'} the API"
    if abs(skew_s) > MAX_SKEW_S:
        return Finding("clock", "fail", detail, "set the clock right (enable NTP: timedatectl)")
    if abs(skew_s) > WARN_SKEW_S:
        return Finding("clock", "warn", detail, "enable NTP (timedatectl set-ntp true)")
    return Finding("clock", "ok", f"within {WARN_SKEW_S:.0f} s of the API's ({skew_s:+.1f} s)")


def _quota_finding(quota: dict[str, Any]) -> Finding:
    minutes = quota.get("videoMinutes")
    if not isinstance(minutes, dict):
        return Finding("quota", "warn", "the quota answer has no videoMinutes; not checked")
    used, limit = minutes.get("used"), minutes.get("limit")
    if not isinstance(used, int | float) or not isinstance(limit, int | float):
        return Finding("quota", "warn", f"unreadable videoMinutes {minutes!r}")
    detail = f"{used:,.1f} of {limit:,.0f} video minutes used"
    if used >= limit:
        return Finding("quota", "fail", detail, "no video minutes left: renders will be refused")
    return Finding("quota", "ok", detail)
