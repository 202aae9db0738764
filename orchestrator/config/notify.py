"""Where a batch's end-of-run notification goes: the source its ledger records (never the
URL: ``env:NAME``, ``file:PATH`` or ``config``) and the URL each process reads from it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from orchestrator.config.credentials import secret_file
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from orchestrator.config.settings import Config

ENV_NOTIFY_URL = "ORCHESTRATOR_NOTIFY_URL"
NOTIFY_FROM_ENV = "env:"
NOTIFY_FROM_FILE = "file:"
NOTIFY_FROM_CONFIG = "config"


def notify_source(given: str | None) -> str | None:
    """Where a batch's notification URL comes from, as its ledger records it (never the URL):
    ``env:NAME`` (the variable each process reads), ``file:PATH`` (a file holding it, read by
    each process; ``--notify-file``; recorded absolute) or ``config`` (``[notify] url``, or a
    ``--notify URL`` given to the process)."""
    if given is None:
        return None
    if given.startswith(NOTIFY_FROM_FILE):
        path = Path(given[len(NOTIFY_FROM_FILE) :]).expanduser().absolute()
        _url_in_file(path)  # a mistake is said now, not when the run ends
        return f"{NOTIFY_FROM_FILE}{path}"
    if given.startswith(NOTIFY_FROM_ENV):
        name = given[len(NOTIFY_FROM_ENV) :]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"--notify {given}: name an environment variable, e.g. env:SLACK_URL")
        return given
    if given == NOTIFY_FROM_CONFIG or given.startswith(("http://", "https://")):
        return NOTIFY_FROM_CONFIG
    raise ConfigError(
        "--notify must be an http:// or https:// URL, env:NAME (an environment variable holding "
        "it), file:PATH (a file holding it; --notify-file) or config ([notify] url)"
    )


def default_notify_source() -> str | None:
    """``env:ORCHESTRATOR_NOTIFY_URL`` when that variable holds a URL and nothing else says
    where to notify (no ``--notify``, no ``[notify] url``), else None."""
    return NOTIFY_FROM_ENV + ENV_NOTIFY_URL if os.environ.get(ENV_NOTIFY_URL, "").strip() else None


def _url_in_file(path: Path) -> SecretStr:
    value = secret_file(str(path), "--notify-file")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"--notify-file={path}: the file must hold an http:// or https:// URL")
    return SecretStr(value)


def notify_url(source: str | None, config: Config) -> SecretStr | None:
    """The notification URL this process posts to, from the batch's recorded ``source``."""
    if source is None:
        return None
    if source.startswith(NOTIFY_FROM_ENV):
        value = os.environ.get(source[len(NOTIFY_FROM_ENV) :], "").strip()
        return SecretStr(value) if value.startswith(("http://", "https://")) else None
    if source.startswith(NOTIFY_FROM_FILE):
        try:
            return _url_in_file(Path(source[len(NOTIFY_FROM_FILE) :]))
        except ConfigError:
            return None  # gone since the batch began: said as "notify_unset", never a crash
    return config.notify.url
