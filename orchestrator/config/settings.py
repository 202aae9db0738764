"""The config's model: one frozen pydantic section per TOML table, each rejecting unknown keys
(``extra="forbid"``), with its defaults beside its keys; and ``load_config``, which reads the
``--config`` file over them, then the environment's base URL (``PICTORY_API_BASE_URL``).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from orchestrator import USER_AGENT
from orchestrator.errors import ConfigError

DEFAULT_BASE_URL = "https://api.pictory.ai/pictoryapis"
ENV_BASE_URL = "PICTORY_API_BASE_URL"
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
