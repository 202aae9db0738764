"""Secrets given as command-line arguments, where other users of the machine see them (``ps``,
``/proc/PID/cmdline``) and the shell's history keeps them: named, with the safer form.

Every command warns about its own arguments (``main``); ``orchestrator doctor`` also looks at
this user's running orchestrator processes (``running_exposures``, Linux ``/proc``). Nothing
here prints or returns a secret: only the flag, and a process id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

SAFER = {
    "--notify": "--notify-file FILE (chmod 600), --notify env:NAME or ORCHESTRATOR_NOTIFY_URL",
    "--token": "--token-file FILE or ORCHESTRATOR_SERVE_TOKEN",
    "--ledger": "a URL without the password, and PGPASSWORD (or ~/.pgpass) for it",
}
"""Each flag that can carry a secret, and where the secret belongs instead."""


def exposed(argv: Sequence[str]) -> list[str]:
    """The flags of ``argv`` that carry a secret: ``--notify https://…`` (a chat webhook's URL
    is its key), ``--token T`` (``serve``), ``--ledger`` with a password in its URL."""
    found: list[str] = []
    for flag, value in _options(argv):
        if flag not in SAFER or flag in found:
            continue
        if flag == "--notify" and not value.lower().startswith(("http://", "https://")):
            continue  # env:NAME, file:PATH, config: no secret
        if flag == "--ledger" and not _has_password(value):
            continue
        found.append(flag)
    return found


def warning(flag: str) -> str:
    """One line: the secret given with ``flag`` is exposed, and the safer form."""
    return (
        f"{flag} puts a secret on the command line, where other users of this machine can "
        f"see it (ps) and your shell history keeps it: use {SAFER[flag]}"
    )


def running_exposures(proc: Path = Path("/proc")) -> list[tuple[int, str]]:
    """(pid, flag) for each of this user's running orchestrator processes whose command line
    carries a secret (none where there is no ``/proc``)."""
    found: list[tuple[int, str]] = []
    for pid, argv in _processes(proc):
        if pid != os.getpid() and any(Path(a).name == "orchestrator" for a in argv):
            found += [(pid, flag) for flag in exposed(argv)]
    return found


def _options(argv: Sequence[str]) -> Iterator[tuple[str, str]]:
    for i, arg in enumerate(argv):
        if arg.startswith("--") and "=" in arg:
            flag, _, value = arg.partition("=")
            yield flag, value
        elif arg.startswith("--") and i + 1 < len(argv):
            yield arg, argv[i + 1]


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _processes(proc: Path) -> Iterator[tuple[int, list[str]]]:
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        entries = list(proc.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            if uid is not None and entry.stat().st_uid != uid:
                continue
            raw = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        argv = [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]
        if argv:
            yield int(entry.name), argv
