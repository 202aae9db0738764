"""``orchestrator doctor --calibrate``: measure the account once (``api.calibrate``), after saying
what it will bill and asking, and write the profile ``run`` then uses (``api.calibration``).

Exit codes: 0 written; 2 a mistake or no confirmation (nothing sent); 1 the API failed midway
(renders already started are said, with their job ids).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the client loads when calibrating, not for `orchestrator --help`
    from orchestrator.api.calibration import CalibrationProfile
    from orchestrator.config import Credentials

DEFAULT_RENDERS = 4
"""``--renders``: finds a cap of up to 3 renders at once (``CalibrationPlan.max_renders``)."""
DEFAULT_SUSTAIN_S = 65.0
"""``--sustain-seconds``: a little over a minute, to meet a per-minute limit."""
SIM_SETTLE_POLLS = 20
"""Against ``--simulate``: a render without progress this many polls long is queued."""
YES = ("y", "yes")


def add_arguments(doctor: argparse.ArgumentParser) -> None:
    """``doctor``'s calibration options."""
    doctor.add_argument(
        "--calibrate",
        action="store_true",
        help="measure the account's rate limit, renders at once, queueing and render time, "
        "with a few billable renders (stated, and asked, before the start), and write the "
        "profile `run` uses for its limits (docs/calibrate.md)",
    )
    doctor.add_argument(
        "--yes", action="store_true", help="with --calibrate: do not ask before billing (scripts)"
    )
    doctor.add_argument(
        "--profile-out",
        type=Path,
        metavar="FILE",
        help="with --calibrate: write the profile here (default: "
        "~/.config/orchestrator/profiles/ACCOUNT.toml, where `run` finds it)",
    )
    doctor.add_argument(
        "--renders",
        type=int,
        default=DEFAULT_RENDERS,
        metavar="N",
        help="with --calibrate: the most billable renders (default %(default)s: finds a cap of "
        "up to N - 1 renders at once; it stops at the first that waits)",
    )
    doctor.add_argument(
        "--sustain-seconds",
        type=float,
        default=DEFAULT_SUSTAIN_S,
        metavar="S",
        help="with --calibrate: read at the found rate this long to find a per-minute limit "
        "(default %(default)s; 0 skips it)",
    )


def refuse_without_calibrate(args: argparse.Namespace) -> None:
    """``--yes``, ``--profile-out``, ``--renders`` or ``--sustain-seconds`` without
    ``--calibrate``: a mistake, said in one line."""
    from orchestrator.errors import UserError

    given = [
        flag
        for flag, value, default in (
            ("--yes", args.yes, False),
            ("--profile-out", args.profile_out, None),
            ("--renders", args.renders, DEFAULT_RENDERS),
            ("--sustain-seconds", args.sustain_seconds, DEFAULT_SUSTAIN_S),
        )
        if value != default
    ]
    if given:
        raise UserError(f"{', '.join(given)}: only with --calibrate (doctor alone bills nothing)")


def calibrate_command(args: argparse.Namespace) -> int:
    """State the plan, ask (unless ``--yes``), measure, write the profile; the exit code."""
    import anyio

    from orchestrator.api import simulated
    from orchestrator.api.calibrate import CalibrationPlan, calibrate
    from orchestrator.api.calibration import default_profile_path, write_profile
    from orchestrator.clock import RealClock
    from orchestrator.config import account_key, load_config, load_credentials
    from orchestrator.errors import ApiError, ExitCode, UserError

    config = load_config(args.config)
    credentials = load_credentials(required=args.simulate is None)
    target = "the embedded simulator" if args.simulate else config.api.base_url
    base = CalibrationPlan(max_renders=args.renders, sustain_s=args.sustain_seconds)
    print(f"orchestrator doctor --calibrate: {target}")
    print(base.statement())
    if not args.yes and not _confirmed():
        print("nothing sent; give --yes to calibrate without being asked", file=sys.stderr)
        return ExitCode.USAGE

    async def measure(creds: Credentials) -> tuple[CalibrationProfile, str]:
        async with simulated.target(config, args.simulate) as effective:
            poll_s = min(base.poll_s, effective.poll.render_interval_s)
            settle_s = base.settle_s if args.simulate is None else poll_s * SIM_SETTLE_POLLS
            plan = CalibrationPlan(
                max_renders=base.max_renders,
                sustain_s=base.sustain_s,
                poll_s=poll_s,
                settle_s=settle_s,
            )
            profile = await calibrate(effective, creds, plan=plan, clock=RealClock(), say=print)
            return profile, account_key(effective.api.base_url, creds)

    try:
        profile, account = anyio.run(measure, credentials)
    except ApiError as exc:
        print(
            f"orchestrator doctor --calibrate: {exc.describe()}; no profile written (renders "
            "already started are listed above; they are billed as usual)",
            file=sys.stderr,
        )
        return ExitCode.NOT_ALL_DONE
    path = args.profile_out or default_profile_path(account)
    try:
        write_profile(profile, path)
    except OSError as exc:
        raise UserError(
            f"{path}: cannot write the calibration profile ({exc.strerror}); choose another "
            "--profile-out FILE"
        ) from exc
    print(f"measured: {profile.summary()}")
    print(f"{profile.billable_renders} billable render(s) made")
    print(f"profile written to {path}")
    if args.profile_out is not None:
        print(f"a run uses it with [limits] calibration = {str(path)!r} in its --config file")
    else:
        print("runs against this account use its limits (config keys still win)")
    return ExitCode.OK


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        print("not asked: standard input is not a terminal", file=sys.stderr)
        return False
    try:
        answer = input("Go on and bill these renders? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in YES
