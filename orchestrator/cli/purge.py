"""``orchestrator purge --older-than DAYS [--dry-run] ROOT... | --ledger URL``: retention.

Removes run directories under the given roots (``ledger.purge``) and shared batches of a
PostgreSQL ledger (``ledger.pg.purge``) whose work ended more than DAYS ago; prints each one it
removes (or, with ``--dry-run``, would remove) or keeps, and the space freed. Exit 0; 1 when
something it meant to remove was taken by a run meanwhile or could not be removed (it is kept,
and said so).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ExitCode, UserError

if TYPE_CHECKING:  # loaded by the command, not by every start-up (tests/test_startup_imports.py)
    from orchestrator.ledger import purge as run_dirs

DAY_S = 86_400.0
KEPT_WHY = {
    "fresh": "ended less than {days} ago",
    "live": "a run holds it",
    "unended": "its last run did not end (killed?): resume it, or remove it by hand",
    "unreadable": "not a ledger of ours",
    "pending": "rows still pending",
}


def add_parser(subparsers: Any) -> None:
    """Register ``purge`` on an ``argparse`` subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "purge",
        help="remove run directories and shared batches whose work ended more than DAYS ago",
        description="Retention (docs/data.md#retention): remove the run directories under each "
        "ROOT (folders holding our ledger.jsonl; never one a live run holds, never one whose "
        "last run was killed) and, with --ledger, the shared batches (no row pending or leased) "
        "whose last record is more than DAYS old. Prints what it removes and the space freed.",
    )
    parser.add_argument("roots", nargs="*", type=Path, metavar="ROOT", help="folders to look in")
    parser.add_argument(
        "--older-than",
        type=_days,
        required=True,
        metavar="DAYS",
        help="remove what ended more than this many days ago (0: whatever has ended)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be removed; remove nothing"
    )
    parser.add_argument(
        "--ledger", metavar="URL", help="also purge the shared batches of this PostgreSQL ledger"
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings")
    parser.set_defaults(func=purge_command)


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if days < 0:
        raise argparse.ArgumentTypeError("give 0 days or more")
    return days


def purge_command(args: argparse.Namespace) -> int:
    from orchestrator.ledger import purge as run_dirs
    from orchestrator.run.disk import human_bytes

    if not args.roots and not args.ledger:
        raise UserError(
            "purge: give the folders that hold run directories (ROOT...) or --ledger URL"
        )
    days: float = args.older_than
    older_than_s = days * DAY_S
    now_s = time.time()
    verb = "would remove" if args.dry_run else "removed"
    freed = removed = 0
    missed = False
    if args.roots:
        for found in run_dirs.survey(args.roots, older_than_s=older_than_s, now_s=now_s):
            if found.action != "remove":
                why = KEPT_WHY.get(found.action, found.action).format(days=_days_text(days))
                print(f"kept      {found.path}: {why}")
                continue
            try:
                gone = args.dry_run or run_dirs.remove(found)
            except OSError as exc:  # permissions, a busy mount: say so, go on with the others
                print(f"kept      {found.path}: could not remove it: {exc.strerror or exc}")
                missed = True
                continue
            if not gone:
                print(f"kept      {found.path}: a run took it meanwhile")
                missed = True
                continue
            print(f"{verb:<9} {found.path} ({human_bytes(found.bytes)}, {_ago(found, now_s)})")
            freed += found.bytes
            removed += 1
    if args.ledger:
        n, space, lost = _purge_ledger(args, older_than_s, now_s, verb, days)
        removed += n
        freed += space
        missed = missed or lost
    what = f"{removed} run director{'y' if removed == 1 else 'ies'} or batch(es)"
    if args.dry_run:
        print(
            f"purge --dry-run: {what} would be removed, {human_bytes(freed)} freed; nothing removed"
        )
    else:
        print(f"purge: {what} removed, {human_bytes(freed)} freed")
    return ExitCode.NOT_ALL_DONE if missed else ExitCode.OK


def _purge_ledger(
    args: argparse.Namespace, older_than_s: float, now_s: float, verb: str, days: float
) -> tuple[int, int, bool]:
    import anyio

    from orchestrator.config import load_config  # pydantic: not at every start-up
    from orchestrator.ledger.pg import purge as batches
    from orchestrator.ledger.pg.pool import open_pool
    from orchestrator.ledger.pg.schema import safe_url
    from orchestrator.run.disk import human_bytes

    config = load_config(args.config, warn=[])
    url: str = args.ledger
    where = safe_url(url)

    async def main() -> tuple[int, int, bool]:
        removed = freed = 0
        missed = False
        async with open_pool(url, max_connections=config.ledger.max_connections) as pool:
            for found in await batches.survey(pool, older_than_s=older_than_s, now_s=now_s):
                label = f"batch {found.name} at {where}"
                if found.action != "remove":
                    why = KEPT_WHY.get(found.action, found.action).format(days=_days_text(days))
                    print(f"kept      {label}: {why}")
                    continue
                if not args.dry_run and not await batches.remove(pool, found):
                    print(f"kept      {label}: a worker took it meanwhile")
                    missed = True
                    continue
                ago = _days_text((now_s - found.last_at) / DAY_S)
                print(
                    f"{verb:<9} {label} ({found.rows} rows, {human_bytes(found.bytes)}, "
                    f"ended {ago} ago)"
                )
                removed += 1
                freed += found.bytes
        return removed, freed, missed

    return anyio.run(main)


def _ago(found: run_dirs.Found, now_s: float) -> str:
    if found.last_at is None:
        return "age unknown"
    return f"ended {_days_text((now_s - found.last_at) / DAY_S)} ago"


def _days_text(days: float) -> str:
    if days < 1:
        return f"{days * 24:.0f} h"
    return f"{days:.0f} day{'' if round(days) == 1 else 's'}"
