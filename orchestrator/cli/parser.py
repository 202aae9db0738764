"""The ``orchestrator`` command's parser: every command and its arguments (the options several
commands share are in ``cli.options``; what each command does, in ``cli.handlers``). Light to
import: argparse and our parser modules only (``tests/test_startup_imports.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator import DISTRIBUTION, __version__
from orchestrator.cli import handlers, options
from orchestrator.cli.options import PROFILES, PROFILES_HELP
from orchestrator.input import flows

MANIFEST_HELP = (
    "the rows to render, one video each: .csv/.tsv/.txt, .xlsx, .json (an array of objects) "
    "or .jsonl; a column named like a template {{variable}} fills it, other columns ride "
    "along into the results"
)
RUN_DIR_HELP = "the run's folder (the --out of its first run): its ledger, videos and results"

RESUME_DESCRIPTION = (
    "A batch in RUN_DIR goes on against what it last ran against (its --simulate profile, or its "
    "base URL, and its --config file) and with its recorded batch-wide choices (--notify, "
    "--halt-after, --max-renders, the window...): no option is needed; one given replaces the "
    "recorded one."
)

EPILOG = """exit codes: 0 every row done; 1 some rows failed, ambiguous or pending;
2 bad usage or input (nothing sent); 3 the canary is rendered and the rest waits for
`orchestrator approve RUN_DIR`; 4 a disk fault (no space, I/O error, read-only) stopped it:
free space, then run the same command again; 130 interrupted (resume picks up where it
stopped)"""


def build_parser() -> argparse.ArgumentParser:
    from orchestrator.cli.dev_postgres import add_parser as add_dev_postgres_parser
    from orchestrator.cli.forget import add_parser as add_forget_parser
    from orchestrator.cli.purge import add_parser as add_purge_parser
    from orchestrator.cli.serve import add_parser as add_serve_parser
    from orchestrator.simulator.cli import add_parser as add_sim_parser

    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Render one personalised Pictory video per manifest row; resumable, never "
        "double-billed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__} ({DISTRIBUTION})"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="render every row of a manifest", epilog=EPILOG)
    run.add_argument(
        "manifest",
        type=Path,
        metavar="MANIFEST",
        help=MANIFEST_HELP,
    )
    run.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="the .pictai project (rows may override it with a template column)",
    )
    run.add_argument(
        "--flow",
        choices=flows.names(),
        default="template",
        help="the flow of rows without a flow column (default: template)",
    )
    run.add_argument(
        "--out",
        type=Path,
        metavar="RUN_DIR",
        help="run directory for the ledger, videos and results "
        "(default: runs/MANIFEST-NAME); the same --out resumes",
    )
    options.add_manifest_options(run)
    options.add_run_options(run)
    options.add_results_option(run)
    run.set_defaults(func=handlers.cmd_run)

    resume = sub.add_parser(
        "resume",
        help="continue the batch recorded in RUN_DIR",
        description=RESUME_DESCRIPTION,
        epilog=EPILOG,
    )
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR", help=RUN_DIR_HELP)
    options.add_manifest_options(resume)
    options.add_run_options(resume)
    options.add_results_option(resume)
    resume.set_defaults(func=handlers.cmd_resume)

    validate = sub.add_parser("validate", help="check a manifest against its template, offline")
    validate.add_argument("manifest", type=Path, metavar="MANIFEST", help=MANIFEST_HELP)
    validate.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="the .pictai project whose {{variables}} the rows fill (rows may override it "
        "with a template column)",
    )
    validate.add_argument(
        "--flow",
        choices=flows.names(),
        default="template",
        help="the flow of rows without a flow column (default: template)",
    )
    validate.add_argument(
        "--out",
        type=Path,
        metavar="RUN_DIR",
        help="also list rows whose values changed since RUN_DIR rendered them, and new rows "
        "whose video name is already taken in RUN_DIR/videos (run refuses those)",
    )
    validate.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings ([input] max_rows)"
    )
    options.add_manifest_options(validate)
    validate.set_defaults(func=handlers.cmd_validate)

    approve = sub.add_parser(
        "approve",
        help="approve the canary in RUN_DIR and render the rest of the batch",
        description="Records that the canary was approved, then renders the rest. "
        + RESUME_DESCRIPTION,
        epilog=EPILOG,
    )
    approve.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", nargs="?", help=RUN_DIR_HELP + " (or --ledger)"
    )
    options.add_ledger_options(approve, config=False)  # the run options have --config
    approve.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        default=Path("runs/worker"),
        help="with --ledger: where this process writes videos and its log, as a worker",
    )
    options.add_account_option(approve, "with --ledger: ")
    options.add_run_options(approve)
    options.add_results_option(approve, "without --ledger: ")
    approve.set_defaults(func=handlers.cmd_approve)

    adopt = sub.add_parser(
        "adopt",
        help="rebuild a run directory's removed ledger from its videos and results.csv "
        "(renders nothing)",
        description="A run directory whose ledger.jsonl was removed still holds its videos and "
        "results.csv; `run` refuses to start afresh there (it would render every row again). "
        "This rebuilds the ledger from them, row by row, against the run's manifest: videos "
        "there are done, rows with a render job re-attach to it, rows that may have rendered "
        "are ambiguous. Then the same `orchestrator run` command goes on with the rest.",
    )
    adopt.add_argument("run_dir", type=Path, metavar="RUN_DIR", help=RUN_DIR_HELP)
    adopt.add_argument("manifest", type=Path, metavar="MANIFEST", help="the run's manifest")
    adopt.add_argument("--template", type=Path, metavar="FILE", help="the run's .pictai project")
    adopt.add_argument("--flow", choices=flows.names(), default="template", help="the run's --flow")
    adopt.add_argument(
        "--simulate",
        nargs="?",
        const="demo",
        metavar="PROFILE",
        choices=PROFILES,
        help="the run's --simulate, carried into the run command it prints (adopt sends nothing)",
    )
    adopt.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the run's --config ([input] max_rows), carried into the run command it prints",
    )
    options.add_manifest_options(adopt)
    adopt.set_defaults(func=handlers.cmd_adopt)

    report = sub.add_parser(
        "report", help="write RUN_DIR/results.csv and RUN_DIR/report.html from the ledger"
    )
    report.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN_DIR",
        nargs="?",
        help=RUN_DIR_HELP + " (with --ledger: where results.csv goes, default .)",
    )
    report.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write results.csv, report.html and the posters into DIR instead (a read-only "
        "run directory; the page links the videos where they are)",
    )
    options.add_ledger_options(report)
    options.add_results_option(report, recorded=False)
    options.add_links_option(report)
    report.set_defaults(func=handlers.cmd_report)

    status = sub.add_parser(
        "status",
        help="where a batch stands: live or stopped, rows by state, what to run next",
        description="Where a batch stands, read from its ledger: live (pid, host, since) or "
        "stopped (how and when), rows by state, failures by class, rate and ETA while live, "
        "and the command that continues it.",
    )
    status.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", nargs="?", help="the run's --out folder"
    )
    options.add_ledger_options(status)
    status.add_argument("--json", action="store_true", help="one JSON object per report")
    status.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=5.0,
        metavar="S",
        help="report again every S seconds (default 5) until the run stops",
    )
    status.set_defaults(func=handlers.cmd_status)

    doctor = sub.add_parser(
        "doctor",
        help="check credentials, base URL, clock, quota and templates (nothing billed)",
        description="Check that a batch can run against the configured API: which credentials "
        "are in use (an API key, or client id + secret with or without a user id) and the routes "
        "they take, base URL, clock skew, video-minute quota and template listing. Makes no "
        "billable call and prints no secret.",
        epilog="exit codes: 0 ready (warnings allowed); 2 something to fix (printed with 'fix:'); "
        "with --calibrate: 0 profile written, 2 not confirmed (nothing sent), 1 the API failed",
    )
    doctor.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings (config.example.toml)"
    )
    doctor.add_argument(
        "--simulate",
        nargs="?",
        const="demo",
        metavar="PROFILE",
        choices=PROFILES,
        help="check the embedded simulator instead of the real API (" + PROFILES_HELP + ")",
    )
    from orchestrator.cli.calibrate import add_arguments as add_calibrate_arguments

    add_calibrate_arguments(doctor)
    doctor.set_defaults(func=handlers.cmd_doctor)

    submit = sub.add_parser(
        "submit", help="validate a manifest and create a batch in a shared ledger (PostgreSQL)"
    )
    submit.add_argument("manifest", type=Path, metavar="MANIFEST", help=MANIFEST_HELP)
    submit.add_argument("--template", type=Path, metavar="FILE", help="the .pictai project")
    submit.add_argument(
        "--flow", choices=flows.names(), default="template", help="default: template"
    )
    submit.add_argument("--name", metavar="NAME", help="the batch's name (default: MANIFEST's)")
    options.add_ledger_options(submit, batch=False)
    whose = submit.add_mutually_exclusive_group()
    whose.add_argument(
        "--account",
        action="append",
        metavar="NAME",
        help="only workers given --account NAME render the batch (repeatable: several "
        "accounts); see docs/shared-ledger.md#whose-batch-it-is",
    )
    whose.add_argument(
        "--any-account",
        action="store_true",
        help="workers of any account render the batch (the default until the ledger holds a "
        "batch bound to accounts; from then on, say so)",
    )
    options.add_manifest_options(submit, name_flag=False)
    options.add_results_option(submit, "every worker's and report's: ")
    options.add_choice_options(submit)
    submit.set_defaults(func=handlers.cmd_submit)

    worker = sub.add_parser(
        "worker",
        help="claim and render rows of a shared batch (start as many as you like)",
        epilog=EPILOG,
    )
    worker.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        default=Path("runs/worker"),
        help="where this worker writes videos and its log (default: runs/worker)",
    )
    options.add_ledger_options(worker, config=False)  # the run options have --config
    options.add_account_option(worker)
    options.add_run_options(worker)
    worker.set_defaults(func=handlers.cmd_worker)

    migrate = sub.add_parser(
        "migrate",
        help="create or upgrade a shared ledger's schema (PostgreSQL): the one command that "
        "changes it",
    )
    options.add_ledger_options(migrate, batch=False)
    migrate.set_defaults(func=handlers.cmd_migrate)

    add_forget_parser(sub)
    add_serve_parser(sub)
    add_sim_parser(sub)
    add_dev_postgres_parser(sub)
    add_purge_parser(sub)
    return parser
