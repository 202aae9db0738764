"""What each CLI command does, given parsed arguments. Kept apart so ``cli`` stays a parser.

Each function returns the process exit code; user mistakes are raised as ``UserError`` and turned
into one line and exit 2 by ``cli.main``.
"""

from __future__ import annotations

import argparse
import shlex
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
from orchestrator.errors import ConfigError, ExitCode, RunDirError, StorageError
from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions
from orchestrator.input.rows import TemplateCache, iter_row_jobs, manifest_rows
from orchestrator.input.validate import validate_manifest
from orchestrator.ledger.file import LEDGER_NAME, read_ledger
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState
from orchestrator.ledger.records import BatchChoices, RunStarted
from orchestrator.report.console import console_sink
from orchestrator.report.results import write_results
from orchestrator.run import taken_names
from orchestrator.run.batch import Batch
from orchestrator.run.end import print_summary
from orchestrator.run.execute import VIDEOS_DIR, RunSpec
from orchestrator.run.options import RunOptions


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


def validate_command(
    manifest: Path,
    template: Path | None,
    flow: str = "template",
    options: ManifestOptions = DEFAULT_OPTIONS,
    *,
    run_dir: Path | None = None,
    config_file: Path | None = None,
) -> int:
    report = validate_manifest(manifest, template, flow, options)
    if report.ok and run_dir is not None and (run_dir / LEDGER_NAME).exists():
        for line in changed_rows(run_dir, manifest, template, flow, options):
            print(f"warning: {line}")
    taken, taken_count = (  # what `run` would refuse: a new row's name on a video there
        taken_names.check_run_dir(
            run_dir,
            run_dir / VIDEOS_DIR,
            manifest_rows(manifest, template, flow, options),
            options.name_pattern,
        )
        if report.ok and run_dir is not None
        else ([], 0)
    )
    for problem in report.problems:
        print(problem)
    for line in taken:  # a new row that would overwrite a video in RUN_DIR/videos
        print(line)
    for warning in getattr(report, "warnings", []):
        print(f"warning: {warning}")
    for note in report.notes:
        print(f"note: {note}")
    if report.problem_count > len(report.problems):
        print(f"… and {report.problem_count - len(report.problems)} more problems")
    if taken_count > len(taken):
        print(f"… and {taken_count - len(taken)} more problems")
    name = report.read_as or manifest
    if report.ok and not taken_count:
        for line in cost_lines(manifest, template, flow, options, run_dir, config_file):
            print(line)
        print(f"{name}: {report.rows} rows, no problems")
        return ExitCode.OK
    problems = report.problem_count + taken_count
    print(f"{name}: {report.rows} rows, {problems} problem(s)", file=sys.stderr)
    return ExitCode.USAGE


def cost_lines(
    manifest: Path,
    template: Path | None,
    flow: str,
    options: ManifestOptions,
    run_dir: Path | None,
    config_file: Path | None,
) -> list[str]:
    """The estimate of a valid manifest, and the account's quota when the environment holds
    credentials (``run.cost.validate_lines``; docs/cost.md)."""
    from orchestrator.run.cost import validate_lines

    config = load_config(config_file)
    try:
        credentials: Credentials | None = load_credentials(required=True)
    except ConfigError:
        credentials = None
    rows = manifest_rows(manifest, template, flow, options)
    if run_dir is None or not (run_dir / LEDGER_NAME).exists():
        return validate_lines(rows, config, credentials)
    state = read_ledger(run_dir)
    try:
        return validate_lines(rows, config, credentials, state.rows.values())
    finally:
        state.rows.close()


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
    run_dir: Path,
    out_dir: Path | None = None,
    results_dialect: str | None = None,
    links_valid_days: float | None = None,
) -> int:
    """``results.csv`` and ``report.html`` of a run directory, from its ledger: into the run
    directory, or into ``out_dir`` (a read-only run directory, a copy to share);
    ``results_dialect``: ``--results-dialect`` (default: as the batch records it);
    ``links_valid_days``: ``--links-valid-days``."""
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
            return write_batch_report(
                run_dir,
                snapshot,
                batch_ref,
                results_dialect=results_dialect,
                links_valid_days=links_valid_days,
            )
        return write_batch_report(
            out_dir,
            snapshot,
            batch_ref,
            videos_in=run_dir,
            results_dialect=results_dialect,
            links_valid_days=links_valid_days,
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
    links_valid_days: float | None = None,
) -> int:
    """Write ``OUT_DIR/results.csv`` and ``OUT_DIR/report.html`` (with its posters) from a
    batch's read side, print where, and return 0 when every row is done, else 1.
    ``batch_ref``: how the page's commands name the batch, ready for the shell.
    ``videos_in``: the run directory whose videos the page links, when it is not ``out_dir``.
    ``results_dialect``: ``--results-dialect`` (default: as the batch records it).
    ``links_valid_days``: ``--links-valid-days`` (``report.links.short_links``)."""
    from orchestrator.clock import RealClock
    from orchestrator.report.links import links_warning
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
        warning = links_warning(snapshot.state, links_valid_days, RealClock().wall_s())
        info = write_report(
            out_dir,
            snapshot.rows,
            snapshot.state,
            notice=notice,
            videos_in=videos_in,
            warning=warning,
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
    if info.usage.renders:
        print(info.usage.line())
    if warning is not None:
        print(warning)
    return ExitCode.OK if set(counts) <= {"done"} else ExitCode.NOT_ALL_DONE


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


def _run_record(state: LedgerState) -> RunStarted:
    first = state.run_record
    assert first is not None  # read_ledger refuses a ledger without one
    return first


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with the process's options applied (``RunOptions.configured``)."""
    return options_from_args(args).configured(config)
