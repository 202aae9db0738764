"""What each command does once parsed: one function per command (``set_defaults(func=...)``
in ``cli.parser``), each importing the module that runs it only when called, so a ``--help``
loads none of them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.errors import UserError


def cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import run_command

    out = args.out or Path("runs") / args.manifest.stem
    return run_command(args, manifest=args.manifest, template=args.template, run_dir=out)


def cmd_resume(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import resume_command

    return resume_command(args)


def cmd_approve(args: argparse.Namespace) -> int:
    if args.ledger:
        if args.results_dialect:
            raise UserError(
                "--results-dialect: a shared batch's is chosen by `orchestrator submit`; "
                "`orchestrator report --ledger URL --results-dialect D` writes one in another"
            )
        from orchestrator.cli.shared import approve_command as approve_shared

        return approve_shared(args)
    from orchestrator.cli.commands import approve_command

    if args.account is not None:
        raise UserError("--account names a worker's account on a shared batch: give --ledger URL")
    _needs_run_dir(args)
    return approve_command(args)


def cmd_validate(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import manifest_options
    from orchestrator.cli.validate import validate_command

    return validate_command(
        args.manifest,
        args.template,
        args.flow,
        manifest_options(args, run_dir=args.out),
        run_dir=args.out,
        config_file=args.config,
    )


def cmd_adopt(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import adopt_command

    return adopt_command(args)


def cmd_submit(args: argparse.Namespace) -> int:
    from orchestrator.cli.shared import submit_command

    return submit_command(args)


def cmd_worker(args: argparse.Namespace) -> int:
    from orchestrator.cli.shared import worker_command

    return worker_command(args)


def cmd_migrate(args: argparse.Namespace) -> int:
    from orchestrator.cli.migrate import migrate_command

    return migrate_command(args)


def _needs_run_dir(args: argparse.Namespace) -> Path:
    if args.run_dir is None:
        raise UserError(f"`orchestrator {args.command}` needs RUN_DIR, or --ledger URL")
    run_dir: Path = args.run_dir
    return run_dir


def cmd_report(args: argparse.Namespace) -> int:
    if args.ledger:
        from orchestrator.cli.shared import ledger_report_command

        return ledger_report_command(args)
    from orchestrator.cli.report import report_command

    return report_command(
        _needs_run_dir(args), args.out, args.results_dialect, args.links_valid_days
    )


def cmd_status(args: argparse.Namespace) -> int:
    if args.ledger:
        from orchestrator.cli.shared import ledger_status_command

        return ledger_status_command(args)
    from orchestrator.cli.status import status_command  # light: no HTTP client, no run

    return status_command(_needs_run_dir(args), as_json=args.json, watch_s=args.watch)


def cmd_doctor(args: argparse.Namespace) -> int:
    from orchestrator.cli.calibrate import calibrate_command, refuse_without_calibrate

    if args.calibrate:
        return calibrate_command(args)
    refuse_without_calibrate(args)
    from orchestrator.cli.commands import doctor_command

    return doctor_command(args.config, args.simulate)
