"""``orchestrator sim --profile FILE``: play the account a calibration profile measured.

The file is the one ``orchestrator doctor --calibrate`` writes (TOML, ``api.calibration`` defines
it; docs/calibrate.md). The simulator reads it on its own, as any tool may read a documented
file (it imports nothing of the client), and takes from it:

- ``rate_limit_rps`` → ``rate_limit_rps`` and ``rate_limit_rpm`` → ``rate_limit_rpm`` (absent: no
  limit);
- ``max_concurrent_renders`` → ``max_concurrent_renders`` when ``cap_found`` (else no cap), and
  ``queues_renders`` → ``renders_over_cap``: ``queue``, or ``refuse-429`` for a cap that refuses
  (the profile does not keep which status it refused with; 429 is the rate-limit answer §1 names);
- ``queued_status`` → ``queued_status`` (``pending``, else ``in-progress``);
- ``retry_after`` → ``retry_after_header``;
- ``render_s_p50`` → ``render_s``, and ``render_s_p90`` → ``jitter_frac``: durations are drawn
  uniformly within ``render_s × (1 ± j)``, whose 90th percentile is ``render_s × (1 + 0.8 j)``.

Everything else comes from the ``demo`` profile, and the command line's options still apply on
top.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from orchestrator.simulator.profiles import PROFILE_NAMES

BASE_PROFILE = "demo"
UNIFORM_P90 = 0.8
MAX_JITTER = 0.95


def profile_overrides(path: Path) -> dict[str, Any]:
    """``SimSettings`` fields replaying the calibration profile at ``path``; ``ValueError``
    naming the file (and key) when it cannot be read as one."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        names = ", ".join(PROFILE_NAMES)
        raise ValueError(
            f"--profile {path}: neither a profile name ({names}) nor a readable calibration "
            f"profile file ({exc.strerror})"
        ) from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: not a calibration profile (TOML expected): {exc}") from exc
    if "max_concurrent_renders" not in data or "account" not in data:
        raise ValueError(
            f"{path}: not a calibration profile (no max_concurrent_renders or account key); "
            "write one with `orchestrator doctor --calibrate`"
        )
    overrides: dict[str, Any] = {
        "rate_limit_rps": _number(data, "rate_limit_rps", path),
        "max_concurrent_renders": (
            int(_number(data, "max_concurrent_renders", path) or 1)
            if data.get("cap_found")
            else None
        ),
        "queued_status": "pending" if data.get("queued_status") == "pending" else "in-progress",
    }
    rpm = _number(data, "rate_limit_rpm", path)
    if rpm:
        overrides["rate_limit_rpm"] = max(1, int(rpm))
    if data.get("cap_found") and data.get("queues_renders") is False:
        overrides["renders_over_cap"] = "refuse-429"
    if isinstance(data.get("retry_after"), bool):
        overrides["retry_after_header"] = data["retry_after"]
    p50 = _number(data, "render_s_p50", path)
    p90 = _number(data, "render_s_p90", path)
    if p50:
        overrides["render_s"] = p50
        if p90:
            spread = (p90 / p50 - 1.0) / UNIFORM_P90
            overrides["jitter_frac"] = min(MAX_JITTER, max(0.0, spread))
    return overrides


def _number(data: dict[str, Any], key: str, path: Path) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{path}: key {key!r} must be a number above 0, not {value!r}")
    return float(value)
