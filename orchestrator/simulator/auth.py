"""Who is calling: legacy access tokens, API keys, and the per-account request-rate limit.

Accounts: a legacy caller's account is its ``client_id`` (the token remembers it); an API-key
caller's account is the key. Any non-empty credentials are accepted, unless the settings name the
one client secret or API key to accept (``accepted_client_secret``, ``accepted_api_key``). Account
names in the stats never contain a secret: keys are shown as a short hash.

The user id (``X-Pictory-User-Id``) is optional, as Pictory documents it (contract §6.1): a token
call needs only ``client_id`` + ``client_secret``, and a token-authenticated request without the
header is served, unless ``require_user_id`` asks for it (``SimSettings.require_user_id``).

Every refusal is a 401 whose body is Pictory's, ``{"message": "Unauthorized"}`` (§6.1 [S2];
``answers.problem_response``). [choice] Why it was refused (a missing header, an unknown or
expired token, a wrong key: the ``error_code`` below and a sentence that says what to do) is
kept out of that body, where a client written for Pictory would never see it, and sent in the
response header ``X-Simulator-Reason`` (``CODE: sentence``) and the simulator's request log.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.simulator.answers import ApiProblem
from orchestrator.simulator.faults import FaultPlan

API_KEY_PREFIX = "pictai_"
USER_ID_HEADER = "X-Pictory-User-Id"
TOKEN_SWEEP_EVERY = 1024
MINUTE_S = 60.0


def unauthorized(message: str, code: str = "UNAUTHORIZED") -> ApiProblem:
    """A 401: answered ``{"message": "Unauthorized"}``, the reason in ``X-Simulator-Reason``."""
    return ApiProblem(401, code, message)


def client_account(client_id: str) -> str:
    return f"client:{client_id}"


KEY_ACCOUNT_PREFIX = "key:"


def key_account(api_key: str) -> str:
    return KEY_ACCOUNT_PREFIX + hashlib.sha256(api_key.encode()).hexdigest()[:12]


@dataclass(slots=True)
class Token:
    account: str
    expires_at: float


class Authenticator:
    """Issues legacy tokens and checks the ``Authorization`` header of every other call."""

    def __init__(
        self,
        *,
        token_lifetime_s: float,
        new_token: Callable[[], str],
        faults: FaultPlan,
        accepted_client_secret: str | None = None,
        accepted_api_key: str | None = None,
        require_user_id: bool = False,
    ) -> None:
        self._require_user_id = require_user_id
        self._accepted_secret = accepted_client_secret
        self._accepted_key = accepted_api_key
        self._lifetime_s = token_lifetime_s
        self._new_token = new_token
        self._faults = faults
        self._tokens: dict[str, Token] = {}
        self._issued = 0

    def check_client_secret(self, client_secret: str) -> None:
        """401 unless ``client_secret`` is the accepted one (any, when none is set)."""
        if self._accepted_secret is not None and client_secret != self._accepted_secret:
            raise unauthorized("invalid client credentials", "INVALID_CLIENT")

    def issue(self, client_id: str, now: float) -> tuple[str, float]:
        """A new token for ``client_id``: ``(access_token, expires_in_s)``."""
        self._issued += 1
        if self._issued % TOKEN_SWEEP_EVERY == 0:
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
        token = self._new_token()
        self._tokens[token] = Token(client_account(client_id), now + self._lifetime_s)
        return token, self._lifetime_s

    def authenticate(self, headers: Mapping[str, str], now: float) -> str:
        """The calling account, or a 401 that says what is missing or wrong."""
        value = headers.get("Authorization", "").strip()
        if not value:
            raise unauthorized(
                "missing Authorization header: send the access token from /v1/oauth2/token "
                "or an API key starting 'pictai_'"
            )
        scheme, _, rest = value.partition(" ")
        bearer = scheme.lower() == "bearer" and bool(rest.strip())
        credential = rest.strip() if bearer else value
        if credential.startswith(API_KEY_PREFIX):
            if bearer:
                raise unauthorized("send the API key bare in Authorization, without 'Bearer '")
            if self._accepted_key is not None and credential != self._accepted_key:
                raise unauthorized("invalid API key", "INVALID_API_KEY")
            if self._faults.key_refused():
                raise unauthorized("the API key was refused in passing", "KEY_REFUSED")
            return key_account(credential)
        token = self._tokens.get(credential)
        if token is None:
            raise unauthorized("unknown access token; ask /v1/oauth2/token for a new one")
        if now >= token.expires_at:
            del self._tokens[credential]
            raise unauthorized("the access token has expired; ask for a new one", "TOKEN_EXPIRED")
        if self._require_user_id and not headers.get(USER_ID_HEADER, "").strip():
            raise unauthorized(
                f"missing {USER_ID_HEADER} header: this simulator was started with "
                "require_user_id (--require-user-id); send the account's user id",
                "MISSING_USER_ID",
            )
        if self._faults.token_revoked():
            del self._tokens[credential]
            raise unauthorized("the access token was revoked; ask for a new one", "TOKEN_REVOKED")
        return token.account


TOKEN_ONLY_ROUTES = frozenset(
    {
        "POST /v1/video/from-template",
        "POST /v1/video/storyboard",
        "PUT /v1/video/render/{id}",
        "POST /v1/video/render",
    }
)
"""The video-creation routes Pictory documents for access tokens only (contract §5.6)."""


def check_route_credential(route: str, account: str, *, strict: bool) -> None:
    """With ``strict`` (``SimSettings.strict_credential_routes``), an API key on a token-only
    route is refused like an unusable credential: 401 and the error envelope. [choice] The real
    API's answer to a key on these routes is unpublished; 401 is its answer to a credential it
    cannot use (§1)."""
    if strict and route in TOKEN_ONLY_ROUTES and account.startswith(KEY_ACCOUNT_PREFIX):
        raise unauthorized(
            f"{route} takes an access token from /v1/oauth2/token; with an API key create "
            "videos with POST /v2/video/storyboard, PUT /v2/video/render/{previewJobId} or "
            "POST /v2/video/render",
            "API_KEY_NOT_ALLOWED",
        )


class RateLimiter:
    """Fixed windows per account: at most ``rps × window`` requests per window, and with ``rpm``
    at most ``rpm`` requests per minute (windows of 60 s aligned on the clock's minutes).

    The second's window is 1 s (longer when ``rps`` < 1, so that at least one request fits).
    A refused request counts against neither window. [choice] Pictory publishes no rate limit
    at all (contract §1): a per-minute limit beside the per-second one, and its ``Retry-After``
    (whole seconds to the end of the minute), are ours (``SimSettings.rate_limit_rpm``).
    """

    def __init__(self, rps: float | None, rpm: int | None = None) -> None:
        self._rps = rps
        if rps is None:
            self._window_s, self._max = 1.0, 0
        else:
            self._window_s = max(1.0, 1.0 / rps)
            self._max = max(1, math.floor(rps * self._window_s + 1e-9))
        self._rpm = rpm
        self._windows: dict[str, tuple[int, int]] = {}
        self._minutes: dict[str, tuple[int, int]] = {}

    def retry_after_s(self, account: str, now: float) -> int | None:
        """Count one request; ``None`` if allowed, else whole seconds to wait (at least 1)."""
        waits: list[float] = []
        window = minute = count = in_minute = 0
        if self._rps is not None:
            window = int(now // self._window_s)
            current, count = self._windows.get(account, (window, 0))
            if current != window:
                count = 0
            if count >= self._max:
                waits.append((window + 1) * self._window_s - now)
        if self._rpm is not None:
            minute = int(now // MINUTE_S)
            current, in_minute = self._minutes.get(account, (minute, 0))
            if current != minute:
                in_minute = 0
            if in_minute >= self._rpm:
                waits.append((minute + 1) * MINUTE_S - now)
        if waits:
            return max(1, math.ceil(max(waits)))
        if self._rps is not None:
            self._windows[account] = (window, count + 1)
        if self._rpm is not None:
            self._minutes[account] = (minute, in_minute + 1)
        return None


def rate_limited(retry_after_s: int, *, header: bool = True) -> ApiProblem:
    """A 429 in the error envelope; ``header`` False leaves out ``Retry-After`` (§1: nothing
    documents it, and a client must cope without it)."""
    if not header:
        return ApiProblem(429, "RATE_LIMITED", "too many requests; slow down")
    return ApiProblem(
        429,
        "RATE_LIMITED",
        f"too many requests; retry after {retry_after_s} s and slow down",
        headers={"Retry-After": str(retry_after_s)},
    )
