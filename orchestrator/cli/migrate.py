"""``orchestrator migrate --ledger URL``: create or upgrade a shared ledger's schema, the one
command that changes it (every other command refuses a database at another version, naming this
one). Like ``commands``: parsed arguments in, exit code out."""

from __future__ import annotations

import argparse
import sys

import anyio

from orchestrator.config import ledger_password, load_config
from orchestrator.errors import ConfigError
from orchestrator.ledger.pg.schema import SCHEMA_VERSION, migrate_ledger, safe_url


def migrate_command(args: argparse.Namespace) -> int:
    """Bring the database to this version's schema: create it in an empty database, apply the
    migrations an older one lacks, or say there is nothing to do; a newer one is refused
    (``SchemaTooNew``, exit 2)."""
    warnings: list[str] = []
    config = load_config(args.config, warn=warnings)
    for warning in warnings:
        print(f"orchestrator: warning: {warning}", file=sys.stderr)
    url: str | None = args.ledger or config.ledger.url
    if not url:
        raise ConfigError("no shared ledger: pass --ledger postgresql://... or set [ledger] url")
    password = ledger_password()
    secret = password.get_secret_value() if password else None

    async def main() -> int:
        return await migrate_ledger(url, secret)

    before = anyio.run(main)
    where, now = safe_url(url), SCHEMA_VERSION
    if before == now:
        print(f"{where}: the orchestrator schema is at version {now} already: nothing to do")
    elif before == 0:
        print(f"{where}: created the orchestrator schema (version {now})")
    else:
        print(f"{where}: migrated the orchestrator schema from version {before} to {now}")
    return 0
