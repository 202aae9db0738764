"""What a request sends in ``Authorization``, and when the access token is fetched again.

``Auth`` holds no connection: ``client.PictoryClient`` gives it a ``fetch`` that sends the token
request (rate-limited, counted, its status translated by the client) and answers the body.

With an API key the key is sent bare on every call and nothing here fetches anything. With client
credentials (§2 step 1) the token is sent bare, with ``X-Pictory-User-Id`` only when a user id is
configured: it is optional (§6.1), and the token call never carries it.

- **Caching and renewal.** The token is kept and renewed ``min(token_refresh_margin_s, lifetime /
  2)`` before it expires: a token that lives no longer than the margin (20 s against the default
  300 s) is used for half its life instead of counting as expired the moment it arrives (which
  once asked for tokens in a loop and sent no API request at all).
- **One shared refresh.** Every task that finds no usable token waits on one lock; the first
  fetches, the others use what it fetched.
- **After a 401** the refused token is dropped at once (no other request may send it meanwhile)
  and one refresh is shared by every request that failed with that token.
- **Bounded waits.** One request waits for at most ``MAX_TOKEN_WAITS`` token fetches (tokens that
  expire while it waits for its turn), then fails with an AuthError naming the token endpoint.
- **Latched refusal.** When the credentials themselves are refused, the refusal is remembered
  for the client's life: a 401 to an API key (there is nothing to refresh: the key is wrong,
  revoked, or of no account at this base URL), or the token endpoint's 401/403 to the client
  credentials. The call that met it fails at once with ``CredentialsRefusedError`` (no backoff:
  retrying a wrong key cost ~20 s a row); every later call raises ``CredentialsStop`` before
  anything is sent, so a wrong key costs one refused request, not one a row, and a run stops
  admitting rows, leaving them pending (``run.execute``). A 401 to an access token is not
  latched: a token expires or is revoked, and a fresh one mends it (see "After a 401").
- **A key that worked.** Once a call with the API key was answered (``accepted``), a 401 to it
  is latched only when every call has been refused for ``KEY_REFUSED_FOR_S`` with none answered
  in between: a key revoked mid-run stays refused, while a glitch at the API (a 401 to a few
  calls, then answers again) must not stop an overnight run. Until then a 401'd call is retried
  by the retry table's 401 rule (a 401 started no job, so a render is safe to send again). A
  key refused before any call was answered is latched at its first 401, as above.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from orchestrator.clock import Clock
from orchestrator.config import (
    ENV_API_KEY,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_USER_ID,
    Credentials,
)
from orchestrator.errors import (
    AuthError,
    CredentialsRefusedError,
    CredentialsStop,
    PermanentError,
    TransientError,
)

TOKEN_PATH = "/v1/oauth2/token"
TOKEN_ENDPOINT = f"POST {TOKEN_PATH}"
DEFAULT_TOKEN_LIFETIME_S = 3600.0
"""Assumed when a token answer has no usable ``expires_in`` (§2 step 1: tokens live 3600 s)."""
KEY_REFUSED_FOR_S = 60.0
"""How long an API key that was accepted earlier must be refused, with no call answered in
between, before the refusal is latched ("A key that worked")."""
MAX_TOKEN_WAITS = 3
"""Token requests one API call may wait for before it gives up (a token that is unusable as
soon as it arrives must not become a loop of token requests)."""
REFUSED_STATUSES = (401, 403)
"""Statuses with which the token endpoint refuses the credentials themselves."""

FetchToken = Callable[[dict[str, str]], Awaitable[Any]]
"""Sends the token request with this JSON payload; returns the 2xx answer's body (parsed JSON) or
raises the client's translation of any other status."""


class Auth:
    """The credential of one client: headers to send, the token cache, refreshes."""

    def __init__(
        self, credentials: Credentials, *, clock: Clock, margin_s: float, fetch: FetchToken
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._margin_s = margin_s
        self._fetch = fetch
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = anyio.Lock()
        self._refused: ApiRefusal | None = None
        """The refusal of the credentials themselves, once met ("Latched refusal")."""
        self._key_worked = False
        self._key_refused_since_s: float | None = None
        """When the API key's 401s began, none answered since ("A key that worked")."""

    async def headers(self, take_turn: Callable[[], Awaitable[None]]) -> dict[str, str]:
        """The headers for one request, after its turn (``take_turn``: the rate limiter).

        When the token must be fetched first, wait for that (one fetch shared by all), then take
        a new turn: requests that waited for the token must not all go out at once when it
        arrives. At most ``MAX_TOKEN_WAITS`` fetches are waited for. Once the credentials were
        refused, raises ``CredentialsStop`` at once: nothing is sent."""
        if self._refused is not None:
            raise self._stop()
        await take_turn()
        headers = self._current_headers()
        waited = 0
        while headers is None:
            waited += 1
            if waited > MAX_TOKEN_WAITS:
                raise AuthError(
                    f"no usable access token after {MAX_TOKEN_WAITS} token requests "
                    "(each expired before it could be used); check the API's clock and "
                    "expires_in",
                    endpoint=TOKEN_ENDPOINT,
                )
            async with self._lock:  # one refresh shared by every waiting task
                if self._refused is not None:  # refused while this task waited: not sent
                    raise self._stop()
                if self._usable_token() is None:
                    await self._fetch_token()
            await take_turn()
            headers = self._current_headers()
        return headers

    async def refresh_after_401(self, refused: str | None) -> None:
        """The API refused the credential ``refused`` (as sent in ``Authorization``): fetch a new
        token, unless another task already replaced it (one refresh shared by every request that
        failed with the same token). Nothing mends a 401 to an API key: it is refused for good
        ("Latched refusal"), and this call fails with ``CredentialsRefusedError`` (an ApiError:
        it was answered, so a render it carried started no job), unless the key was accepted
        earlier and has been refused for less than ``KEY_REFUSED_FOR_S``: then this returns
        and the call is sent again ("A key that worked")."""
        if self._credentials.api_key is not None:
            if self._refused is None:
                if self._key_worked:
                    now_s = self._clock.now()
                    if self._key_refused_since_s is None:
                        self._key_refused_since_s = now_s
                    if now_s - self._key_refused_since_s < KEY_REFUSED_FOR_S:
                        return  # perhaps a glitch: the call tries again
                self._refused = ApiRefusal(status=401, error_code=None)
            raise self._refusal()
        if self._token == refused:
            self._token = None  # at once: no other request may send the refused token meanwhile
        async with self._lock:
            if self._token is None:
                await self._fetch_token()

    def accepted(self) -> None:
        """A call with the current credential was answered: an API key's 401s since the last
        answer were a glitch ("A key that worked")."""
        self._key_worked = True
        self._key_refused_since_s = None

    @property
    def refusal_hint(self) -> str:
        """What to check when the API answers 401 to a call (``responses.answer_body``)."""
        return f"{refusal_hint(self._credentials)}; orchestrator doctor tests them"

    def _current_headers(self) -> dict[str, str] | None:
        """The headers to send now; None when the token must be fetched first."""
        creds = self._credentials
        if creds.api_key is not None:
            return {"Authorization": creds.api_key.get_secret_value()}
        token = self._usable_token()
        if token is None:
            return None
        headers = {"Authorization": token}
        if creds.user_id:
            headers["X-Pictory-User-Id"] = creds.user_id
        return headers

    def _usable_token(self) -> str | None:
        if self._token is not None and self._clock.now() < self._renew_at:
            return self._token
        return None

    async def _fetch_token(self) -> None:
        if self._refused is not None:
            raise self._refusal()
        creds = self._credentials
        assert creds.client_id is not None and creds.client_secret is not None
        payload = {
            "client_id": creds.client_id.get_secret_value(),
            "client_secret": creds.client_secret.get_secret_value(),
        }
        try:
            body = await self._fetch(payload)
        except PermanentError as exc:
            if exc.status in REFUSED_STATUSES:
                self._refused = ApiRefusal(status=exc.status, error_code=exc.error_code)
                raise self._refusal() from exc
            raise
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TransientError("token answer without access_token", endpoint=TOKEN_ENDPOINT)
        lifetime_s = _lifetime_s(body.get("expires_in"))
        self._token = token
        # Renew ``token_refresh_margin_s`` before expiry, but never so early that a fresh token
        # already counts as expired (a token that lives 20 s with a 300 s margin did, and the
        # client asked for tokens in a loop): at most half the token's lifetime.
        self._renew_at = self._clock.now() + lifetime_s - min(self._margin_s, lifetime_s / 2)

    def _refusal(self) -> CredentialsRefusedError:
        """The latched refusal, as a new exception each time it is raised: a call answered 401
        (an API key), or a token request refused."""
        assert self._refused is not None
        key = self._credentials.api_key is not None
        return CredentialsRefusedError(
            self._refusal_message(),
            endpoint="" if key else TOKEN_ENDPOINT,
            status=self._refused.status,
            error_code=self._refused.error_code,
        )

    def _stop(self) -> CredentialsStop:
        """What a call raises instead of being sent once the credentials were refused."""
        return CredentialsStop(self._refusal_message())

    def _refusal_message(self) -> str:
        creds = self._credentials
        if creds.api_key is not None:
            where = (
                "" if creds.sources.get(ENV_API_KEY, "env") == "env" else f" ({creds.describe()})"
            )
            return (
                f"the API refused the API key{where}: check {ENV_API_KEY} (a key of the "
                "account at this base URL); `orchestrator doctor` tests it"
            )
        return (
            f"the token endpoint refused our client credentials: check {ENV_CLIENT_ID} and "
            f"{ENV_CLIENT_SECRET}; `orchestrator doctor` tests them"
        )


@dataclass(frozen=True, slots=True)
class ApiRefusal:
    """What is kept of the refusal of the credentials (the status and code it came with)."""

    status: int | None
    error_code: str | None


def refusal_hint(credentials: Credentials) -> str:
    """What to check when the API refuses ``credentials`` with a 401: the variables of the
    credential in use, never their values (the user id only matters when set, §6.1)."""
    if credentials.api_key is not None:
        return f"check {ENV_API_KEY}"
    user = (
        f", and {ENV_USER_ID}"
        if credentials.user_id
        else f" (and if your account has a user id, set {ENV_USER_ID})"
    )
    return f"check {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}{user}"


def _lifetime_s(expires_in: Any) -> float:
    """``expires_in`` in seconds; the documented 3600 when absent or unreadable (§2 step 1)."""
    try:
        value = float(expires_in)
    except (TypeError, ValueError):
        return DEFAULT_TOKEN_LIFETIME_S
    return value if value > 0 and value == value else DEFAULT_TOKEN_LIFETIME_S
