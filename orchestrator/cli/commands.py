"""What each CLI command does, given parsed arguments. Kept apart so ``cli`` stays a parser:
here ``run``, ``resume``, ``approve``, ``adopt`` and ``doctor``; ``validate`` and ``report`` in
their own modules (``cli.validate``, ``cli.report``).

Each function returns the process exit code; user mistakes are raised as ``UserError`` and turned
into one line and exit 2 by ``cli.main``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import anyio

from orchestrator.api import simulated
from orchestrator.cli.doctor import Finding
from orchestrator.cli.run_dir import adopt_needed, run_command_line
from orchestrator.clock import RealClock
from orchestrator.config import Config, Credentials, load_config, load_credentials
from orchestrator.errors import ConfigError, ExitCode
from orchestrator.input.row import ManifestOptions
from orchestrator.ledger.records import BatchChoices
from orchestrator.report.console import console_sink
from orchestrator.run.batch import Batch
from orchestrator.run.end import print_summary
from orchestrator.run.options import RunOptions
from orchestrator.run.spec import RunSpec


def run_command(
    args: argparse.Namespace,
    *,
    manifest: Path,
    template: Path | None,
    run_dir: Path,
    resuming: bool = False,
) -> int:
    """``run`` (and, ``resuming``, ``resume`` and ``approve``: ``run_dir``'s recorded batch,
    against what it last ran against, ``run.target``; ``manifest`` and ``template`` unused):
    the library's ``Batch``, run with a console."""
    if not resuming:
        adopt_needed(args, run_dir, manifest)
    options = options_from_args(args)
    warnings: list[str] = []
    try:
        if resuming:
            batch = Batch.resume(
                run_dir,
                simulate=args.simulate,
                config=args.config,
                options=options,
                approve=getattr(args, "canary_required", False),
                warn=warnings,
            )
        else:
            batch = Batch.from_manifest(
                manifest,
                template=template,
                out=run_dir,
                flow=args.flow,
                simulate=args.simulate,
                config=args.config,
                options=options,
                warn=warnings,
            )
    finally:
        for warning in warnings:
            print(f"orchestrator: warning: {warning}", file=sys.stderr)
    return run_batch(batch, args.verbose)


def run_spec(
    spec: RunSpec, config: Config, credentials: Credentials, simulate: str | None, verbose: bool
) -> int:
    """Execute ``spec`` (a worker's, on a shared ledger) as ``run_batch`` does."""
    return run_batch(Batch(spec, config, credentials, simulate=simulate), verbose)


def run_batch(batch: Batch, verbose: bool) -> int:
    """Run ``batch`` with a console on stderr, print the summary; the exit code."""
    display = console_sink(secrets=batch.credentials.secrets(), verbose=verbose, clock=RealClock())
    try:
        summary = batch.run_sync(sink=display)
    finally:
        display.close()
    print_summary(summary)
    return summary.exit_code


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The library's ``RunOptions`` from the parsed arguments of ``run``, ``resume``,
    ``approve``, ``worker``, ``submit``, ``validate`` or ``adopt`` (each has some of them)."""
    given: dict[str, Any] = {}
    for f in fields(RunOptions):
        name = "allow_path" if f.name == "allow_paths" else f.name
        value = getattr(args, name, None)
        if value is not None:
            given[f.name] = tuple(value) if f.name == "allow_paths" else value
    return RunOptions(**given)


def batch_choices(args: argparse.Namespace, config: Config) -> BatchChoices:
    """The batch-wide choices given on the command line (``RunOptions.choices``)."""
    return options_from_args(args).choices(config)


def resume_command(args: argparse.Namespace) -> int:
    """``resume``: the batch recorded in ``RUN_DIR`` (``Batch.resume``) goes on."""
    run_dir: Path = args.run_dir
    return run_command(args, manifest=Path(""), template=None, run_dir=run_dir, resuming=True)


def approve_command(args: argparse.Namespace) -> int:
    """Record the approval of the canary in ``RUN_DIR`` and render the rest (a resume)."""
    args.approve = True
    args.canary_required = True
    return resume_command(args)


def manifest_options(
    args: argparse.Namespace, *, manifest: Path | None = None, run_dir: Path | None = None
) -> ManifestOptions:
    """``--sheet``, ``--delimiter``, ``--encoding``, ``--strict-headers``, ``--strict-columns``,
    ``--results-dialect``, ``--allow-path``, ``--max-rows`` (else ``[input] max_rows`` of
    ``--config``); on resume, the ones the first run recorded, each overridden when given again
    (``RunOptions.manifest_options``)."""
    return options_from_args(args).manifest_options(
        recorded=getattr(args, "recorded_manifest_options", None),
        manifest=manifest,
        run_dir=run_dir,
        config_file=getattr(args, "config", None),
    )


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


def doctor_command(config_path: Path | None, simulate: str | None) -> int:
    """Check credentials, base URL, clock, quota and templates; print findings; 0 or 2."""
    from orchestrator.cli.doctor import command_line_finding, credential_finding, diagnose
    from orchestrator.cli.exposed import running_exposures

    config = load_config(config_path)
    try:
        credentials: Credentials | None = load_credentials(required=simulate is None)
        problem = None
    except ConfigError as exc:
        credentials, problem = None, str(exc)
    target = "the embedded simulator" if simulate else config.api.base_url
    print(f"orchestrator doctor: checking {target} (no billable call is made)")
    findings = [credential_finding(credentials, problem), command_line_finding(running_exposures())]
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


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with the process's options applied (``RunOptions.configured``)."""
    return options_from_args(args).configured(config)
