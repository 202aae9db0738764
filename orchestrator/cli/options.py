"""The options several commands share, added to a command's parser by the functions here:
reading the manifest, the run options (one process's own settings), delivery, the batch-wide
choices, the ledger and account options, and ``--results-dialect``. Imports argparse only, so
``--help`` stays light.
"""

from __future__ import annotations

import argparse
from pathlib import Path

PROFILES = ["demo", "realistic", "flaky", "test"]
PROFILES_HELP = (
    "PROFILE demo [default] (previews ~1 s, renders 2-4 s, 20 req/s, 5 renders at once), "
    "realistic (minutes per job, 5 req/s, 3 renders at once), flaky (demo with every fault at "
    "a few percent), test (milliseconds, no limits)"
)

RESULTS_DIALECTS = ("excel", "excel-eu", "utf8")
"""``--results-dialect``: the names of ``report.results_csv.NAMED_DIALECTS`` (not imported here: it
would load pydantic into every start-up)."""


def add_ledger_options(
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


def add_account_option(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(
        "--account",
        metavar="NAME",
        help=prefix + "the name of the account this worker's credentials belong to: it takes "
        "the batches submitted for that account or for any (default: only those for any)",
    )


def add_manifest_options(p: argparse.ArgumentParser, *, name_flag: bool = True) -> None:
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
        type=row_cap,
        metavar="N",
        help="the most rows the manifest may hold (default: [input] max_rows, 1,000,000); a "
        "longer one is refused at its row N+1, read no further (recorded with the run)",
    )


def add_results_option(
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


def row_cap(text: str) -> int:
    """``--max-rows``: a whole number of rows, at least 1 (``2_000_000`` and ``2,000,000`` too)."""
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the cap must be at least 1 row")
    return value


def add_run_options(p: argparse.ArgumentParser) -> None:
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
    add_links_option(p)
    p.add_argument("-v", "--verbose", action="store_true", help="print every event")
    add_deliver_options(p)
    add_choice_options(p)


def add_links_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--links-valid-days",
        type=float,
        metavar="N",
        help="warn (at the end and in the report) when a done row's email_url may stop "
        "working within N days ([report] links_valid_days; docs/run-directory.md)",
    )


def add_deliver_options(p: argparse.ArgumentParser) -> None:
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


def add_choice_options(p: argparse.ArgumentParser) -> None:
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
