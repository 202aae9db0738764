"""Settings: the TOML config file, the environment, and their defaults.

This is the only module that reads environment variables. The config is a frozen pydantic model
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
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from orchestrator import USER_AGENT
from orchestrator.errors import ConfigError

DEFAULT_BASE_URL = "https://api.pictory.ai/pictoryapis"
ENV_BASE_URL = "PICTORY_API_BASE_URL"
ENV_CLIENT_ID = "PICTORY_CLIENT_ID"
ENV_CLIENT_SECRET = "PICTORY_CLIENT_SECRET"
ENV_USER_ID = "PICTORY_USER_ID"
ENV_API_KEY = "PICTORY_API_KEY"
ENV_PG_PASSWORD = "PGPASSWORD"
ENV_NOTIFY_URL = "ORCHESTRATOR_NOTIFY_URL"
FILE_SUFFIX = "_FILE"
"""``NAME_FILE`` names a file holding ``NAME``'s value (Docker and Kubernetes secrets)."""
KEYRING_SERVICE = "orchestrator"
"""The OS keyring's service name our credentials are stored under (``keyring set orchestrator
PICTORY_API_KEY``)."""
DEFAULT_MAX_ROWS = 1_000_000
"""The most rows a manifest may hold unless ``[input] max_rows`` or ``--max-rows`` says more:
the scale the readers, validation and the ledger are measured at (docs/performance.md), and
months of rendering at Pictory's pace. A larger file is a mistake or hostile, and is refused at
its row 1,000,001 without reading on (docs/manifest.md#limits)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(_Section):
    base_url: str = DEFAULT_BASE_URL
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(60.0, gt=0)
    upload_timeout_s: float = Field(300.0, gt=0)
    token_refresh_margin_s: float = Field(300.0, ge=0)
    user_agent: str = USER_AGENT


class LimitsConfig(_Section):
    max_requests_per_s: float = Field(5.0, gt=0)
    max_requests_per_minute: float | None = Field(None, gt=0)
    max_rows_in_flight: int = Field(16, ge=1)
    max_renders_in_flight: int = Field(8, ge=1)
    renders_queued_ahead: int = Field(0, ge=0, le=1)
    """Renders sent beyond ``max_renders_in_flight`` to wait queued at Pictory, so a freed slot
    is taken there at once: 1 only from a calibration profile that measured the account queues
    renders (``queues_renders``), or ``--simulate`` against a simulator that does; never set in
    the config file (``load_config`` refuses it), since a refused render would cost a row."""
    max_downloads_in_flight: int = Field(4, ge=1)
    calibration: str | None = None
    """A profile written by ``doctor --calibrate`` (``api.calibration``) whose measured limits
    fill the keys above this file does not set; unset: the account's profile in
    ``calibration_dir()``, if any. ``"none"``: use no profile."""


class PollConfig(_Section):
    preview_interval_s: float = Field(15.0, gt=0)
    render_interval_s: float = Field(20.0, gt=0)
    jitter_fraction: float = Field(0.2, ge=0, le=1)
    preview_deadline_s: float = Field(1800.0, gt=0)
    render_deadline_s: float = Field(7200.0, gt=0)
    webhook_fallback_interval_s: float = Field(300.0, gt=0)


class WebhookConfig(_Section):
    enabled: bool = False
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(0, ge=0, le=65535)
    public_url: str | None = None


class RetryConfig(_Section):
    max_attempts: int = Field(6, ge=1)
    transfer_max_attempts: int = Field(12, ge=1)
    base_delay_s: float = Field(1.0, ge=0)
    max_delay_s: float = Field(60.0, ge=0)


class RunConfig(_Section):
    rerender_ambiguous: bool = False
    rerender_changed: bool = False
    route: Literal["preview", "direct"] = "preview"
    """Template and storyboard rows: ``preview`` (set variables → preview → render it, as Pictory
    users know it) or ``direct`` (one ``POST /v2/video/storyboard/render`` per row, no preview:
    half the requests when polling, one with webhooks)."""
    render_with_params: bool = True
    assumed_row_s: float = Field(600.0, gt=0)
    assumed_video_minutes: float = Field(1.0, gt=0)
    network_dead_after_s: float = Field(60.0, gt=0)
    """No API answer for this long while requests fail to get through: the run stops."""
    drain_limit_s: float = Field(120.0, gt=0)
    """After the first Ctrl-C (or SIGTERM) the rows in flight have this long to finish; then
    they are stopped where they are, as by a second Ctrl-C (each resumes from the ledger)."""
    name_pattern: str | None = None
    """Video file names from the row's columns, e.g. ``"{first_name}-{id}"`` (also ``--name``;
    ``input.names``): used by a new batch, recorded with it."""
    check_disk_space: bool = True
    """Refuse a run whose videos are estimated not to fit on the disk of ``--out`` (exit 4);
    false: only warn (``run.disk``)."""
    keep_local: Literal["all", "posters", "none"] = "all"
    """Local copies kept once a row's delivery is checksum-verified (also ``--keep-local``):
    ``all``; ``posters`` (the poster frame only); ``none``. Never removed before that."""


class InputConfig(_Section):
    """Reading manifests: the most rows one may hold (also ``--max-rows``). A workbook's sheet
    and shared strings may each unzip to 1 KiB of XML per allowed row (docs/manifest.md#limits)."""

    max_rows: int = Field(DEFAULT_MAX_ROWS, ge=1)


class ReportConfig(_Section):
    """``report.html`` at the end of every run. Poster frames cost a few milliseconds of CPU per
    video (~10 ms at 1080p): a batch of 100k new videos may want ``posters = false``. A preview
    GIF (``report.previews``: ``results.csv``'s ``preview_gif``) of each video's first
    ``gif_seconds``, ``gif_width_px`` wide at ``gif_fps``, is made after its download, off the
    rows' way; ``preview_gif = false`` makes none. ``email_link``: which link ``email_url``
    holds (docs/run-directory.md#email-ready-columns): ``durable`` (the longest-lived the row
    has), ``video`` (Pictory's ``videoURL``), ``share`` (its share page) or ``delivered``."""

    posters: bool = True
    preview_gif: bool = True
    gif_width_px: int = Field(240, ge=16, le=1920)
    gif_seconds: float = Field(3.0, gt=0, le=30)
    gif_fps: int = Field(8, ge=1, le=30)
    email_link: Literal["durable", "video", "share", "delivered"] = "durable"
    links_valid_days: float | None = Field(None, gt=0)
    """Warn when a done row's ``email_url`` may stop working within this many days (also
    ``--links-valid-days``); None: no check."""


class NotifyConfig(_Section):
    """Where to POST a JSON notification when a run ends, halts or waits for approval. The URL
    is kept secret (a chat webhook's path is its key): it is never logged or recorded."""

    url: SecretStr | None = None
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class LedgerConfig(_Section):
    """A shared ledger in PostgreSQL (``orchestrator submit`` / ``worker``). The URL holds no
    password: that comes from ``PGPASSWORD`` in the environment and is never logged."""

    url: str | None = None
    lease_s: float = Field(30.0, gt=0)
    """How long a worker's claim on a row lasts without a heartbeat (renewed every third of
    it): a dead worker's rows are taken over this long after it died."""
    max_connections: int = Field(4, ge=1)
    account: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    """This machine's account name (``client-a``): the batches ``submit --account NAME`` bound
    to it are the ones its workers may render (also ``--account``). A name, never a secret."""
    max_outage_s: float = Field(300.0, gt=0)
    """How long a worker keeps trying while the database is away (a restart, a cut network)
    before it stops with one line (exit 1)."""


class MetricsConfig(_Section):
    """``/metrics`` of a ``run`` or ``worker`` (docs/overnight.md#monitoring)."""

    port: int | None = Field(None, ge=0, le=65535)
    """Serve Prometheus metrics on this port (0: any free one; unset: no metrics);
    ``--metrics-port`` sets it."""
    host: str = "127.0.0.1"
    """Where to listen: loopback unless you mean it (the metrics name no secret, but say how a
    batch goes)."""


class PictoryConfig(_Section):
    """What we ask of Pictory besides rendering (docs/data.md#retention)."""

    clean_after_download: bool = False
    """Once a row's video is downloaded and verified (and delivered, when delivery is on), call
    ``DELETE /v1/jobs/{id}/clean`` for its render and preview jobs (contract §5.4): its video,
    share and preview links at Pictory stop working. Recorded, so a resume finishes it."""


MAX_PRESIGN_DAYS = 7
"""S3's longest presigned URL (SigV4): seven days."""


class DeliverConfig(_Section):
    """Where each video goes once downloaded (docs/delivery.md; ``--deliver`` and friends).

    ``url``: ``s3://bucket/prefix/`` (any S3-compatible store: the endpoint, region and
    credentials come from the standard AWS variables and files, ``AWS_ENDPOINT_URL_S3``,
    ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``..., read by the AWS SDK, or from ``endpoint_url``,
    ``region`` and ``profile`` here) or ``file:///path/`` (a mounted share). ``presign_days``:
    results.csv links a presigned URL that lasts this long (at most 7, S3's maximum);
    ``public_url_base``: it links ``BASE`` + the object's key (a public bucket or a CDN)."""

    url: str | None = None
    presign_days: float | None = Field(None, gt=0, le=MAX_PRESIGN_DAYS)
    public_url_base: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    destinations: list[dict[str, Any]] | None = None
    """Pictory-side delivery (contract §6.3): passed verbatim as ``destinations`` on the v2
    storyboard routes. [choice] Pictory lists the field ("vimeo/s3 export") but publishes no
    shape for its items, so nothing here checks or builds them."""
    aws_connection_id: str | None = None
    """Pictory-side delivery: ``awsConnectionId`` on the v2 render routes (§6.3)."""
    vimeo_connection_id: str | None = None
    """Pictory-side delivery: ``vimeoConnectionId`` on the v2 render routes (§6.3)."""


class Config(_Section):
    api: ApiConfig = ApiConfig()
    limits: LimitsConfig = LimitsConfig()
    poll: PollConfig = PollConfig()
    retry: RetryConfig = RetryConfig()
    run: RunConfig = RunConfig()
    webhook: WebhookConfig = WebhookConfig()
    input: InputConfig = InputConfig()
    notify: NotifyConfig = NotifyConfig()
    report: ReportConfig = ReportConfig()
    ledger: LedgerConfig = LedgerConfig()
    metrics: MetricsConfig = MetricsConfig()
    pictory: PictoryConfig = PictoryConfig()
    deliver: DeliverConfig = DeliverConfig()

    def public_dict(self) -> dict[str, Any]:
        """The effective config as plain data; it holds no secrets by construction."""
        return self.model_dump(mode="json")


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


def load_config(path: Path | None, *, warn: list[str] | None = None) -> Config:
    """Read ``path`` (TOML) over the defaults, then the environment's base URL.

    Raises ConfigError naming the file and key for unknown keys and wrong types.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        if warn is not None and _readable_by_others(path) and _mentions_secret(data):
            warn.append(
                f"{path} holds a secret and other users can read it; run `chmod 600 {path}`"
            )
    limits = data.get("limits")
    if isinstance(limits, dict) and "renders_queued_ahead" in limits:
        raise ConfigError(
            f"{path}: key 'limits.renders_queued_ahead' is not set in the config file: it comes "
            "from a calibration profile (orchestrator doctor --calibrate) that measured that "
            "your account queues renders; remove the key"
        )
    env_base = os.environ.get(ENV_BASE_URL)
    if env_base:
        data.setdefault("api", {})
        if isinstance(data["api"], dict):
            data["api"]["base_url"] = env_base
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        where = f"{path}: " if path is not None else ""
        if first["type"] == "extra_forbidden":
            raise ConfigError(
                f"{where}unknown key {key!r}; see config.example.toml for the keys there are"
            ) from exc
        raise ConfigError(f"{where}key {key!r}: {first['msg']}") from exc


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
        raise ConfigError(
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
ENV_CONFIG_HOME = "XDG_CONFIG_HOME"


def calibration_dir() -> Path:
    """Where ``doctor --calibrate`` keeps one profile per account (``api.calibration``):
    ``$XDG_CONFIG_HOME/orchestrator/profiles``, ``~/.config/orchestrator/profiles`` when unset
    (on every system, so the place is one to document)."""
    root = os.environ.get(ENV_CONFIG_HOME, "").strip()
    base = Path(root) if root else Path.home() / ".config"
    return base / "orchestrator" / "profiles"


def serve_token() -> SecretStr | None:
    """The token ``orchestrator serve``'s page asks for (``ORCHESTRATOR_SERVE_TOKEN``), if set."""
    value = os.environ.get(ENV_SERVE_TOKEN, "").strip()
    return SecretStr(value) if value else None


def _readable_by_others(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


_SECRET_KEY = re.compile(r"secret|api_key|password|(^|_)token$")


def _mentions_secret(data: Any, key: str = "") -> bool:
    """Whether a key looks like a secret's (``client_secret``, ``api_key``, ``access_token``, not
    ``token_refresh_margin_s``) or a value holds an API key (``pictai_...``)."""
    if _SECRET_KEY.search(key.lower()):
        return True
    if isinstance(data, dict):
        return any(_mentions_secret(v, str(k)) for k, v in data.items())
    if isinstance(data, list):
        return any(_mentions_secret(v) for v in data)
    return isinstance(data, str) and "pictai_" in data.lower()


def account_key(base_url: str, credentials: Credentials) -> str:
    """A stable name for the account, holding no secret (workers of one account share its
    limits and its job ids)."""
    if credentials.api_key is not None:
        who = "key:" + hashlib.sha256(credentials.api_key.get_secret_value().encode()).hexdigest()
    else:
        client = credentials.client_id.get_secret_value() if credentials.client_id else ""
        who = f"user:{credentials.user_id}:" + hashlib.sha256(client.encode()).hexdigest()
    return hashlib.sha256(f"{base_url}|{who}".encode()).hexdigest()[:24]


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


def machine_time_zone() -> str | None:
    """This machine's IANA zone name when it can be told (``TZ``, else where ``/etc/localtime``
    points): the default zone of ``--window`` and ``--until``; None reads them in local time."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        target = os.path.realpath("/etc/localtime")
        name = target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else ""
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name
