"""``orchestrator dev-postgres``: a throwaway PostgreSQL for trying a shared batch on this
machine (docs/shared-ledger.md#try-it), with no cluster, role or sudo to set up.

It starts a server from PostgreSQL's programs in a temporary folder (``ledger.pg.local``, as the
tests do), creates a database with the orchestrator schema in it, prints its ``--ledger`` URL
(alone on stdout, for scripts; what to do next on stderr) and serves until Ctrl-C or SIGTERM,
when the server stops and its folder is removed: nothing in it is kept.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from orchestrator.errors import UserError

DEFAULT_PORT = 54329
"""A fixed port, so the README's commands name the URL as it will be (PostgreSQL's usual 5432 is
left to a server the machine may already run)."""
DEFAULT_DATABASE = "videos"
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
"""The signals that stop it, where the platform has them (SIGHUP: the terminal closed;
SIGBREAK: Ctrl-Break on Windows)."""
WAKE_S = 1.0
"""How often the wait wakes up to let a signal handler run (Windows does not interrupt a wait)."""


def add_parser(subparsers: Any) -> None:
    """Register ``dev-postgres`` on an ``argparse`` subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dev-postgres",
        help="serve a throwaway PostgreSQL for trying a shared batch here; prints its --ledger URL",
        description="Start a throwaway PostgreSQL server on this machine (in a temporary "
        "folder, on a loopback port, from PostgreSQL's own programs: no cluster, role or sudo "
        "to set up), create a database with the orchestrator schema, print its --ledger URL "
        "and serve it until Ctrl-C, when the server stops and everything in it is removed. For "
        "trying `submit` and `worker`; a batch you mean to keep belongs in a PostgreSQL you "
        "run (docs/shared-ledger.md).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        metavar="N",
        help="the port on 127.0.0.1 (default %(default)s; 0: any free port)",
    )
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        metavar="NAME",
        help="the database to create (default %(default)s)",
    )
    parser.set_defaults(func=dev_postgres_command)


def dev_postgres_command(args: argparse.Namespace) -> int:
    """Serve a throwaway server until stopped; exit 0 once it is stopped and removed."""
    import anyio

    from orchestrator.ledger.pg import local
    from orchestrator.ledger.pg.schema import migrate_ledger

    try:
        server = local.start(args.port or None)
    except local.PortInUse as exc:
        raise UserError(
            f"{exc}: is another dev-postgres still running? Stop it, or give --port N "
            "(--port 0 for any free port)"
        ) from exc
    except local.NoPostgres as exc:
        raise UserError(str(exc)) from exc
    try:
        url = server.create_database(args.database)
        anyio.run(migrate_ledger, url, None)
        print(url, flush=True)
        say = f"""orchestrator: a throwaway PostgreSQL serves {url}
  (the orchestrator schema is in it; its data lives in {server.folder}, removed when it stops)
  in another terminal, for example:
    orchestrator submit jobs/welcome/manifest.csv --template jobs/welcome/welcome.pictai \\
        --ledger {url}
    orchestrator worker --ledger {url} --out runs/w1 --simulate
    orchestrator status --ledger {url}
  Ctrl-C stops it and removes everything in it"""
        print(say, file=sys.stderr, flush=True)
        stopped_by = _wait_for_a_stop_signal()
        print(f"orchestrator: {stopped_by}: stopping PostgreSQL and removing it", file=sys.stderr)
    finally:
        server.stop()
    return 0


def _wait_for_a_stop_signal() -> str:
    """Block until one of ``STOP_SIGNALS`` arrives; its name."""
    stopped = threading.Event()
    received: list[str] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stopped.set()

    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, stop)
    while not stopped.wait(WAKE_S):
        pass
    return received[0]
