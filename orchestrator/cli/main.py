"""The ``orchestrator`` command: parse, build config, call one library function, print.

Exit codes: 0 every row done · 1 some rows failed, ambiguous or pending · 2 bad usage or input ·
3 a canary was rendered and the rest waits for approval · 4 a disk fault stopped it · 130
interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator import DISTRIBUTION, __version__
from orchestrator.errors import ExitCode, StorageError, UserError
from orchestrator.input import flows

MANIFEST_HELP = (
    "the rows to render, one video each: .csv/.tsv/.txt, .xlsx, .json (an array of objects) "
    "or .jsonl; a column named like a template {{variable}} fills it, other columns ride "
    "along into the results"
)
RUN_DIR_HELP = "the run's folder (the --out of its first run): its ledger, videos and results"
PROFILES = ["demo", "realistic", "flaky", "test"]
PROFILES_HELP = (
    "PROFILE demo [default] (previews ~1 s, renders 2-4 s, 20 req/s, 5 renders at once), "
    "realistic (minutes per job, 5 req/s, 3 renders at once), flaky (demo with every fault at "
    "a few percent), test (milliseconds, no limits)"
)

RESULTS_DIALECTS = ("excel", "excel-eu", "utf8")
"""``--results-dialect``: the names of ``report.results.NAMED_DIALECTS`` (not imported here: it
would load pydantic into every start-up)."""

EXIT_AWAITING_APPROVAL = ExitCode.AWAITING_APPROVAL

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
    _add_manifest_options(run)
    _add_run_options(run)
    _add_results_option(run)
    run.set_defaults(func=_cmd_run)

    resume = sub.add_parser(
        "resume",
        help="continue the batch recorded in RUN_DIR",
        description=RESUME_DESCRIPTION,
        epilog=EPILOG,
    )
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR", help=RUN_DIR_HELP)
    _add_manifest_options(resume)
    _add_run_options(resume)
    _add_results_option(resume)
    resume.set_defaults(func=_cmd_resume)

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
        help="also list rows whose values changed since RUN_DIR rendered them",
    )
    validate.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings ([input] max_rows)"
    )
    _add_manifest_options(validate)
    validate.set_defaults(func=_cmd_validate)

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
    _add_ledger_options(approve, config=False)  # the run options have --config
    approve.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        default=Path("runs/worker"),
        help="with --ledger: where this process writes videos and its log, as a worker",
    )
    _add_account_option(approve, "with --ledger: ")
    _add_run_options(approve)
    _add_results_option(approve, "without --ledger: ")
    approve.set_defaults(func=_cmd_approve)

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
    _add_manifest_options(adopt)
    adopt.set_defaults(func=_cmd_adopt)

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
    _add_ledger_options(report)
    _add_results_option(report, recorded=False)
    _add_links_option(report)
    report.set_defaults(func=_cmd_report)

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
    _add_ledger_options(status)
    status.add_argument("--json", action="store_true", help="one JSON object per report")
    status.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=5.0,
        metavar="S",
        help="report again every S seconds (default 5) until the run stops",
    )
    status.set_defaults(func=_cmd_status)

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
    doctor.set_defaults(func=_cmd_doctor)

    submit = sub.add_parser(
        "submit", help="validate a manifest and create a batch in a shared ledger (PostgreSQL)"
    )
    submit.add_argument("manifest", type=Path, metavar="MANIFEST", help=MANIFEST_HELP)
    submit.add_argument("--template", type=Path, metavar="FILE", help="the .pictai project")
    submit.add_argument(
        "--flow", choices=flows.names(), default="template", help="default: template"
    )
    submit.add_argument("--name", metavar="NAME", help="the batch's name (default: MANIFEST's)")
    _add_ledger_options(submit, batch=False)
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
    _add_manifest_options(submit, name_flag=False)
    _add_results_option(submit, "every worker's and report's: ")
    _add_choice_options(submit)
    submit.set_defaults(func=_cmd_submit)

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
    _add_ledger_options(worker, config=False)  # the run options have --config
    _add_account_option(worker)
    _add_run_options(worker)
    worker.set_defaults(func=_cmd_worker)

    migrate = sub.add_parser(
        "migrate",
        help="create or upgrade a shared ledger's schema (PostgreSQL): the one command that "
        "changes it",
    )
    _add_ledger_options(migrate, batch=False)
    migrate.set_defaults(func=_cmd_migrate)

    add_forget_parser(sub)
    add_serve_parser(sub)
    add_sim_parser(sub)
    add_dev_postgres_parser(sub)
    add_purge_parser(sub)
    return parser


def _add_ledger_options(
    p: argparse.ArgumentParser, *, batch: bool = True, config: bool = True
) -> None:
    p.add_argument(
        "--ledger",
        metavar="URL",
        help="a shared ledger: postgresql://USER@HOST:PORT/DB (or [ledger] url); the password "
        "comes from PGPASSWORD",
    )
    if batch:
        p.add_argument(
            "--batch", metavar="NAME", help="the batch (default: the oldest with rows to do)"
        )
    if config:
        p.add_argument(
            "--config", type=Path, metavar="FILE", help="TOML settings ([ledger] url, lease_s)"
        )


def _add_account_option(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(
        "--account",
        metavar="NAME",
        help=prefix + "the name of the account this worker's credentials belong to: it takes "
        "the batches submitted for that account or for any (default: only those for any)",
    )


def _add_manifest_options(p: argparse.ArgumentParser, *, name_flag: bool = True) -> None:
    group = p.add_argument_group("reading the manifest")
    group.add_argument(
        *(("--name", "--name-pattern") if name_flag else ("--name-pattern",)),
        dest="name_pattern",
        metavar="PATTERN",
        help="name each video from its row, e.g. '{first_name}-{id}' (any column; {id}: the "
        "row's id), made file- and URL-safe and unique (validate lists every collision); "
        "default: [run] name_pattern, else the id or a readable name; recorded: a batch keeps its "
        "names "
        "(docs/manifest.md#file-names-from-a-pattern)",
    )
    group.add_argument("--sheet", metavar="NAME", help="the workbook's sheet (default: the first)")
    group.add_argument(
        "--delimiter",
        metavar="D",
        help="the CSV delimiter: ',' ';' tab or '|' (default: detected from the header)",
    )
    group.add_argument(
        "--encoding",
        metavar="NAME",
        help="read a text manifest in this encoding, e.g. cp1252 (default: UTF-8, or UTF-16 "
        "when the file starts with its byte-order mark)",
    )
    group.add_argument(
        "--strict-headers",
        action="store_true",
        help="refuse headers that only nearly match a variable ('First Name' for first_name)",
    )
    group.add_argument(
        "--strict-columns",
        action="store_true",
        help="refuse columns the template does not use (by default they are carried through to "
        "results.csv, never sent, with one warning naming them)",
    )
    group.add_argument(
        "--allow-path",
        action="append",
        type=Path,
        metavar="DIR",
        help="let the manifest's template, text_file and video cells name files in DIR too "
        "(repeatable; by default only files in the manifest's own folder are read)",
    )
    group.add_argument(
        "--max-rows",
        type=_row_cap,
        metavar="N",
        help="the most rows the manifest may hold (default: [input] max_rows, 1,000,000); a "
        "longer one is refused at its row N+1, read no further (recorded with the run)",
    )


def _add_results_option(
    p: argparse.ArgumentParser, prefix: str = "", *, recorded: bool = True
) -> None:
    default = (
        "like the manifest (its delimiter; its encoding, or UTF-8 with BOM where a value does "
        "not fit); recorded with the run"
        if recorded
        else "as the batch's latest run wrote it"
    )
    p.add_argument(
        "--results-dialect",
        choices=RESULTS_DIALECTS,
        help=prefix + "how results.csv is written: excel (comma, UTF-8 with BOM), excel-eu "
        f"(semicolon, UTF-8 with BOM), utf8 (comma, no BOM: for scripts); default: {default}",
    )


def _row_cap(text: str) -> int:
    """``--max-rows``: a whole number of rows, at least 1 (``2_000_000`` and ``2,000,000`` too)."""
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the cap must be at least 1 row")
    return value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """What one process does (settings of its own) and the batch-wide choices."""
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="TOML settings (config.example.toml)"
    )
    p.add_argument("--concurrency", type=int, metavar="N", help="rows in flight at once")
    p.add_argument(
        "--simulate",
        nargs="?",
        const="demo",
        metavar="PROFILE",
        choices=PROFILES,
        help="run against the embedded simulator instead of the real API: " + PROFILES_HELP,
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="also retry rows that failed permanently before now (each once; recorded in the "
        "ledger, so on a shared batch every worker takes them)",
    )
    p.add_argument(
        "--rerender-ambiguous",
        action="store_true",
        help="render again rows whose earlier render may or may not exist (may bill twice)",
    )
    p.add_argument(
        "--direct",
        action="store_true",
        help="render template and storyboard rows with one direct request each "
        "(POST /v2/video/storyboard/render), no preview: half the API requests",
    )
    p.add_argument(
        "--webhook",
        action="store_true",
        help="let Pictory call a local receiver when jobs finish instead of polling "
        "(set [webhook] public_url when Pictory cannot reach this machine)",
    )
    p.add_argument(
        "--approve",
        action="store_true",
        help="approve the canary recorded in the batch's ledger and render the rest",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics at http://127.0.0.1:N/metrics while the run lasts "
        "(0: any free port; [metrics] host to listen elsewhere)",
    )
    p.add_argument(
        "--keep-local",
        choices=("all", "posters", "none"),
        help="local copies kept once a row's delivery is checksum-verified, never before "
        "(default all; [run] keep_local): posters keeps each poster frame only",
    )
    _add_links_option(p)
    p.add_argument("-v", "--verbose", action="store_true", help="print every event")
    _add_deliver_options(p)
    _add_choice_options(p)


def _add_links_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--links-valid-days",
        type=float,
        metavar="N",
        help="warn (at the end and in the report) when a done row's email_url may stop "
        "working within N days ([report] links_valid_days; docs/run-directory.md)",
    )


def _add_deliver_options(p: argparse.ArgumentParser) -> None:
    """Where each video goes once downloaded (``[deliver]``; docs/delivery.md)."""
    group = p.add_argument_group("delivery (docs/delivery.md)")
    group.add_argument(
        "--deliver",
        metavar="URL",
        help="upload each video as soon as its row is done, checksum verified, to "
        "s3://BUCKET/PREFIX/ (any S3-compatible store: AWS_ENDPOINT_URL_S3, AWS_PROFILE, "
        "AWS_ACCESS_KEY_ID...) or file:///PATH/ (a mounted share); results.csv links each",
    )
    group.add_argument(
        "--deliver-presign",
        dest="deliver_presign_days",
        type=float,
        metavar="DAYS",
        help="results.csv links a presigned URL lasting DAYS (at most 7, S3's maximum)",
    )
    group.add_argument(
        "--deliver-public-url",
        metavar="BASE",
        help="results.csv links BASE + the object's key (a public bucket or a CDN)",
    )
    group.add_argument(
        "--pictory-aws-connection",
        metavar="ID",
        help="ask Pictory itself to deliver each video to this AWS connection (v2 routes, an "
        "API key: awsConnectionId; set up in Pictory's app); [deliver] destinations for more",
    )
    group.add_argument(
        "--pictory-vimeo-connection",
        metavar="ID",
        help="ask Pictory itself to deliver each video to this Vimeo connection (v2 routes, an "
        "API key: vimeoConnectionId)",
    )


def _add_choice_options(p: argparse.ArgumentParser) -> None:
    """The batch-wide choices: recorded in the ledger by the session that states them (a run,
    or ``submit`` for a shared batch, whose workers obey them)."""
    group = p.add_argument_group(
        "batch-wide choices",
        "recorded in the batch's ledger: a run directory's session states its own; a shared "
        "batch's are stated once by `orchestrator submit`, and a worker given a different one "
        "is refused",
    )
    group.add_argument(
        "--rerender-changed",
        action="store_true",
        help="render again rows whose values changed since their video was made, under a new "
        "file name (NAME.v2.mp4...); without it such rows keep their video and old values",
    )
    group.add_argument(
        "--halt-after",
        metavar="N|P%",
        help="stop admitting rows after N failed rows, or once P%% of finished rows "
        "failed (the batch is probably broken)",
    )
    group.add_argument(
        "--max-renders",
        type=int,
        metavar="N",
        help="send at most N render requests per session (a run, or each worker): a spend cap",
    )
    group.add_argument(
        "--max-minutes",
        type=float,
        metavar="N",
        help="commit at most N video minutes per session (a render in flight counts its "
        "expected length until Pictory says its videoDuration): a spend cap in the invoice's "
        "units (docs/cost.md)",
    )
    group.add_argument(
        "--max-credits",
        type=float,
        metavar="N",
        help="commit at most N AI credits per session (a render in flight counts its expected "
        "credits until Pictory says its aiCreditsUsed): a spend cap (docs/cost.md)",
    )
    group.add_argument(
        "--until",
        metavar="HH:MM",
        help="start no row that would not finish by this time of day (HH:MM:SS also works)",
    )
    group.add_argument(
        "--window",
        metavar="HH:MM-HH:MM",
        help="start rows only inside this daily window (waits for it to open; HH:MM:SS too)",
    )
    group.add_argument(
        "--time-zone",
        metavar="ZONE",
        help="the IANA time zone of --window and --until, e.g. America/New_York (default: "
        "this machine's); recorded, so workers in other zones agree",
    )
    group.add_argument(
        "--at-window-end",
        choices=["finish", "stop"],
        default="finish",
        help="when the window closes: let in-flight rows finish (default) or stop "
        "them and leave them for the next resume",
    )
    group.add_argument(
        "--check-quota",
        action="store_true",
        help="read the account's quota (video minutes, AI credits) first and refuse, with the "
        "figures, a batch whose estimate cannot fit what is left (docs/cost.md)",
    )
    group.add_argument(
        "--canary",
        type=int,
        metavar="N",
        help="render only N rows (spread over the templates and flows), write the report and "
        "stop with exit code 3 until `orchestrator approve RUN_DIR` (or --ledger URL)",
    )
    notify = group.add_mutually_exclusive_group()
    notify.add_argument(
        "--notify",
        metavar="URL|env:NAME|file:PATH|config",
        help="POST a JSON summary (Slack-compatible) when the session ends, halts or waits for "
        "approval: to URL, to the URL in environment variable NAME, in file PATH, or to "
        "[notify] url (default: [notify] url, else $ORCHESTRATOR_NOTIFY_URL when set). The "
        "ledger records only where the URL comes from (a shared batch needs env:NAME, file:PATH "
        "or config). A URL here shows in `ps` and shell history: prefer --notify-file",
    )
    notify.add_argument(
        "--notify-file",
        dest="notify",
        type=lambda path: "file:" + path,
        metavar="FILE",
        help="--notify with the URL read from FILE (its content, stripped; keep it chmod 600): "
        "the same as --notify file:FILE",
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import run_command

    out = args.out or Path("runs") / args.manifest.stem
    return run_command(args, manifest=args.manifest, template=args.template, run_dir=out)


def _cmd_resume(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import resume_command

    return resume_command(args)


def _cmd_approve(args: argparse.Namespace) -> int:
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


def _cmd_validate(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import manifest_options, validate_command

    return validate_command(
        args.manifest,
        args.template,
        args.flow,
        manifest_options(args, run_dir=args.out),
        run_dir=args.out,
        config_file=args.config,
    )


def _cmd_adopt(args: argparse.Namespace) -> int:
    from orchestrator.cli.commands import adopt_command

    return adopt_command(args)


def _cmd_submit(args: argparse.Namespace) -> int:
    from orchestrator.cli.shared import submit_command

    return submit_command(args)


def _cmd_worker(args: argparse.Namespace) -> int:
    from orchestrator.cli.shared import worker_command

    return worker_command(args)


def _cmd_migrate(args: argparse.Namespace) -> int:
    from orchestrator.cli.migrate import migrate_command

    return migrate_command(args)


def _needs_run_dir(args: argparse.Namespace) -> Path:
    if args.run_dir is None:
        raise UserError(f"`orchestrator {args.command}` needs RUN_DIR, or --ledger URL")
    run_dir: Path = args.run_dir
    return run_dir


def _cmd_report(args: argparse.Namespace) -> int:
    if args.ledger:
        from orchestrator.cli.shared import ledger_report_command

        return ledger_report_command(args)
    from orchestrator.cli.commands import report_command

    return report_command(
        _needs_run_dir(args), args.out, args.results_dialect, args.links_valid_days
    )


def _cmd_status(args: argparse.Namespace) -> int:
    if args.ledger:
        from orchestrator.cli.shared import ledger_status_command

        return ledger_status_command(args)
    from orchestrator.cli.status import status_command  # light: no HTTP client, no run

    return status_command(_needs_run_dir(args), as_json=args.json, watch_s=args.watch)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from orchestrator.cli.calibrate import calibrate_command, refuse_without_calibrate

    if args.calibrate:
        return calibrate_command(args)
    refuse_without_calibrate(args)
    from orchestrator.cli.commands import doctor_command

    return doctor_command(args.config, args.simulate)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from orchestrator.cli.exposed import exposed, warning

    for flag in exposed(sys.argv[1:] if argv is None else argv):
        print(f"orchestrator: warning: {warning(flag)}", file=sys.stderr)
    try:
        code: int = args.func(args)
    except UserError as exc:
        _say_error(exc)
        return ExitCode.USAGE
    except StorageError as exc:
        _say_error(exc)
        return ExitCode.STORAGE
    except BaseExceptionGroup as group:  # a user error met inside a task group (a worker's rows)
        mistakes = _user_errors(group)
        if mistakes is None:
            raise
        for mistake in dict.fromkeys(mistakes):  # each once, in order
            _say_error(mistake)
        disk = any(isinstance(m, StorageError) for m in mistakes)
        return ExitCode.STORAGE if disk else ExitCode.USAGE
    except KeyboardInterrupt:
        print("orchestrator: interrupted; run the same command again to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return code


def _say_error(exc: UserError | StorageError) -> None:
    print(f"orchestrator: error: {exc}", file=sys.stderr)
    for line in getattr(exc, "lines", []):
        print(f"  {line}", file=sys.stderr)


def _user_errors(
    group: BaseExceptionGroup[BaseException],
) -> list[UserError | StorageError] | None:
    """The user errors (and disk faults) ``group`` holds when it holds nothing else (else None:
    a real crash)."""
    found: list[UserError | StorageError] = []
    for exc in group.exceptions:
        if isinstance(exc, UserError | StorageError):
            found.append(exc)
        elif isinstance(exc, BaseExceptionGroup):
            inner = _user_errors(exc)
            if inner is None:
                return None
            found += inner
        else:
            return None
    return found
