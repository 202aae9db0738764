"""``orchestrator serve RUN_DIR | --ledger URL``: the live page of a batch
(``report.live``). Parse, check the binding, open the reader, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, ExitCode, UserError

DEFAULT_PORT = 8765


def add_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="a live page of a batch in the browser (read-only; local or shared)",
        description="Serve a read-only live page of a batch: rows by state, request rate "
        "against the limit, renders in flight against the cap, ETA, workers and their last "
        "heartbeat (shared batches), failures by cause, the newest videos' posters and a "
        "canary waiting for approval. It updates itself and needs nothing from the internet. "
        "It listens on 127.0.0.1 unless --host says otherwise, and then only with a token.",
    )
    serve.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN_DIR",
        nargs="?",
        help="the run's --out folder (with --ledger: the folder the workers wrote their "
        "videos into, for the posters; optional)",
    )
    serve.add_argument(
        "--ledger",
        metavar="URL",
        help="a shared ledger: postgresql://USER@HOST:PORT/DB (or [ledger] url); the password "
        "comes from PGPASSWORD",
    )
    serve.add_argument("--batch", metavar="NAME", help="the batch (default: the newest)")
    serve.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings ([ledger] url, lease_s)"
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address to listen on (default 127.0.0.1: this machine only); any other needs "
        "a token",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"the port (default {DEFAULT_PORT}; 0: any free one, printed)",
    )
    serve.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="the token the page asks for, from FILE's first line (or set "
        "ORCHESTRATOR_SERVE_TOKEN); open the page once as http://HOST:PORT/?token=TOKEN",
    )
    serve.add_argument(
        "--token",
        metavar="TOKEN",
        help="the token given on the command line (other users of this machine can see it: "
        "prefer --token-file or ORCHESTRATOR_SERVE_TOKEN)",
    )
    serve.add_argument(
        "--refresh",
        type=float,
        default=2.0,
        metavar="S",
        help="read the batch again at most every S seconds (default 2)",
    )
    serve.set_defaults(func=serve_command)


def _token(args: argparse.Namespace) -> str | None:
    from orchestrator.config import serve_token

    if args.token_file is not None:
        try:
            lines = args.token_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--token-file {args.token_file}: cannot read it ({exc})") from exc
        if not lines or not lines[0].strip():
            raise UserError(f"--token-file {args.token_file}: its first line is empty")
        first: str = lines[0].strip()
        return first
    from_env = serve_token()
    if from_env is not None:
        return from_env.get_secret_value()
    token: str | None = args.token
    return token.strip() if token else None


def serve_command(args: argparse.Namespace) -> int:
    """Serve the live page of the batch at RUN_DIR or ``--ledger URL`` until interrupted."""
    import anyio

    from orchestrator.clock import RealClock
    from orchestrator.config import load_config
    from orchestrator.ledger.open import LedgerPlace
    from orchestrator.report.live.readers import open_reader
    from orchestrator.report.live.server import build_app, check_binding, serve
    from orchestrator.report.metrics_server import live_page_metrics

    token = _token(args)
    check_binding(args.host, token)
    if args.refresh <= 0:
        raise UserError("--refresh S: give a number of seconds above 0, e.g. 2")
    config = load_config(args.config)
    url = args.ledger or (config.ledger.url if args.run_dir is None else None)
    if args.run_dir is None and not url:
        raise ConfigError("`orchestrator serve` needs RUN_DIR, or --ledger URL")
    place = LedgerPlace(url=url, batch=args.batch) if url else LedgerPlace(run_dir=args.run_dir)
    clock = RealClock()

    def ready(address: str) -> None:
        guarded = " (it asks for its token)" if token else ""
        print(f"serving the live page at {address}{guarded}; Ctrl-C stops", flush=True)

    async def main() -> None:
        async with open_reader(
            place,
            clock,
            videos=args.run_dir if url else None,
            max_connections=min(2, config.ledger.max_connections),
            lease_s=config.ledger.lease_s,
        ) as reader:
            app = build_app(
                reader,
                token=token,
                refresh_s=args.refresh,
                clock=clock,
                extend=[live_page_metrics(reader.read)],  # /metrics: rows by state
            )
            await serve(app, args.host, args.port, ready)

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        print("orchestrator serve: stopped", file=sys.stderr)
        return ExitCode.OK
    return ExitCode.OK
