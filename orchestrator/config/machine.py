"""What this machine says besides the config: where its per-account calibration profiles live
(``XDG_CONFIG_HOME``) and its time zone (``TZ``, ``/etc/localtime``).
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_CONFIG_HOME = "XDG_CONFIG_HOME"


def calibration_dir() -> Path:
    """Where ``doctor --calibrate`` keeps one profile per account (``api.calibration``):
    ``$XDG_CONFIG_HOME/orchestrator/profiles``, ``~/.config/orchestrator/profiles`` when unset
    (on every system, so the place is one to document)."""
    root = os.environ.get(ENV_CONFIG_HOME, "").strip()
    base = Path(root) if root else Path.home() / ".config"
    return base / "orchestrator" / "profiles"


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
