"""What ``orchestrator doctor --calibrate`` measured of one account: the calibration profile.

Pictory publishes no rate limit, render cap or queueing behaviour (contract §1, §5.4), so a run
only knows them once they are measured. ``api.calibrate`` measures them; this module is the
profile's one definition: its fields, the TOML file it is kept in, where that file lives, and what
it changes (a run's limits, ``apply_profile``). The simulator replays a profile file on its own
(``simulator.replay``: it imports nothing of the client).

The file (TOML, one flat table; docs/calibrate.md)::

    format = 1
    account = "3f1c…"              # config.account_key: a digest of base URL + credential
    base_url = "https://api.pictory.ai/pictoryapis"
    measured_at = "2026-12-07T03:12:40Z"
    rate_limit_rps = 5.0           # absent: no 429 met in the probe (no limit found)
    rate_limit_rpm = 240.0         # absent: none found within the probe (or not probed)
    retry_after = true             # the 429s carried Retry-After
    max_concurrent_renders = 3     # renders seen running at once
    cap_found = true               # the next render waited (or was refused)
    queues_renders = true          # a render beyond the cap waited at Pictory, then ran
    queued_status = "pending"      # what the waiting render said ("in-progress": no progress)
    render_s_p50 = 41.2
    render_s_p90 = 47.9
    billable_renders = 4

Where: ``--profile-out FILE``, else ``config.calibration_dir() / "<account>.toml"``. A run against
the real API uses ``[limits] calibration`` when set, else its account's file there, if any.
The profile fills only the limits the config file does not set: config keys still win.

May import what ``api`` may (``config``, ``errors``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.config import Config, Credentials, account_key, calibration_dir
from orchestrator.errors import ConfigError

FORMAT = 1
NO_PROFILE = "none"
"""``[limits] calibration = "none"``: use no profile, even the account's own."""

__all__ = [
    "CalibrationProfile",
    "apply_profile",
    "default_profile_path",
    "find_profile",
    "load_profile",
    "queues_renders",
    "with_profile",
    "write_profile",
]


class CalibrationProfile(BaseModel):
    """One account's measured behaviour. Frozen; an unknown key is an error naming it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    account: str
    """``config.account_key(base_url, credentials)``: a digest, never a secret."""
    base_url: str
    measured_at: str
    """UTC, ISO 8601 (``2026-12-07T03:12:40Z``)."""
    rate_limit_rps: float | None = Field(None, gt=0)
    rate_limit_rpm: float | None = Field(None, gt=0)
    retry_after: bool | None = None
    """Whether the 429s carried ``Retry-After``; None: no 429 was met."""
    max_concurrent_renders: int = Field(ge=1)
    cap_found: bool
    queues_renders: bool
    queued_status: str | None = None
    render_s_p50: float | None = Field(None, gt=0)
    render_s_p90: float | None = Field(None, gt=0)
    billable_renders: int = Field(ge=0)

    def summary(self) -> str:
        """One line for the console."""
        rps = f"{self.rate_limit_rps:g} req/s" if self.rate_limit_rps else "no rate limit found"
        rpm = f", {self.rate_limit_rpm:g} req/min" if self.rate_limit_rpm else ""
        cap = ("" if self.cap_found else "at least ") + f"{self.max_concurrent_renders} renders"
        queued = "queued beyond" if self.queues_renders else "none queued beyond"
        renders = f"renders ~{self.render_s_p50:.0f} s" if self.render_s_p50 else "no render time"
        return f"{rps}{rpm}, {cap} at once ({queued}), {renders}, measured {self.measured_at}"


def load_profile(path: Path) -> CalibrationProfile:
    """Read a profile (``.toml``; ``.json`` also read); ``ConfigError`` names the file and field."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read calibration profile: {exc.strerror}; run "
            "`orchestrator doctor --calibrate` to write one, or give another file"
        ) from exc
    try:
        text = raw.decode("utf-8")
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a calibration profile (TOML expected): {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a calibration profile is one table of keys")
    try:
        return CalibrationProfile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(
                f"{path}: unknown key {key!r} in the calibration profile; see docs/calibrate.md"
            ) from exc
        raise ConfigError(
            f"{path}: calibration profile key {key!r}: {first['msg']}; run "
            "`orchestrator doctor --calibrate` again to rewrite it"
        ) from exc


def write_profile(profile: CalibrationProfile, path: Path) -> None:
    """Write ``profile`` as TOML to ``path`` (its folder made if need be), replacing it whole."""
    lines = ["# orchestrator calibration profile (docs/calibrate.md)"]
    for key, value in profile.model_dump().items():
        if value is None:
            continue  # TOML has no null: an absent key is "not found / not measured"
        lines.append(f"{key} = {_toml_value(value)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(round(value, 3)) if math.isfinite(value) else "nan"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def default_profile_path(account: str) -> Path:
    """The account's profile in ``config.calibration_dir()``."""
    return calibration_dir() / f"{account}.toml"


def find_profile(config: Config, account: str) -> tuple[CalibrationProfile, Path] | None:
    """The profile a run against the real API uses: ``[limits] calibration`` when set (an error
    if unreadable), else ``account``'s own file if there is one; None: no profile."""
    named = config.limits.calibration
    if named == NO_PROFILE:
        return None
    if named:
        path = Path(named).expanduser()
        return load_profile(path), path
    path = default_profile_path(account)
    if not path.is_file():
        return None
    return load_profile(path), path


def apply_profile(config: Config, profile: CalibrationProfile, path: Path) -> Config:
    """``config`` with the profile's limits in each ``[limits]`` key the config does not set,
    ``renders_queued_ahead`` 1 when the account queues renders beyond its cap (else 0), and
    ``[limits] calibration`` naming ``path`` (what the run's start line shows)."""
    given = config.limits.model_fields_set
    update: dict[str, Any] = {"calibration": str(path)}
    if "max_requests_per_s" not in given and profile.rate_limit_rps:
        update["max_requests_per_s"] = profile.rate_limit_rps
    if "max_requests_per_minute" not in given and profile.rate_limit_rpm:
        update["max_requests_per_minute"] = profile.rate_limit_rpm
    if "max_renders_in_flight" not in given and profile.cap_found:
        update["max_renders_in_flight"] = profile.max_concurrent_renders
    # One render waits queued at Pictory beyond the cap only where this account was measured to
    # queue (issue 31; never from the config file, which refuses the key).
    update["renders_queued_ahead"] = 1 if profile.cap_found and profile.queues_renders else 0
    if profile.queues_renders and profile.cap_found:  # one waits at Pictory (api.render_slots)
        update["renders_queued_ahead"] = 1
    limits = config.limits.model_copy(update=update)
    return config.model_copy(update={"limits": limits})


def with_profile(config: Config, credentials: Credentials) -> Config:
    """``config`` for a run against the real API: with the limits of the profile it uses
    (``find_profile``), if any (``apply_profile``)."""
    found = find_profile(config, account_key(config.api.base_url, credentials))
    return config if found is None else apply_profile(config, *found)


def queues_renders(config: Config) -> bool:
    """Whether a run may queue a render at Pictory beyond the account's cap: only when the
    profile the run uses (``apply_profile`` named it) measured that the account queues them.
    Without a profile, never (issue 31)."""
    named = config.limits.calibration
    if not named or named == NO_PROFILE:
        return False
    try:
        return load_profile(Path(named).expanduser()).queues_renders
    except ConfigError:
        return False


def utc_stamp(wall_s: float) -> str:
    """``wall_s`` (epoch seconds) as ``measured_at``."""
    return dt.datetime.fromtimestamp(wall_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
