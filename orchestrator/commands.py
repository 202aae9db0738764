"""What each CLI command does, given parsed arguments. Kept apart so ``cli`` stays a parser.

Each function returns the process exit code; user mistakes are raised as ``UserError`` and turned
into one line and exit 2 by ``cli.main``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from orchestrator.admission import HaltPolicy, Window
from orchestrator.config import Config, Credentials, load_config, load_credentials
from orchestrator.console import console_sink
from orchestrator.doctor import Finding
from orchestrator.errors import ConfigError, RunDirError, UserError
from orchestrator.events import LOG_NAME, FanoutSink, JsonlLogSink
from orchestrator.ledger import LEDGER_NAME, replay
from orchestrator.manifest import read_manifest
from orchestrator.manifest_row import DEFAULT_OPTIONS, ManifestOptions
from orchestrator.results import write_results
from orchestrator.run import RunSpec, RunSummary, execute
from orchestrator.simulator.settings import SimSettings
from orchestrator.status import status
from orchestrator.validate import validate_manifest

UNLIMITED_RPS = 1000.0
RENDER_QUEUE = 2


def run_command(
    args: argparse.Namespace, *, manifest: Path, template: Path | None, run_dir: Path
) -> int:
    warnings: list[str] = []
    config = load_config(args.config, warn=warnings)
    for warning in warnings:
        print(f"orchestrator: warning: {warning}", file=sys.stderr)
    config = _apply_overrides(config, args)
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
        manifest_options=manifest_options(args),
    )
    summary = anyio.run(_run, spec, config, credentials, simulate, args.verbose)
    _print_summary(summary)
    return summary.exit_code


def resume_command(args: argparse.Namespace) -> int:
    run_dir: Path = args.run_dir
    first = _first_run_record(run_dir)
    template = first.get("template")
    args.flow = first.get("flow") or "template"
    args.recorded_manifest_options = first.get("manifest_options")
    return run_command(
        args,
        manifest=Path(first["manifest"]),
        template=Path(template) if template else None,
        run_dir=run_dir,
    )


def manifest_options(args: argparse.Namespace) -> ManifestOptions:
    """``--sheet``, ``--delimiter``, ``--encoding``, ``--strict-headers``; on resume, the ones
    the first run recorded, each overridden when given again."""
    recorded = ManifestOptions.from_record(getattr(args, "recorded_manifest_options", None))
    given: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in ("sheet", "delimiter", "encoding", "strict_headers")
        if getattr(args, name, None)
    }
    return replace(recorded, **given)


def validate_command(
    manifest: Path,
    template: Path | None,
    flow: str = "template",
    options: ManifestOptions = DEFAULT_OPTIONS,
) -> int:
    report = validate_manifest(manifest, template, flow, options)
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


def report_command(run_dir: Path) -> int:
    first = _first_run_record(run_dir)
    template = first.get("template")
    state = replay(run_dir / LEDGER_NAME)
    path, counts = write_results(
        run_dir,
        Path(first["manifest"]),
        Path(template) if template else None,
        state,
        first.get("flow") or "template",
        ManifestOptions.from_record(first.get("manifest_options")),
    )
    print(f"{path}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return 0 if set(counts) <= {"done"} else 1


def status_command(run_dir: Path) -> int:
    first = _first_run_record(run_dir)
    total: int | None = None
    with contextlib.suppress(UserError):
        options = ManifestOptions.from_record(first.get("manifest_options"))
        total = sum(1 for _ in read_manifest(Path(first["manifest"]), options))
    for line in status(run_dir, total).lines():
        print(line)
    return 0


def doctor_command(config_path: Path | None, simulate: str | None) -> int:
    """Check credentials, base URL, clock, quota and templates; print findings; 0 or 2."""
    from orchestrator.doctor import credential_finding, diagnose

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
            async with _target(config, simulate) as effective:
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
        return Window.parse(args.until, option="--until")
    return None


def _first_run_record(run_dir: Path) -> dict[str, Any]:
    ledger = run_dir / LEDGER_NAME
    if not ledger.exists():
        raise RunDirError(f"{run_dir} holds no ledger ({LEDGER_NAME}); is it a run directory?")
    state = replay(ledger)
    if not state.runs:
        raise RunDirError(f"{ledger} has no run record; start the batch with `orchestrator run`")
    return state.runs[0]


def _apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    limits = config.limits
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise UserError("--concurrency must be at least 1")
        limits = limits.model_copy(update={"max_rows_in_flight": args.concurrency})
    run = config.run
    if args.rerender_ambiguous:
        run = run.model_copy(update={"rerender_ambiguous": True})
    webhook = config.webhook
    if args.webhook:
        webhook = webhook.model_copy(update={"enabled": True})
    return config.model_copy(update={"limits": limits, "run": run, "webhook": webhook})


async def _run(
    spec: RunSpec, config: Config, credentials: Credentials, simulate: str | None, verbose: bool
) -> RunSummary:
    secrets = credentials.secrets()
    try:
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        log = JsonlLogSink(spec.run_dir / LOG_NAME, secrets)
    except OSError as exc:
        raise RunDirError(
            f"{spec.run_dir}: cannot use it as the run directory ({exc.strerror}); "
            "choose a folder you can write with --out"
        ) from exc
    display = console_sink(secrets=secrets, verbose=verbose)
    sink = FanoutSink(log, display)
    try:
        async with _target(config, simulate) as effective:
            return await execute(spec, effective, credentials, sink=sink)
    finally:
        display.close()
        log.close()


@contextlib.asynccontextmanager
async def _target(config: Config, simulate: str | None) -> AsyncIterator[Config]:
    """The real API, or with ``--simulate`` the embedded simulator on a free loopback port."""
    if simulate is None:
        yield config
        return
    from orchestrator.simulator import running_simulator

    settings = SimSettings.for_profile(simulate)
    async with running_simulator(settings, host="127.0.0.1", port=0) as sim:
        yield simulated_config(config, sim.base_url, settings)


def simulated_config(config: Config, base_url: str, settings: SimSettings) -> Config:
    """Point at the simulator, and fit polling and limits to its profile, as a user would fit
    them to their account: poll about four times per nominal job duration, run at the simulated
    account's request limit, and keep as many renders in flight as it allows."""
    preview_s = settings.scaled_s(settings.preview_s)
    render_s = settings.scaled_s(settings.render_s)
    poll = config.poll.model_copy(
        update={
            "preview_interval_s": max(0.005, preview_s / 4),
            "render_interval_s": max(0.005, render_s / 4),
            "preview_deadline_s": max(30.0, preview_s * 50),
            "render_deadline_s": max(60.0, render_s * 50),
            "webhook_fallback_interval_s": max(0.05, (preview_s + render_s) * 3),
        }
    )
    api = config.api.model_copy(update={"base_url": base_url})
    limits_update: dict[str, Any] = {}
    # The simulated account's limit, or (unlimited) a rate well above what a run needs.
    limits_update["max_requests_per_s"] = settings.rate_limit_rps or UNLIMITED_RPS
    if settings.max_concurrent_renders:
        # The account's cap plus a short queue at Pictory, so a freed slot never waits for us.
        limits_update["max_renders_in_flight"] = settings.max_concurrent_renders + RENDER_QUEUE
    limits = config.limits.model_copy(update=limits_update)
    return config.model_copy(update={"api": api, "poll": poll, "limits": limits})


def _print_summary(summary: RunSummary) -> None:
    counts = summary.counts
    parts = [f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "ambiguous", "pending")]
    print(
        f"{sum(counts.values())} rows: "
        + ", ".join(parts)
        + f" ({summary.skipped_done} already done before this run) in {summary.elapsed_s:.1f} s, "
        f"{summary.requests} API requests",
        file=sys.stderr,
    )
    if summary.results_path is not None:
        print(f"results: {summary.results_path}", file=sys.stderr)
    if counts.get("ambiguous"):
        print(
            "ambiguous rows may or may not have rendered; see README 'Delivery contract' "
            "(--rerender-ambiguous renders them again)",
            file=sys.stderr,
        )
