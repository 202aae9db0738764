"""What each CLI command does, given parsed arguments. Kept apart so ``cli`` stays a parser.

Each function returns the process exit code; user mistakes are raised as ``UserError`` and turned
into one line and exit 2 by ``cli.main``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
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
from orchestrator.clock import RealClock, local_time
from orchestrator.config import Config, Credentials, load_config, load_credentials
from orchestrator.errors import ConfigError, RunDirError, UserError
from orchestrator.events import LOG_NAME, FanoutSink, JsonlLogSink
from orchestrator.input.manifest import read_manifest
from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions
from orchestrator.input.rows import TemplateCache, iter_row_jobs
from orchestrator.input.validate import validate_manifest
from orchestrator.ledger.file import LEDGER_NAME, first_run_record, read_ledger
from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import RunStarted
from orchestrator.report.console import console_sink
from orchestrator.report.results import write_results
from orchestrator.report.status import status
from orchestrator.run.admission import HaltPolicy, Window
from orchestrator.run.end import print_summary
from orchestrator.run.execute import RunSpec, RunSummary, execute

UNTIL_MAX_AHEAD_H = 12
"""An --until time that has passed today means tomorrow only if that is at most this far off."""


def run_command(
    args: argparse.Namespace, *, manifest: Path, template: Path | None, run_dir: Path
) -> int:
    warnings: list[str] = []
    config = load_config(args.config, warn=warnings)
    for warning in warnings:
        print(f"orchestrator: warning: {warning}", file=sys.stderr)
    config = apply_overrides(config, args)
    simulate: str | None = args.simulate
    credentials = load_credentials(required=simulate is None)
    spec = RunSpec(
        manifest=manifest,
        template=template,
        run_dir=run_dir,
        retry_failed=args.retry_failed,
        flow=args.flow,
        halt=HaltPolicy.parse(args.halt_after) if args.halt_after else None,
        max_renders=_positive(args.max_renders, "--max-renders"),
        window=_window(args),
        at_window_end=args.at_window_end,
        check_quota=args.check_quota,
        canary=_positive(args.canary, "--canary"),
        approve=args.approve,
        canary_required=getattr(args, "canary_required", False),
        manifest_options=manifest_options(args),
    )
    summary = anyio.run(_run, spec, config, credentials, simulate, args.verbose)
    print_summary(summary)
    return summary.exit_code


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
    )


def approve_command(args: argparse.Namespace) -> int:
    """Record the approval of the canary in ``RUN_DIR`` and render the rest (a resume)."""
    args.approve = True
    args.canary_required = True
    return resume_command(args)


def manifest_options(args: argparse.Namespace) -> ManifestOptions:
    """``--sheet``, ``--delimiter``, ``--encoding``, ``--strict-headers``; on resume, the ones
    the first run recorded, each overridden when given again."""
    recorded = ManifestOptions.from_record(getattr(args, "recorded_manifest_options", None))
    given: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in ("sheet", "delimiter", "encoding", "strict_headers")
        if getattr(args, name, None)
    }
    allowed = [str(Path(p).expanduser().resolve()) for p in getattr(args, "allow_path", None) or []]
    if allowed:  # --allow-path adds to the folders an earlier run allowed
        given["allow_paths"] = tuple(dict.fromkeys([*recorded.allow_paths, *allowed]))
    return replace(recorded, **given)


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
        return 0
    print(f"{name}: {report.rows} rows, {report.problem_count} problem(s)", file=sys.stderr)
    return 2


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


def report_command(run_dir: Path) -> int:
    from orchestrator.report.page import write_report
    from orchestrator.run.canary import approval_line, held_back, read_record

    state = read_ledger(run_dir)
    first = _run_record(state)
    template = first.template
    manifest = Path(first.manifest or "")
    flow = first.flow or "template"
    try:
        path, counts, _ = write_results(
            run_dir,
            manifest,
            Path(template) if template else None,
            state,
            flow,
            ManifestOptions.from_record(first.manifest_options),
        )
        canary = read_record(state)
        notice = None
        if canary.waiting and canary.rows is not None:
            rest = held_back(canary.rows, counts, state)
            notice = approval_line(run_dir, len(canary.rows), rest) if rest else None
        info = write_report(
            run_dir,
            manifest,
            Path(template) if template else None,
            state,
            flow,
            notice=notice,
            options=ManifestOptions.from_record(first.manifest_options),
        )
    finally:
        state.rows.close()
    print(f"{path}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    print(f"{info.path}: {info.posters} poster frame(s)")
    return 0 if set(counts) <= {"done"} else 1


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
        return 2
    print("ready: every check passed")
    return 0


def _positive(value: int | None, option: str) -> int | None:
    if value is not None and value < 1:
        raise UserError(f"{option} must be at least 1")
    return value


def _window(args: argparse.Namespace) -> Window | None:
    if args.window and args.until:
        raise UserError("give either --window or --until, not both")
    if args.window:
        return Window.parse(args.window)
    if args.until:
        window = Window.parse(args.until, option="--until")
        now = local_time(RealClock())
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
    if args.rerender_changed:
        run = run.model_copy(update={"rerender_changed": True})
    if args.direct:
        run = run.model_copy(update={"route": "direct"})
    webhook = config.webhook
    if args.webhook:
        webhook = webhook.model_copy(update={"enabled": True})
    notify = config.notify
    if args.notify:
        if not args.notify.startswith(("http://", "https://")):
            raise UserError("--notify must be an http:// or https:// URL")
        notify = notify.model_copy(update={"url": SecretStr(args.notify)})
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
