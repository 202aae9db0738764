"""Settings: the TOML config file, the environment, and their defaults.

This is the only package that reads environment variables. The config is a frozen pydantic model
that rejects unknown keys (``extra="forbid"``), so a typo is an error naming the key, never silently
dropped. Secrets come only from the environment (a variable, a file a variable names, or the OS
keyring) and are held as ``SecretStr`` so they never print.

Each Pictory credential ``NAME`` (``PICTORY_API_KEY``, ``PICTORY_CLIENT_ID``,
``PICTORY_CLIENT_SECRET``) is read from, in order: the variable ``NAME``; the file named by
``NAME_FILE`` (a container secret, its content stripped); the OS keyring (service
``orchestrator``, user ``NAME``) when the optional ``keyring`` package is installed and the real
API is used. ``Credentials.sources`` says which, for ``doctor``; never the value.

Precedence, lowest first: defaults here → ``--config FILE`` → environment (``PICTORY_API_BASE_URL``)
→ command-line options.

The modules: ``settings`` (the model, one section per TOML table, and ``load_config``),
``credentials`` (the Pictory credentials and the other secrets), ``notify`` (where the end-of-run
notification goes) and ``machine`` (the calibration profiles' folder, the time zone). Import the
names from ``orchestrator.config``: it re-exports them all. It may import ``errors`` only
(and the package's ``USER_AGENT``).
"""

from __future__ import annotations

from orchestrator.config.credentials import (
    ENV_API_KEY,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_PG_PASSWORD,
    ENV_SERVE_TOKEN,
    ENV_USER_ID,
    FILE_SUFFIX,
    KEYRING_SERVICE,
    Credentials,
    account_key,
    ledger_password,
    load_credentials,
    secret_file,
    serve_token,
)
from orchestrator.config.machine import ENV_CONFIG_HOME, calibration_dir, machine_time_zone
from orchestrator.config.notify import (
    ENV_NOTIFY_URL,
    NOTIFY_FROM_CONFIG,
    NOTIFY_FROM_ENV,
    NOTIFY_FROM_FILE,
    default_notify_source,
    notify_source,
    notify_url,
)
from orchestrator.config.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_ROWS,
    ENV_BASE_URL,
    MAX_PRESIGN_DAYS,
    ApiConfig,
    Config,
    DeliverConfig,
    InputConfig,
    LedgerConfig,
    LimitsConfig,
    MetricsConfig,
    NotifyConfig,
    PictoryConfig,
    PollConfig,
    ReportConfig,
    RetryConfig,
    RunConfig,
    WebhookConfig,
    load_config,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_ROWS",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_CONFIG_HOME",
    "ENV_NOTIFY_URL",
    "ENV_PG_PASSWORD",
    "ENV_SERVE_TOKEN",
    "ENV_USER_ID",
    "FILE_SUFFIX",
    "KEYRING_SERVICE",
    "MAX_PRESIGN_DAYS",
    "NOTIFY_FROM_CONFIG",
    "NOTIFY_FROM_ENV",
    "NOTIFY_FROM_FILE",
    "ApiConfig",
    "Config",
    "Credentials",
    "DeliverConfig",
    "InputConfig",
    "LedgerConfig",
    "LimitsConfig",
    "MetricsConfig",
    "NotifyConfig",
    "PictoryConfig",
    "PollConfig",
    "ReportConfig",
    "RetryConfig",
    "RunConfig",
    "WebhookConfig",
    "account_key",
    "calibration_dir",
    "default_notify_source",
    "ledger_password",
    "load_config",
    "load_credentials",
    "machine_time_zone",
    "notify_source",
    "notify_url",
    "secret_file",
    "serve_token",
]
