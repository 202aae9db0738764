"""The shared ledger's commands: ``submit``, ``worker``, and ``approve``/``status``/``report``
with ``--ledger URL``. Like ``commands``: parsed arguments in, exit code out. A worker is the
same ``execute`` as a local run, on the shared ledger."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio

from orchestrator.cli.commands import apply_overrides, batch_choices, manifest_options, run_spec
from orchestrator.cli.report import write_batch_report
from orchestrator.config import Config, load_config, load_credentials
from orchestrator.errors import ConfigError, ExitCode, UserError, ValidationFailed
from orchestrator.input.rows import manifest_rows
from orchestrator.input.validate import validate_manifest
from orchestrator.ledger.pg.accounts import Chosen, account_name, binding, choose_batch, listed
from orchestrator.ledger.pg.batches import BatchView, batch_view, find_batch, submit_batch
from orchestrator.ledger.pg.pool import Db, open_pool
from orchestrator.ledger.pg.schema import database_lost, safe_url, schema_change
from orchestrator.ledger.records import CanaryChosen, Event, RunStarted
from orchestrator.report.status import status as status_of
from orchestrator.run.canary import select_rows
from orchestrator.run.end import say
from orchestrator.run.execute import MAX_PROBLEMS_SHOWN
from orchestrator.run.spec import RunSpec

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")

EXIT_NOT_ALL_DONE = ExitCode.NOT_ALL_DONE
"""A worker that lost its database: its rows are not all done (README "Exit codes")."""


def _config(args: argparse.Namespace) -> tuple[Config, str]:
    warnings: list[str] = []
    config = load_config(getattr(args, "config", None), warn=warnings)
    for warning in warnings:
        print(f"orchestrator: warning: {warning}", file=sys.stderr)
    url = args.ledger or config.ledger.url
    if not url:
        raise ConfigError("no shared ledger: pass --ledger postgresql://... or set [ledger] url")
    return config, url


def _with_pool(config: Config, url: str, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_pool(url, max_connections=config.ledger.max_connections) as pool:
            return await work(pool)

    return anyio.run(main)


def read_side(config: Config, pool: asyncpg.Pool, url: str) -> Db:
    """A command's statements, tried again while the database is away (a connection cut, a
    restart: ``pg.pool``), as a worker's are: ``report --ledger`` read (or ``forget --ledger``
    run) while the database blinked must not end in a traceback."""
    from orchestrator.clock import RealClock

    return Db(pool, RealClock(), max_outage_s=config.ledger.max_outage_s, where=safe_url(url))


def submit_command(args: argparse.Namespace) -> int:
    """Validate the manifest, then create the batch (rows, templates, run record, its batch-wide
    choices and canary) in one go."""
    config, url = _config(args)
    manifest: Path = args.manifest
    options = manifest_options(args, manifest=manifest)
    template: Path | None = args.template
    choices = batch_choices(args, config)
    accounts = binding(args.account)
    if args.notify and args.notify.startswith(("http://", "https://")):
        raise UserError(
            "--notify URL: a shared batch records where its notification URL comes from, never "
            "the URL itself (it is a secret): pass --notify env:NAME (each worker reads the "
            "variable NAME) or --notify config (each worker's [notify] url)"
        )
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
    events: list[Event] = [choices]
    if choices.canary is not None:
        rows = manifest_rows(manifest, template, args.flow, options)
        events.append(CanaryChosen(size=choices.canary, rows=select_rows(rows, choices.canary)))
    name = args.name or manifest.stem
    now_s = _wall_s()
    done = _with_pool(
        config,
        url,
        lambda pool: submit_batch(
            pool,
            name,
            record,
            manifest,
            template,
            args.flow,
            options,
            now_s=now_s,
            batch_events=events,
            accounts=accounts,
            any_account=args.any_account,
        ),
    )
    note = f" ({done.duplicates} repeated row(s) kept once)" if done.duplicates else ""
    lines = [f"batch {done.name!r}: {done.rows} rows{note} in {safe_url(url)}"]
    if choices.window or choices.until:
        lines.append(f"window: {choices.window or 'until ' + str(choices.until)} "
                     f"({choices.time_zone or 'each worker’s local time'})")  # fmt: skip
    if choices.canary is not None:
        lines.append(f"canary: {choices.canary} row(s) first; the rest waits for approval")
    lines.append(_accounts_line(accounts))
    lines.append(
        f"next: orchestrator worker --ledger {safe_url(url)} --batch {done.name}"
        f"{_account_option(accounts)} --out DIR (on as many machines as you like)"
    )
    say("\n".join(lines))
    return 0


def worker_command(args: argparse.Namespace) -> int:
    """Claim and render rows of a shared batch: ``execute`` on the shared ledger."""
    config, url = _config(args)
    config = apply_overrides(config, args)
    simulate: str | None = args.simulate
    credentials = load_credentials(required=simulate is None)
    account = account_name(args.account) if args.account is not None else config.ledger.account
    config = config.model_copy(
        update={"ledger": config.ledger.model_copy(update={"account": account})}
    )

    async def choose(pool: asyncpg.Pool) -> Chosen:
        async with pool.acquire() as conn:
            return await choose_batch(conn, args.batch, account, safe_url(url))

    chosen = _with_pool(config, url, choose)
    if chosen.passed_over:
        say(_passed_over(chosen, account))
    spec = RunSpec(
        run_dir=args.out,
        ledger_url=url,
        batch=chosen.name,  # named: a batch submitted from now on cannot slip in
        account=args.account,
        choices=replace(batch_choices(args, config), time_zone=None),
        retry_failed=args.retry_failed,
        approve=args.approve,
        canary_required=getattr(args, "canary_required", False),
    )
    try:
        return run_spec(spec, config, credentials, simulate, args.verbose)
    except BaseException as exc:
        changed = schema_change(exc)
        if changed is not None:  # `orchestrator migrate` ran under this worker
            print(f"orchestrator: error: {changed}", file=sys.stderr)
            return EXIT_NOT_ALL_DONE
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


def _passed_over(chosen: Chosen, account: str | None) -> str:
    """The one line a worker says when it leaves other accounts' batches to their workers."""
    this = f"is on account {account!r}" if account is not None else "names no account"
    if len(chosen.passed_over) == 1:
        name, accounts = chosen.passed_over[0]
        batches = f"batch {name!r}, bound to {', '.join(accounts)}"
    else:
        named = [f"{name!r} ({', '.join(accounts)})" for name, accounts in chosen.passed_over]
        batches = f"batches {listed(named)}, bound to other accounts"
    return f"passing over {batches} (this worker {this}): it takes batch {chosen.name!r}"


def _accounts_line(accounts: Sequence[str] | None) -> str:
    """Whose a batch is, as ``submit`` and ``status`` print it."""
    if accounts is None:
        return "accounts: any (workers of every account claim its rows)"
    return (
        f"accounts: {', '.join(accounts)} (only workers given --account with "
        f"{'this name' if len(accounts) == 1 else 'one of these names'} claim its rows)"
    )


def _account_option(accounts: Sequence[str] | None) -> str:
    """``--account NAME`` for a command that works a batch bound to ``accounts``."""
    if accounts is None:
        return ""
    return f" --account {accounts[0] if len(accounts) == 1 else 'NAME'}"


def approve_command(args: argparse.Namespace) -> int:
    """``approve --ledger URL``: record the approval of the shared batch's canary, then work its
    rows as a worker (other workers started from now on render the rest too)."""
    args.approve = True
    args.canary_required = True
    return worker_command(args)


def ledger_status_command(args: argparse.Namespace) -> int:
    """A shared batch's rows by state and its live workers; with ``--watch S``, again every S
    seconds while rows are pending; ``--json``: one object per report (the same keys as a run
    directory's, and the batch's workers)."""
    config, url = _config(args)

    async def main() -> None:
        async with open_pool(url, max_connections=config.ledger.max_connections) as pool:
            db = read_side(config, pool, url)

            async def read(_: bool) -> tuple[BatchView, str]:
                view = await batch_view(pool, args.batch)
                if args.json:
                    return view, json.dumps(await _view_dict(pool, view, url))
                return view, "\n".join([*_view_lines(view, url), *await _consumed(pool, view)])

            while True:
                view, text = await db.run_pooled(read)
                say(text)
                if args.watch is None or not view.counts.get("pending"):
                    return
                await anyio.sleep(args.watch)

    anyio.run(main)
    return 0


async def _view_dict(pool: asyncpg.Pool, view: BatchView, url: str) -> dict[str, object]:
    from orchestrator.ledger.pg.batches import batch_rows

    listed, state = await batch_rows(pool, view.batch_id)
    try:
        report = status_of(None, state, len(listed), live=bool(view.workers))
        common = report.as_dict()
    finally:
        state.rows.close()
    ref = f"--ledger {safe_url(url)} --batch {view.name}{_account_option(view.accounts)}"
    common["next"] = report.next_command(ref)
    return {
        **common,
        "batch": view.name,
        "accounts": list(view.accounts) if view.accounts is not None else None,
        "rows_by_status": dict(view.counts),
        "workers": view.workers,
        "rows_of_stopped_workers": view.expired,
        "rows_taken_over": view.taken_over,
    }


async def _consumed(pool: asyncpg.Pool, view: BatchView) -> list[str]:
    """``consumed: …``: what the batch's finished renders used (docs/cost.md), once any has."""
    from orchestrator.ledger.pg.batches import batch_rows
    from orchestrator.report.results import batch_usage

    _, state = await batch_rows(pool, view.batch_id)
    try:
        usage = batch_usage(state)
    finally:
        state.rows.close()
    return [f"consumed: {usage.line()}"] if usage.renders else []


def _view_lines(view: BatchView, url: str) -> list[str]:
    total = sum(view.counts.values())
    parts = [f"{view.counts.get(s, 0)} {s}" for s in ("done", "failed", "ambiguous", "pending")]
    lines = [f"batch {view.name!r} in {safe_url(url)}: {total} rows: " + ", ".join(parts)]
    lines.append(_accounts_line(view.accounts))
    for worker, held in sorted(view.workers.items()):
        lines.append(f"worker {worker}: {held} row(s) leased")
    if view.expired:
        lines.append(f"{view.expired} row(s) of a stopped worker, taken over by the next claim")
    if view.taken_over:
        lines.append(f"{view.taken_over} row(s) were taken over from a stopped worker")
    return lines


def ledger_report_command(args: argparse.Namespace) -> int:
    """``DIR/results.csv`` and ``DIR/report.html`` of a shared batch (posters from the videos
    under ``DIR``, where workers given ``--out DIR`` wrote them); ``--out OTHER`` writes them
    into OTHER, linking the videos under ``DIR``."""
    config, url = _config(args)
    videos: Path = args.run_dir or Path(".")
    out: Path = args.out or videos
    elsewhere = videos if out.resolve() != videos.resolve() else None

    async def work(pool: asyncpg.Pool) -> int:
        from orchestrator.ledger.pg.batches import batch_snapshot
        from orchestrator.ledger.protocol import BatchSnapshot

        async def read(_: bool) -> tuple[str, BatchSnapshot]:
            async with db.connection() as conn:
                batch_id = await find_batch(conn, args.batch, safe_url(url))
            name = (await batch_view(pool, batch_id=batch_id)).name
            return name, await batch_snapshot(pool, batch_id)

        db = read_side(config, pool, url)
        name, snapshot = await db.run_pooled(read)
        try:
            ref = f"--ledger {safe_url(url)} --batch {name}"
            return await anyio.to_thread.run_sync(
                lambda: write_batch_report(
                    out,
                    snapshot,
                    ref,
                    videos_in=elsewhere,
                    results_dialect=args.results_dialect,
                    links_valid_days=args.links_valid_days,
                )
            )
        finally:
            snapshot.close()

    return _with_pool(config, url, work)


def _wall_s() -> float:
    from orchestrator.clock import RealClock

    return RealClock().wall_s()
