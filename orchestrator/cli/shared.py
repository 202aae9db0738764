"""The shared ledger's commands: ``submit``, ``worker``, and ``status``/``report`` with
``--ledger URL``. Like ``commands``: parsed arguments in, exit code out."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio

from orchestrator.api.simulated import target
from orchestrator.cli.commands import apply_overrides, manifest_options
from orchestrator.config import Config, ledger_password, load_config, load_credentials
from orchestrator.errors import ConfigError, RunDirError, UserError, ValidationFailed
from orchestrator.events import LOG_NAME, FanoutSink, JsonlLogSink
from orchestrator.input.validate import validate_manifest
from orchestrator.ledger.pg.batches import BatchView, batch_rows, batch_view, submit_batch
from orchestrator.ledger.pg.schema import connect, database_lost, safe_url
from orchestrator.ledger.records import RunStarted
from orchestrator.report.console import console_sink
from orchestrator.report.results import write_listed_results
from orchestrator.run.end import say
from orchestrator.run.execute import MAX_PROBLEMS_SHOWN, VIDEOS_DIR
from orchestrator.run.worker import WorkerSpec, WorkerSummary, execute_worker

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")


def _config(args: argparse.Namespace) -> tuple[Config, str]:
    warnings: list[str] = []
    config = load_config(getattr(args, "config", None), warn=warnings)
    for warning in warnings:
        print(f"orchestrator: warning: {warning}", file=sys.stderr)
    url = args.ledger or config.ledger.url
    if not url:
        raise ConfigError("no shared ledger: pass --ledger postgresql://... or set [ledger] url")
    return config, url


@asynccontextmanager
async def _pool(config: Config, url: str) -> AsyncIterator[asyncpg.Pool]:
    password = ledger_password()
    pool = await connect(
        url,
        password.get_secret_value() if password else None,
        max_connections=config.ledger.max_connections,
    )
    try:
        yield pool
    finally:
        await pool.close()


def _with_pool(config: Config, url: str, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def main() -> T:
        async with _pool(config, url) as pool:
            return await work(pool)

    return anyio.run(main)


def submit_command(args: argparse.Namespace) -> int:
    """Validate the manifest, then create the batch (rows, templates, run record) in one go."""
    config, url = _config(args)
    options = manifest_options(args)
    manifest: Path = args.manifest
    template: Path | None = args.template
    report = validate_manifest(manifest, template, args.flow, options)
    if not report.ok:
        raise ValidationFailed(
            [str(p) for p in report.problems[:MAX_PROBLEMS_SHOWN]], report.problem_count
        )
    record = RunStarted(
        manifest=str(manifest.resolve()),
        manifest_sha256=report.manifest_sha256,
        template=str(template.resolve()) if template else None,
        flow=args.flow,
        manifest_options=options.recorded(),
        config=config.public_dict(),
    )
    name = args.name or manifest.stem
    done = _with_pool(
        config,
        url,
        lambda pool: submit_batch(pool, name, record, manifest, template, args.flow, options),
    )
    note = f" ({done.duplicates} repeated row(s) kept once)" if done.duplicates else ""
    say(
        f"batch {done.name!r}: {done.rows} rows{note} in {safe_url(url)}\n"
        f"next: orchestrator worker --ledger {safe_url(url)} --batch {done.name} --out DIR "
        "(on as many machines as you like)"
    )
    return 0


WORKER_UNSUPPORTED = (
    "retry_failed",
    "rerender_changed",
    "halt_after",
    "until",
    "window",
    "check_quota",
    "canary",
    "approve",
    "notify",
)
"""Run options a worker does not honour yet: refused by name, never silently ignored."""


EXIT_NOT_ALL_DONE = 1
"""A worker that lost its database: its rows are not all done (README "Exit codes")."""


def worker_command(args: argparse.Namespace) -> int:
    for name in WORKER_UNSUPPORTED:
        if getattr(args, name, None):
            option = "--" + name.replace("_", "-")
            raise UserError(f"`orchestrator worker` does not support {option} yet")
    if args.at_window_end != "finish":
        raise UserError("`orchestrator worker` does not support --at-window-end yet")
    config, url = _config(args)
    config = apply_overrides(config, args)
    simulate: str | None = args.simulate
    credentials = load_credentials(required=simulate is None)
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{out}: cannot write there ({exc.strerror}); choose --out") from exc
    secrets = credentials.secrets()
    log = JsonlLogSink(out / LOG_NAME, secrets)
    display = console_sink(secrets=secrets, verbose=args.verbose)
    sink = FanoutSink(log, display)
    spec = WorkerSpec(out=out, batch=args.batch, max_renders=args.max_renders)

    async def main() -> int:
        async with _pool(config, url) as pool, target(config, simulate) as effective:
            summary = await execute_worker(pool, url, spec, effective, credentials, sink=sink)
        display.close()
        _print_worker_summary(summary, url)
        return summary.exit_code

    try:
        return anyio.run(main)
    except BaseException as exc:
        lost = database_lost(exc)
        if lost is None:
            raise
        print(
            f"orchestrator: error: lost the shared ledger at {safe_url(url)} ({lost}); this "
            "worker stopped. Its rows go to other workers once their leases expire; start the "
            "worker again when the database is back",
            file=sys.stderr,
        )
        return EXIT_NOT_ALL_DONE
    finally:
        display.close()
        log.close()


def _print_worker_summary(summary: WorkerSummary, url: str) -> None:
    """This worker's share and the batch's state on stdout, and what to run next."""
    counts = summary.counts
    total = sum(counts.values())
    parts = [f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "ambiguous", "pending")]
    where = safe_url(url)
    lines = [
        f"worker {summary.worker_id}: {summary.started} row(s) worked on "
        f"({summary.taken_over} taken over from a stopped worker) in {summary.elapsed_s:.1f} s, "
        f"{summary.requests} API requests; videos in {summary.run_dir / VIDEOS_DIR}",
        f"batch: {total} rows: " + ", ".join(parts),
    ]
    if summary.interrupted:
        lines.append("stopped: interrupted; its rows go to the next worker that claims them")
    elif summary.stop_reason:
        lines.append(f"stopped: {summary.stop_reason}")
    if counts.get("pending"):
        lines.append(f"next: orchestrator status --ledger {where} (other workers hold the rest)")
    elif counts.get("ambiguous"):
        lines.append(
            f"next: orchestrator worker --ledger {where} --rerender-ambiguous "
            "(may bill twice; see README 'Delivery contract')"
        )
    else:
        lines.append(f"next: orchestrator report DIR --ledger {where} (writes DIR/results.csv)")
    say("\n".join(lines))


def ledger_status_command(args: argparse.Namespace) -> int:
    """A shared batch's rows by state and its live workers; with ``--watch S``, again every S
    seconds while rows are pending; ``--json``: one object per report."""
    config, url = _config(args)

    async def main() -> None:
        async with _pool(config, url) as pool:
            while True:
                view = await batch_view(pool, args.batch)
                if args.json:
                    say(json.dumps(_view_dict(view)))
                else:
                    say("\n".join(_view_lines(view, url)))
                if args.watch is None or not view.counts.get("pending"):
                    return
                await anyio.sleep(args.watch)

    anyio.run(main)
    return 0


def _view_dict(view: BatchView) -> dict[str, object]:
    return {
        "batch": view.name,
        "rows": dict(view.counts),
        "workers": view.workers,
        "rows_of_stopped_workers": view.expired,
        "rows_taken_over": view.taken_over,
    }


def _view_lines(view: BatchView, url: str) -> list[str]:
    total = sum(view.counts.values())
    parts = [f"{view.counts.get(s, 0)} {s}" for s in ("done", "failed", "ambiguous", "pending")]
    lines = [f"batch {view.name!r} in {safe_url(url)}: {total} rows: " + ", ".join(parts)]
    for worker, held in sorted(view.workers.items()):
        lines.append(f"worker {worker}: {held} row(s) leased")
    if view.expired:
        lines.append(f"{view.expired} row(s) of a stopped worker, taken over by the next claim")
    if view.taken_over:
        lines.append(f"{view.taken_over} row(s) were taken over from a stopped worker")
    return lines


def ledger_report_command(args: argparse.Namespace) -> int:
    config, url = _config(args)
    out: Path = args.run_dir or Path(".")

    async def work(pool: asyncpg.Pool) -> tuple[Path, int, int]:
        view = await batch_view(pool, args.batch)
        rows, state = await batch_rows(pool, view.batch_id)
        try:
            path = await anyio.to_thread.run_sync(write_listed_results, out, rows, state)
        finally:
            state.rows.close()
        return path, view.counts.get("done", 0), sum(view.counts.values())

    path, done, total = _with_pool(config, url, work)
    say(f"{path}: {done} of {total} rows done")
    return 0 if done == total else 1
