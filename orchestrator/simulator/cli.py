"""The ``sim`` subcommand: serve the simulator until Ctrl-C.

``orchestrator sim --profile demo --port 8765`` prints the base URL to point a client at, then
logs one line per request (method, path, status, milliseconds) to stderr. Ctrl-C stops it
cleanly with exit status 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from orchestrator.simulator.profiles import PROFILE_NAMES

if TYPE_CHECKING:  # pydantic and the settings load when the simulator runs, not for --help
    from orchestrator.simulator.settings import SimSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
EXIT_OK = 0
EXIT_USAGE = 2


def add_parser(subparsers: Any) -> None:
    """Register ``sim`` on an ``argparse`` subparsers object; ``args.func(args)`` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="serve the embedded Pictory API simulator",
        description="Serve a simulated Pictory API (any non-empty credentials are accepted).",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    parser.add_argument(
        "--profile",
        default="demo",
        metavar="NAME|FILE",
        help="demo [default]: previews ~1 s, renders 2-4 s, 20 req/s, 5 renders at once; "
        "realistic: minutes per job, 5 req/s, 3 renders at once; flaky: demo with every fault "
        "at a few percent; test: milliseconds, no limits; or a calibration profile FILE "
        "(`orchestrator doctor --calibrate` writes one): the account it measured, played on "
        "demo's other settings (docs/calibrate.md)",
    )
    parser.add_argument(
        "--rate-limit", type=float, metavar="RPS", help="requests per second per account"
    )
    parser.add_argument(
        "--max-concurrent-renders", type=int, metavar="N", help="renders at once per account"
    )
    parser.add_argument(
        "--rate-limit-per-minute",
        type=int,
        metavar="N",
        help="requests per minute per account, on top of --rate-limit (default: none)",
    )
    parser.add_argument("--preview-seconds", type=float, metavar="S", help="nominal preview time")
    parser.add_argument("--render-seconds", type=float, metavar="S", help="nominal render time")
    parser.add_argument(
        "--client-secret",
        metavar="SECRET",
        help="accept only this client secret (default: any non-empty one)",
    )
    parser.add_argument(
        "--api-key", metavar="KEY", help="accept only this pictai_ key (default: any)"
    )
    parser.add_argument("--seed", type=int, metavar="N", help="seed for faults and durations")
    parser.add_argument(
        "--time-scale",
        type=float,
        metavar="X",
        help="multiply every job duration (0.01 makes a demo render take milliseconds)",
    )
    parser.add_argument(
        "--queued-status",
        choices=("in-progress", "pending"),
        help="what a render queued behind the render cap reports (default in-progress)",
    )
    parser.add_argument(
        "--renders-over-cap",
        choices=("queue", "refuse-429", "refuse-409"),
        help="what a render sent past the render cap gets: a queue (default) or a refusal",
    )
    parser.add_argument(
        "--template-video-length",
        choices=("scenes", "drawn"),
        help="how long a template's render lasts: as its scenes are timed (default), or drawn "
        "around the profile's video length",
    )
    parser.add_argument(
        "--new-shapes",
        action="store_true",
        help="answer the newer shapes (status on previews, data.jobId everywhere)",
    )
    parser.add_argument(
        "--render-subtitles",
        choices=("url", "content", "none"),
        help="how a render offers srtFile/vttFile/txtFile: links (default), contents, or not",
    )
    parser.add_argument(
        "--template-spelling",
        choices=("documented", "depricated", "deprecated"),
        help="how template answers spell the deprecation flag: as each page documents "
        "(default: deprecated on create, depricated on get and update), or one spelling everywhere",
    )
    parser.add_argument(
        "--strict-credential-routes",
        action="store_true",
        help="refuse a pictai_ key on the v1 video routes (401), which Pictory documents for "
        "tokens only; keys create videos on the v2 routes",
    )
    parser.add_argument(
        "--require-user-id",
        action="store_true",
        help="refuse (401) token requests without an X-Pictory-User-Id header; by default the "
        "user id is optional, as Pictory documents it",
    )
    parser.add_argument(
        "--quota-minutes",
        type=float,
        metavar="N",
        help="the account's video-minute limit in GET /v1/quota (default 10000; try a small one "
        "with `run --check-quota`)",
    )
    parser.add_argument(
        "--quota-credits", type=float, metavar="N", help="its AI-credit limit (default 22000)"
    )
    parser.add_argument(
        "--no-quota",
        action="store_true",
        help="answer 404 to GET /v1/quota and /v1/aicredits/usage, as an account that does not "
        "publish them",
    )
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    """The profile's settings with the command-line overrides applied."""
    overrides: dict[str, Any] = {
        "rate_limit_rps": args.rate_limit,
        "max_concurrent_renders": args.max_concurrent_renders,
        "rate_limit_rpm": args.rate_limit_per_minute,
        "preview_s": args.preview_seconds,
        "render_s": args.render_seconds,
        "seed": args.seed,
        "accepted_client_secret": args.client_secret,
        "accepted_api_key": args.api_key,
        "time_scale": args.time_scale,
        "queued_status": args.queued_status,
        "renders_over_cap": args.renders_over_cap,
        "template_video_length": args.template_video_length,
        "render_subtitle_form": args.render_subtitles,
        "template_spelling": args.template_spelling,
        "quota_video_minutes": args.quota_minutes,
        "quota_ai_credits": args.quota_credits,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.new_shapes:
        overrides["new_shapes"] = True
    if args.strict_credential_routes:
        overrides["strict_credential_routes"] = True
    if args.require_user_id:
        overrides["require_user_id"] = True
    if args.no_quota:
        overrides["quota_published"] = False
    from orchestrator.simulator.settings import SimSettings

    if args.profile in PROFILE_NAMES:
        return SimSettings.for_profile(args.profile, **overrides)
    from pathlib import Path

    from orchestrator.simulator.replay import BASE_PROFILE, profile_overrides

    replayed = profile_overrides(Path(args.profile))  # a calibration profile file
    return SimSettings.for_profile(BASE_PROFILE, **{**replayed, **overrides})


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def serve(settings: SimSettings, host: str, port: int) -> None:
    """Serve until cancelled."""
    import asyncio  # only when serving (not loaded by `orchestrator --help`)

    from orchestrator.simulator.server import running_simulator

    async with running_simulator(settings, host=host, port=port, log_request=_log) as sim:
        print(f"Pictory API simulator ({settings_summary(settings)})", flush=True)
        print(f"base URL: {sim.base_url}", flush=True)
        if settings.accepted_client_secret is None and settings.accepted_api_key is None:
            print("any non-empty credentials are accepted (client id/secret or a pictai_ key)")
        else:
            print("only the client secret / API key given on the command line is accepted")
        if settings.require_user_id:
            print("token requests must carry X-Pictory-User-Id (--require-user-id)")
        print(f"stats: {sim.stats_url}   stop: Ctrl-C", flush=True)
        await asyncio.Event().wait()


def settings_summary(settings: SimSettings) -> str:
    rate = f"{settings.rate_limit_rps:g} req/s" if settings.rate_limit_rps else "no rate limit"
    if settings.rate_limit_rpm:
        rate += f", {settings.rate_limit_rpm} req/min"
    cap = settings.max_concurrent_renders
    renders = f"{cap} renders at once" if cap else "no render cap"
    return (
        f"preview ~{settings.scaled_s(settings.preview_s):g} s, "
        f"render ~{settings.scaled_s(settings.render_s):g} s, {rate}, {renders}, "
        f"seed {settings.seed}"
    )


def run(args: argparse.Namespace) -> int:
    """Run the ``sim`` subcommand; returns the exit status."""
    import asyncio

    from pydantic import ValidationError

    try:
        settings = settings_from_args(args)
    except (ValidationError, ValueError) as exc:
        print(f"orchestrator sim: invalid option: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(serve(settings, args.host, args.port))
    except KeyboardInterrupt:
        print("simulator stopped", file=sys.stderr)
    except OSError as exc:
        print(f"orchestrator sim: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _one_line(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
    return str(exc)
