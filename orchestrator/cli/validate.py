"""``orchestrator validate``: a manifest's problems (and, beside a run directory, the rows whose
values changed and the names a video there already holds), then its estimate and the account's
quota. Returns the exit code: 0, or 2 with a problem."""

from __future__ import annotations

import sys
from pathlib import Path

from orchestrator.config import Credentials, load_config, load_credentials
from orchestrator.errors import ConfigError, ExitCode
from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions
from orchestrator.input.rows import TemplateCache, iter_row_jobs, manifest_rows
from orchestrator.input.validate import validate_manifest
from orchestrator.ledger.file import LEDGER_NAME, read_ledger
from orchestrator.run import taken_names
from orchestrator.run.pool import VIDEOS_DIR


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
