"""Secrets, from the environment only: the Pictory credentials (a variable, the file its
``NAME_FILE`` names, or the OS keyring; see the package docstring), the shared ledger's
database password and ``serve``'s token, and the account key naming whose limits and job ids
are shared. Held as ``SecretStr``, so they never print.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from orchestrator.errors import ConfigError

ENV_CLIENT_ID = "PICTORY_CLIENT_ID"
ENV_CLIENT_SECRET = "PICTORY_CLIENT_SECRET"
ENV_USER_ID = "PICTORY_USER_ID"
ENV_API_KEY = "PICTORY_API_KEY"
ENV_PG_PASSWORD = "PGPASSWORD"
FILE_SUFFIX = "_FILE"
"""``NAME_FILE`` names a file holding ``NAME``'s value (Docker and Kubernetes secrets)."""
KEYRING_SERVICE = "orchestrator"
"""The OS keyring's service name our credentials are stored under (``keyring set orchestrator
PICTORY_API_KEY``)."""


class NoCredentials(ConfigError):
    """``load_credentials(required=True)`` found none at all (``forget`` then leaves the jobs
    at Pictory and says so; every other command stops)."""


class Credentials(BaseModel):
    """Either an API key (``pictai_...``) or client credentials (id + secret), with a user id
    when one is configured: Pictory's Getting Started asks only for the id and the secret, and
    its own v2 example sends no ``X-Pictory-User-Id`` (contract §6.1), so the user id is optional
    and sent only when set."""

    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = None
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    user_id: str | None = None
    sources: dict[str, str] = {}
    """Where each credential came from, by variable name: ``env``, ``file PATH`` or
    ``keyring`` (absent: the environment variable)."""

    @property
    def kind(self) -> Literal["api_key", "client_credentials"]:
        return "api_key" if self.api_key is not None else "client_credentials"

    def describe(self) -> str:
        """Which credential this is, in words, naming where each part comes from and never a
        secret (``orchestrator doctor``)."""
        if self.kind == "api_key":
            return f"an API key (pictai_…) {self._from(ENV_API_KEY)}"
        user = (
            f", with the user id from {ENV_USER_ID}"
            if self.user_id
            else f", without a user id ({ENV_USER_ID} not set; none is needed)"
        )
        if set(self.sources.values()) <= {"env"}:  # both from their variables
            return f"client credentials from {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}{user}"
        return (
            f"client credentials: the id {self._from(ENV_CLIENT_ID)}, the secret "
            f"{self._from(ENV_CLIENT_SECRET)}{user}"
        )

    def _from(self, name: str) -> str:
        where = self.sources.get(name, "env")
        if where == "env":
            return f"from {name}"
        if where == "keyring":
            return f"from the OS keyring ({KEYRING_SERVICE}/{name})"
        return f"from the file {where.removeprefix('file ')} ({name}{FILE_SUFFIX})"

    def secrets(self) -> list[str]:
        """Every secret value, so sinks can scrub them from anything they write."""
        values = [self.api_key, self.client_id, self.client_secret]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


def load_credentials(*, required: bool) -> Credentials:
    """Secrets come only from the environment. ``required`` is False in simulation.

    An API key wins over client credentials. ``PICTORY_USER_ID`` is optional (§6.1): sent as
    ``X-Pictory-User-Id`` when set, never asked for. One of the id and the secret without the
    other is a mistake named here, not a 401 later."""
    env = os.environ
    sources: dict[str, str] = {}
    api_key = _secret(ENV_API_KEY, sources, keyring=required)
    client_id = _secret(ENV_CLIENT_ID, sources, keyring=required and not api_key)
    client_secret = _secret(ENV_CLIENT_SECRET, sources, keyring=required and not api_key)
    user_id = env.get(ENV_USER_ID, "").strip() or None
    if api_key:
        return Credentials(api_key=SecretStr(api_key), sources=_only(sources, ENV_API_KEY))
    if client_id and client_secret:
        return Credentials(
            client_id=SecretStr(client_id),
            client_secret=SecretStr(client_secret),
            user_id=user_id,
            sources=_only(sources, ENV_CLIENT_ID, ENV_CLIENT_SECRET),
        )
    if required and (client_id or client_secret):
        given, missing = (
            (ENV_CLIENT_ID, ENV_CLIENT_SECRET) if client_id else (ENV_CLIENT_SECRET, ENV_CLIENT_ID)
        )
        raise ConfigError(
            f"{given} is set but {missing} is not: client credentials are the two together "
            f"(both from Pictory's API settings); or use an API key in {ENV_API_KEY}"
        )
    if required:
        raise NoCredentials(
            f"no Pictory credentials: set {ENV_API_KEY} (an API key, pictai_…), or "
            f"{ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} ({ENV_USER_ID} too if your account has "
            "one); or try the tool offline with --simulate"
        )
    return Credentials(  # no user id: the embedded simulator, like Pictory, needs none (§6.1)
        client_id=SecretStr("simulated-client"), client_secret=SecretStr("simulated-secret")
    )


def _only(sources: dict[str, str], *names: str) -> dict[str, str]:
    return {name: sources[name] for name in names if name in sources}


def _secret(name: str, sources: dict[str, str], *, keyring: bool) -> str:
    """Credential ``name`` from the variable, else the file ``NAME_FILE`` names, else (with
    ``keyring``) the OS keyring; "" when none holds it. ``sources[name]`` says which. Both the
    variable and its ``_FILE`` set, or a file that cannot be read, is a one-line ConfigError."""
    value = os.environ.get(name, "").strip()
    file_name = os.environ.get(name + FILE_SUFFIX, "").strip()
    if value and file_name:
        raise ConfigError(
            f"both {name} and {name}{FILE_SUFFIX} are set: keep one (the file is the safer)"
        )
    if value:
        sources[name] = "env"
        return value
    if file_name:
        sources[name] = f"file {file_name}"
        return secret_file(file_name, f"{name}{FILE_SUFFIX}")
    found = _from_keyring(name) if keyring else ""
    if found:
        sources[name] = "keyring"
    return found


def secret_file(path: str, named_by: str) -> str:
    """The content of the secret file ``path`` (``named_by``: the variable or option naming
    it), stripped; a missing, unreadable or empty file is a one-line ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"{named_by}={path}: cannot read the secret file ({reason}); fix the path or "
            "its permissions"
        ) from exc
    if not text:
        raise ConfigError(f"{named_by}={path}: the secret file is empty")
    return text


def _from_keyring(name: str) -> str:
    """``name`` from the OS keyring (service ``orchestrator``), or "" when the optional
    ``keyring`` package is not installed, has no usable backend, or holds nothing there."""
    try:
        import keyring
        import keyring.errors
    except ImportError:
        return ""
    try:
        value = keyring.get_password(KEYRING_SERVICE, name)
    except keyring.errors.NoKeyringError:
        return ""
    except keyring.errors.KeyringError as exc:
        raise ConfigError(
            f"the OS keyring could not be read for {KEYRING_SERVICE}/{name} ({exc}); unlock it, "
            f"or set {name} or {name}{FILE_SUFFIX} instead"
        ) from exc
    return (value or "").strip()


def ledger_password() -> SecretStr | None:
    """The shared ledger's database password (``PGPASSWORD``), if set."""
    value = os.environ.get(ENV_PG_PASSWORD)
    return SecretStr(value) if value else None


ENV_SERVE_TOKEN = "ORCHESTRATOR_SERVE_TOKEN"


def serve_token() -> SecretStr | None:
    """The token ``orchestrator serve``'s page asks for (``ORCHESTRATOR_SERVE_TOKEN``), if set."""
    value = os.environ.get(ENV_SERVE_TOKEN, "").strip()
    return SecretStr(value) if value else None


def account_key(base_url: str, credentials: Credentials) -> str:
    """A stable name for the account, holding no secret (workers of one account share its
    limits and its job ids)."""
    if credentials.api_key is not None:
        who = "key:" + hashlib.sha256(credentials.api_key.get_secret_value().encode()).hexdigest()
    else:
        client = credentials.client_id.get_secret_value() if credentials.client_id else ""
        who = f"user:{credentials.user_id}:" + hashlib.sha256(client.encode()).hexdigest()
    return hashlib.sha256(f"{base_url}|{who}".encode()).hexdigest()[:24]
