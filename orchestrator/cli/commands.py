"""What each CLI command does, given parsed arguments. Kept apart so ``cli`` stays a parser.

Each function returns the process exit code; user mistakes are raised as ``UserError`` and turned
into one line and exit 2 by ``cli.main``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
from pydantic import SecretStr

from orchestrator.api import simulated
from orchestrator.cli.doctor import Finding
from orchestrator.cli.run_dir import (
    adopt_needed,
    load_target_config,
    run_command_line,
    session_target,
)
from orchestrator.clock import RealClock
from orchestrator.config import (
    NOTIFY_FROM_CONFIG,
    Config,
    Credentials,
    load_config,
    load_credentials,
    machine_time_zone,
    notify_source,
)
from orchestrator.errors import ConfigError, ExitCode, RunDirError, StorageError, UserError
from orchestrator.events import LOG_NAME, FanoutSink, JsonlLogSink
from orchestrator.input.identity import identity_named
from orchestrator.input.manifest import read_manifest, text_dialect
from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions, with_row_cap
from orchestrator.input.rows import TemplateCache, iter_row_jobs, manifest_rows
from orchestrator.input.validate import validate_manifest
from orchestrator.ledger.file import LEDGER_NAME, first_run_record, read_ledger
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState
from orchestrator.ledger.records import BatchChoices, RunStarted
from orchestrator.report.console import console_sink
from orchestrator.report.results import write_results
from orchestrator.report.status import status
from orchestrator.run.admission import HaltPolicy, Window
from orchestrator.run.end import RunSummary, print_summary
from orchestrator.run.execute import VIDEOS_DIR, RunSpec, execute

UNTIL_MAX_AHEAD_H = 12
"""An --until time that has passed today means tomorrow only if that is at most this far off."""


def run_command(
    args: argparse.Namespace,
    *,
    manifest: Path,
    template: Path | None,
    run_dir: Path,
    resuming: bool = False,
) -> int:
    """``run`` (and, ``resuming``, ``resume`` and ``approve``: they reuse what the batch last
    ran against, ``cli.run_dir``)."""
    target = session_target(args, run_dir, reuse=resuming)
    warnings: list[str] = []
    config = load_target_config(target, args.config, warnings)
    for warning in warnings:
        print(f"orchestrator: warning: {warning}", file=sys.stderr)
    config = apply_overrides(config, args)
    if not resuming:
        adopt_needed(args, run_dir, manifest)
    simulate = target.simulate
    target = replace(target, base_url=None if simulate else config.api.base_url)
    credentials = load_credentials(required=simulate is None)
    spec = RunSpec(
        run_dir=run_dir,
        manifest=manifest,
        template=template,
        flow=args.flow,
        choices=batch_choices(args, config),
        retry_failed=args.retry_failed,
        approve=args.approve,
        canary_required=getattr(args, "canary_required", False),
        manifest_options=manifest_options(args, manifest=manifest, run_dir=run_dir),
        target=target.record(),
        resuming=resuming,
    )
    return run_spec(spec, config, credentials, simulate, args.verbose)


def run_spec(
    spec: RunSpec, config: Config, credentials: Credentials, simulate: str | None, verbose: bool
) -> int:
    """Execute ``spec`` with a log and a console, print the summary; the exit code."""
    summary = anyio.run(_run, spec, config, credentials, simulate, verbose)
    print_summary(summary)
    return summary.exit_code


def batch_choices(args: argparse.Namespace, config: Config) -> BatchChoices:
    """The batch-wide choices given on the command line (validated; see ``records.BatchChoices``).
    A window or ``--until`` is read in ``--time-zone`` (default: this machine's zone)."""
    window = _window(args)
    zone = None
    if window is not None:
        zone = window.zone
    notify = getattr(args, "notify", None)
    if notify is None and config.notify.url is not None:
        notify = NOTIFY_FROM_CONFIG
    return BatchChoices(
        canary=_positive(args.canary, "--canary"),
        halt_after=_halt_after(args.halt_after),
        max_renders=_positive(args.max_renders, "--max-renders"),
        window=args.window if window is not None and window.start is not None else None,
        until=args.until if window is not None and window.start is None else None,
        time_zone=zone,
        at_window_end=args.at_window_end if args.at_window_end != "finish" else None,
        check_quota=bool(args.check_quota),
        rerender_changed=bool(args.rerender_changed),
        notify=notify_source(notify),
    )


def resume_command(args: argparse.Namespace) -> int:
    run_dir: Path = args.run_dir
    first = first_run_record(run_dir)
    args.flow = first.flow or "template"
    args.recorded_manifest_options = first.manifest_options
    return run_command(
        args,
        manifest=Path(first.manifest or ""),
        template=Path(first.template) if first.template else None,
        run_dir=run_dir,
        resuming=True,
    )


def approve_command(args: argparse.Namespace) -> int:
    """Record the approval of the canary in ``RUN_DIR`` and render the rest (a resume)."""
    args.approve = True
    args.canary_required = True
    return resume_command(args)


def manifest_options(
    args: argparse.Namespace, *, manifest: Path | None = None, run_dir: Path | None = None
) -> ManifestOptions:
    """``--sheet``, ``--delimiter``, ``--encoding``, ``--strict-headers``, ``--strict-columns``,
    ``--results-dialect``, ``--max-rows`` (else ``[input] max_rows`` of ``--config``); on
    resume, the ones the first run recorded, each overridden when given again. With
    ``manifest``: its delimiter and encoding as found (``results.csv`` follows them). Rows
    without ``id`` get readable names in a new batch; ``run_dir``'s batch keeps the names it
    began with."""
    recorded = ManifestOptions.from_record(getattr(args, "recorded_manifest_options", None))
    given: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in (
            "sheet",
            "delimiter",
            "encoding",
            "strict_headers",
            "strict_columns",
            "results_dialect",
        )
        if getattr(args, name, None)
    }
    allowed = [str(Path(p).expanduser().resolve()) for p in getattr(args, "allow_path", None) or []]
    if allowed:  # --allow-path adds to the folders an earlier run allowed
        given["allow_paths"] = tuple(dict.fromkeys([*recorded.allow_paths, *allowed]))
    given["readable_names"] = _readable_names(run_dir)
    options = replace(recorded, **given)
    if manifest is not None:
        found = text_dialect(manifest, options)
        options = replace(
            options,
            found_delimiter=found[0] if found else None,
            found_encoding=found[1] if found else None,
        )
    return with_row_cap(options, getattr(args, "max_rows", None), getattr(args, "config", None))


def _readable_names(run_dir: Path | None) -> bool:
    """Whether rows without ``id`` get readable names (``identity.readable_name``): yes, unless
    ``run_dir`` holds a batch begun with identity names (its first record says so, or, with its
    ledger removed, its videos are named so)."""
    if run_dir is None:
        return True
    if (run_dir / LEDGER_NAME).exists():
        try:
            recorded = first_run_record(run_dir).manifest_options
        except UserError:  # the run refuses it, saying why
            return True
        return ManifestOptions.from_record(recorded).readable_names
    with contextlib.suppress(OSError), os.scandir(run_dir / VIDEOS_DIR) as entries:
        return not any(identity_named(entry.name) for entry in entries)
    return True


def validate_command(
    manifest: Path,
    template: Path | None,
    flow: str = "template",
    options: ManifestOptions = DEFAULT_OPTIONS,
    *,
    run_dir: Path | None = None,
) -> int:
    report = validate_manifest(manifest, template, flow, options)
    if report.ok and run_dir is not None and (run_dir / LEDGER_NAME).exists():
        for line in changed_rows(run_dir, manifest, template, flow, options):
            print(f"warning: {line}")
    for problem in report.problems:
        print(problem)
    for warning in getattr(report, "warnings", []):
        print(f"warning: {warning}")
    for note in report.notes:
        print(f"note: {note}")
    if report.problem_count > len(report.problems):
        print(f"… and {report.problem_count - len(report.problems)} more problems")
    name = report.read_as or manifest
    if report.ok:
        print(f"{name}: {report.rows} rows, no problems")
        return ExitCode.OK
    print(f"{name}: {report.rows} rows, {report.problem_count} problem(s)", file=sys.stderr)
    return ExitCode.USAGE


def changed_rows(
    run_dir: Path,
    manifest: Path,
    template: Path | None,
    flow: str,
    options: ManifestOptions = DEFAULT_OPTIONS,
) -> list[str]:
    """One line per manifest row whose values differ from those ``run_dir`` rendered it from."""
    state = read_ledger(run_dir)
    lines: list[str] = []
    try:
        for _, job in iter_row_jobs(manifest, template, TemplateCache(), flow, options):
            st = state.rows.get(job.row_id)
            if st is not None and st.made_from_other_values(job.variables):
                lines.append(
                    f"{manifest}:{job.line}: row {job.row_id} changed since its video was made; "
                    "a run keeps that video (--rerender-changed renders the new values)"
                )
    finally:
        state.rows.close()
    return lines


def adopt_command(args: argparse.Namespace) -> int:
    """Rebuild ``RUN_DIR``'s removed ledger (``run.adopt``), print what it found and the
    command that goes on."""
    from orchestrator.run.adopt import adopt

    run_dir: Path = args.run_dir
    options = manifest_options(args, manifest=args.manifest, run_dir=run_dir)
    found = anyio.run(adopt, run_dir, args.manifest, args.template, args.flow, options)
    counts = found.counts
    print(
        f"{run_dir}: ledger rebuilt, nothing rendered: {counts['done']} video(s) done, "
        f"{counts['reattach']} row(s) re-attach to their render job, "
        f"{counts['ambiguous']} ambiguous, {counts['failed']} failed, "
        f"{counts['to_render']} left to render"
    )
    if found.mismatched:
        shown = ", ".join(found.mismatched[:5]) + (" …" if len(found.mismatched) > 5 else "")
        print(f"videos that differ from results.csv (not adopted as done): {shown}")
    print(f"next: {run_command_line(args, run_dir)}")
    return ExitCode.OK


def report_command(
    run_dir: Path, out_dir: Path | None = None, results_dialect: str | None = None
) -> int:
    """``results.csv`` and ``report.html`` of a run directory, from its ledger: into the run
    directory, or into ``out_dir`` (a read-only run directory, a copy to share);
    ``results_dialect``: ``--results-dialect`` (default: as the batch records it)."""
    state = read_ledger(run_dir)
    first = _run_record(state)
    rows = manifest_rows(
        Path(first.manifest or ""),
        Path(first.template) if first.template else None,
        first.flow or "template",
        ManifestOptions.from_record(first.manifest_options),
    )
    snapshot = BatchSnapshot(rows=rows, state=state)
    batch_ref = shlex.quote(str(run_dir.absolute()))  # the page is read from anywhere
    try:
        if out_dir is None or out_dir.resolve() == run_dir.resolve():
            return write_batch_report(run_dir, snapshot, batch_ref, results_dialect=results_dialect)
        return write_batch_report(
            out_dir, snapshot, batch_ref, videos_in=run_dir, results_dialect=results_dialect
        )
    finally:
        state.rows.close()


def write_batch_report(
    out_dir: Path,
    snapshot: BatchSnapshot,
    batch_ref: str,
    *,
    videos_in: Path | None = None,
    results_dialect: str | None = None,
) -> int:
    """Write ``OUT_DIR/results.csv`` and ``OUT_DIR/report.html`` (with its posters) from a
    batch's read side, print where, and return 0 when every row is done, else 1.
    ``batch_ref``: how the page's commands name the batch, ready for the shell.
    ``videos_in``: the run directory whose videos the page links, when it is not ``out_dir``.
    ``results_dialect``: ``--results-dialect`` (default: as the batch records it)."""
    from orchestrator.report.page import write_report
    from orchestrator.run.canary import approval_line, held_back, read_record

    try:
        path, counts, _ = write_results(
            out_dir, snapshot.rows, snapshot.state, dialect=results_dialect
        )
        canary = read_record(snapshot.state)
        notice = None
        if canary.waiting and canary.rows is not None:
            rest = held_back(canary.rows, counts, snapshot.state)
            notice = (
                approval_line(out_dir.absolute(), len(canary.rows), rest, batch_ref)
                if rest
                else None
            )
        info = write_report(
            out_dir, snapshot.rows, snapshot.state, notice=notice, videos_in=videos_in
        )
    except (OSError, StorageError) as exc:  # read-only, full, a folder in a file's place...
        if isinstance(exc, StorageError):
            why, where = exc.reason, exc.path
        else:
            why, where = str(exc.strerror), str(exc.filename2 or exc.filename or out_dir)
        again = "orchestrator report"  # a shared batch's, or a copy: its own options
        if videos_in is None and not batch_ref.startswith("--"):
            again += f" {batch_ref}"  # a run directory's own report
        raise RunDirError(
            f"{out_dir}: cannot write results.csv and report.html there ({why}: {where}); the "
            "ledger is untouched: make the folder writable (or free some space) and run "
            f"`{again}` again, or write them elsewhere with `--out DIR`"
        ) from exc
    print(f"{path}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    print(f"{info.path}: {info.posters} poster frame(s)")
    return ExitCode.OK if set(counts) <= {"done"} else ExitCode.NOT_ALL_DONE


def status_command(run_dir: Path, *, as_json: bool = False, watch_s: float | None = None) -> int:
    """Print where the batch stands; with ``watch_s``, again every ``watch_s`` seconds until the
    run is no longer live."""
    first = first_run_record(run_dir)
    total: int | None = None
    with contextlib.suppress(UserError):
        options = ManifestOptions.from_record(first.manifest_options)
        total = sum(1 for _ in read_manifest(Path(first.manifest or ""), options))
    while True:
        state = read_ledger(run_dir)
        try:
            report = status(run_dir, state, total)
        finally:
            state.rows.close()
        if as_json:
            print(json.dumps(report.as_dict()), flush=True)
        else:
            print("\n".join(report.lines()), flush=True)
        live = report.liveness is not None and report.liveness.live
        if watch_s is None or not live:
            return 0
        time.sleep(watch_s)
        if not as_json:
            print(flush=True)


def doctor_command(config_path: Path | None, simulate: str | None) -> int:
    """Check credentials, base URL, clock, quota and templates; print findings; 0 or 2."""
    from orchestrator.cli.doctor import credential_finding, diagnose

    config = load_config(config_path)
    try:
        credentials: Credentials | None = load_credentials(required=simulate is None)
        problem = None
    except ConfigError as exc:
        credentials, problem = None, str(exc)
    target = "the embedded simulator" if simulate else config.api.base_url
    print(f"orchestrator doctor: checking {target} (no billable call is made)")
    findings = [credential_finding(credentials, problem)]
    if credentials is not None:

        async def check(creds: Credentials) -> list[Finding]:
            async with simulated.target(config, simulate) as effective:
                return await diagnose(effective, creds)

        findings += anyio.run(check, credentials)
    for finding in findings:
        print(finding.line())
    failed = [f for f in findings if f.verdict == "fail"]
    if failed:
        print(f"{len(failed)} problem(s) to fix before a run; see 'fix:' above")
        return ExitCode.USAGE
    print("ready: every check passed")
    return ExitCode.OK


def _halt_after(text: str | None) -> str | None:
    """``--halt-after``, checked (``HaltPolicy.parse`` says what is wrong) and kept as given."""
    if not text:
        return None
    HaltPolicy.parse(text)
    return text.strip()


def _positive(value: int | None, option: str) -> int | None:
    if value is not None and value < 1:
        raise UserError(f"{option} must be at least 1")
    return value


def _window(args: argparse.Namespace) -> Window | None:
    if args.window and args.until:
        raise UserError("give either --window or --until, not both")
    zone = getattr(args, "time_zone", None) or machine_time_zone()
    if args.window:
        return Window.parse(args.window, zone=zone)
    if args.until:
        window = Window.parse(args.until, option="--until", zone=zone)
        now = window.now(RealClock())
        left_s = window.seconds_left(now)
        if window.end < now.time() and left_s > UNTIL_MAX_AHEAD_H * 3600:
            means = now + dt.timedelta(seconds=left_s)
            raise UserError(
                f"--until {args.until}: that time has passed today (it is {now:%H:%M}); it would "
                f"mean tomorrow {means:%a %H:%M}, {left_s / 3600:.0f} h from now. Give a later "
                f"time, or for a run that long say --window {now:%H:%M}-{window.end:%H:%M}"
            )
        return window
    return None


def _run_record(state: LedgerState) -> RunStarted:
    first = state.run_record
    assert first is not None  # read_ledger refuses a ledger without one
    return first


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    limits = config.limits
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise UserError("--concurrency must be at least 1")
        limits = limits.model_copy(update={"max_rows_in_flight": args.concurrency})
    run = config.run
    if args.rerender_ambiguous:
        run = run.model_copy(update={"rerender_ambiguous": True})
    if getattr(args, "rerender_changed", False):
        run = run.model_copy(update={"rerender_changed": True})
    if args.direct:
        run = run.model_copy(update={"route": "direct"})
    webhook = config.webhook
    if args.webhook:
        webhook = webhook.model_copy(update={"enabled": True})
    notify = config.notify
    given = getattr(args, "notify", None)
    if given and notify_source(given) == NOTIFY_FROM_CONFIG and given != NOTIFY_FROM_CONFIG:
        notify = notify.model_copy(update={"url": SecretStr(given)})  # this process's own URL
    return config.model_copy(
        update={"limits": limits, "run": run, "webhook": webhook, "notify": notify}
    )


async def _run(
    spec: RunSpec, config: Config, credentials: Credentials, simulate: str | None, verbose: bool
) -> RunSummary:
    secrets = credentials.secrets()
    clock = RealClock()
    created = not spec.run_dir.exists()
    try:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        log = JsonlLogSink(spec.run_dir / LOG_NAME, secrets, clock=clock)
    except OSError as exc:
        raise RunDirError(
            f"{spec.run_dir}: cannot use it as the run directory ({exc.strerror}); "
            "choose a folder you can write with --out"
        ) from exc
    display = console_sink(secrets=secrets, verbose=verbose, clock=clock)
    sink = FanoutSink(log, display)
    try:
        async with simulated.target(config, simulate) as effective:
            return await execute(spec, effective, credentials, sink=sink, clock=clock)
    except UserError:
        if created and not (spec.run_dir / LEDGER_NAME).exists():
            # Refused before anything was recorded (a bad manifest...): leave no --out behind.
            log.close()
            shutil.rmtree(spec.run_dir, ignore_errors=True)
        raise
    finally:
        display.close()
        log.close()
