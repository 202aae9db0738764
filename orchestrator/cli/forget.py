"""``orchestrator forget ID... RUN_DIR | --ledger URL``: erase customers' values, keep their rows
done (``run.forget``). Parse, call, print; then write ``results.csv`` and the report again."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ApiError, ConfigError, ExitCode, UserError

if TYPE_CHECKING:  # loaded by the command, not by every start-up (tests/test_startup_imports.py)
    from orchestrator.config import Config
    from orchestrator.run.forget import Selection
    from orchestrator.run.forget_pictory import PictoryAccess
    from orchestrator.run.traces import Erased

DESCRIPTION = (
    "Erase customers' values (a deletion request) from a batch while keeping that their rows "
    "are done, so no resume or rerun renders them again. Rows are named by identity (the "
    "manifest's id, or results.csv's id column), --line or --where. Removed: the rows' jobs "
    "at Pictory (DELETE /v1/jobs/{id}/clean with the credentials of the environment, as run "
    "reads them; without any, or with --keep-at-pictory, they are left and named, with the "
    "command that cleans them later), the delivered objects, the video and the files beside "
    "it, poster and GIF, the row's values in the ledger (records rewritten atomically, each "
    "value replaced by [forgotten DATE]) and in log.jsonl; results.csv and the report are "
    "written again. Refused while a run holds the run directory (or a live worker holds the "
    "row). The manifest is yours: forget never edits it."
)
EPILOG = """exit codes: 0 erased (or already erased: each step is checked again); 1 a delivered
object could not be deleted (nothing else was erased yet), or a row's job could not be cleaned
at Pictory (nothing of that row was erased; the others were), or the shared ledger stayed
away for [ledger] max_outage_s (a cut connection is tried again at once): run the same command
again; 2 bad usage, a row not in the batch, or a run holds the directory (nothing erased)"""


def add_parser(sub: Any) -> None:
    forget = sub.add_parser(
        "forget",
        help="erase customers' values from a batch; their rows stay done (a deletion request)",
        usage="orchestrator forget [options] ID... RUN_DIR | --ledger URL --batch NAME ID...",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    forget.add_argument(
        "targets",
        nargs="*",
        metavar="ID",
        help="the rows' identities, then the run directory (with --ledger: identities only)",
    )
    forget.add_argument(
        "--line",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also the row on line N of the manifest (repeatable)",
    )
    forget.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="also every row whose COLUMN holds VALUE, e.g. --where email=ann@example.com "
        "(repeatable)",
    )
    forget.add_argument(
        "--dry-run",
        action="store_true",
        help="list the rows, jobs at Pictory, objects, files and records it would erase; "
        "change nothing",
    )
    forget.add_argument(
        "--keep-at-pictory",
        action="store_true",
        help="leave the rows' jobs at Pictory (their video, preview and share links) until "
        "Pictory's retention ends; they are named, with the command that cleans them later",
    )
    forget.add_argument(
        "--ledger",
        metavar="URL",
        help="a shared ledger: postgresql://USER@HOST:PORT/DB (or [ledger] url); the password "
        "comes from PGPASSWORD",
    )
    forget.add_argument("--batch", metavar="NAME", help="the shared batch (needed with --ledger)")
    forget.add_argument(
        "--out",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="with --ledger: a worker's --out whose videos, posters and log to erase too, and "
        "where `report --ledger` wrote results.csv (repeatable)",
    )
    forget.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML settings ([api] base_url, [retry]; [deliver] endpoint_url, region, "
        "profile; [ledger] url)",
    )
    forget.set_defaults(func=forget_command)


def forget_command(args: argparse.Namespace) -> int:
    from orchestrator.config import load_config
    from orchestrator.run.forget import Selection, parse_where

    warnings: list[str] = []
    config = load_config(args.config, warn=warnings)
    targets: list[str] = list(args.targets)
    url = args.ledger or config.ledger.url
    run_dir: Path | None = None
    if url is None:
        if not targets:
            raise UserError("`orchestrator forget` needs RUN_DIR (last), or --ledger URL")
        run_dir = Path(targets.pop())
        config = _run_dir_config(run_dir, args.config, config, warnings)
    for warning in warnings:
        print(f"orchestrator: warning: {warning}", file=sys.stderr)
    selection = Selection(
        ids=tuple(targets),
        lines=tuple(args.line),
        where=tuple(parse_where(w) for w in args.where),
    )
    if not selection:
        raise UserError(
            "forget: name the rows: their ids (before RUN_DIR), --line N or --where COLUMN=VALUE"
        )
    again = _again_command(args, run_dir, url)
    try:
        if run_dir is not None:
            pictory = _access(config, args.keep_at_pictory, _simulated(run_dir))
            return _in_run_dir(run_dir, selection, config, args.dry_run, pictory, again)
        pictory = _access(config, args.keep_at_pictory, simulated=False)
        return _in_shared(
            str(url), args.batch, selection, config, args.out, args.dry_run, pictory, again
        )
    except ApiError as exc:  # a delivered object the store would not delete
        print(
            f"orchestrator: error: forget: {exc}; the ledger and the other files are untouched: "
            "run the same command again",
            file=sys.stderr,
        )
        return ExitCode.NOT_ALL_DONE


def _access(config: Config, keep: bool, simulated: bool) -> PictoryAccess:
    from orchestrator.run.forget_pictory import pictory_access

    return pictory_access(
        config, simulated=simulated, keep=keep, say=lambda line: print(line, file=sys.stderr)
    )


def _simulated(run_dir: Path) -> bool:
    """Whether the batch last ran against the embedded simulator (its jobs died with it)."""
    from orchestrator.run.target import recorded_target

    target = recorded_target(run_dir) if (run_dir / "ledger.jsonl").exists() else None
    return target is not None and target.simulate is not None


def _again_command(args: argparse.Namespace, run_dir: Path | None, url: object) -> str:
    """The command that cleans the jobs left at Pictory later (the rows, named by id)."""
    from orchestrator.ledger.pg.schema import safe_url

    parts = ["orchestrator", "forget", "{rows}"]
    if run_dir is not None:
        parts.append(shlex.quote(str(run_dir)))
    else:
        parts += ["--ledger", shlex.quote(safe_url(str(url))), "--batch", str(args.batch)]
    if args.config is not None:
        parts += ["--config", shlex.quote(str(args.config))]
    return " ".join(parts)


def _run_dir_config(
    run_dir: Path, given: Path | None, config: Config, warnings: list[str]
) -> Config:
    """The run directory's config: ``--config``, else the file its batch last ran with (for
    ``[deliver]``'s endpoint, region and profile), as ``resume`` reads it."""
    from orchestrator.run.target import load_target_config, recorded_target

    target = recorded_target(run_dir) if (run_dir / "ledger.jsonl").exists() else None
    if target is None or (given is None and target.config is None):
        return config
    warnings.clear()
    return load_target_config(target, given, warn=warnings)


def _in_run_dir(
    run_dir: Path,
    selection: Selection,
    config: Config,
    dry_run: bool,
    pictory: PictoryAccess,
    again: str,
) -> int:
    import anyio

    from orchestrator.run.forget import forget_in_run_dir

    erased = anyio.run(
        lambda: forget_in_run_dir(run_dir, selection, config, dry_run=dry_run, pictory=pictory)
    )
    _say(erased, str(run_dir), again)
    if not dry_run and (erased.rows or erased.already):
        _report_again(run_dir)
    return _exit(erased)


def _report_again(run_dir: Path) -> None:
    """``results.csv`` and the report from the rewritten ledger (the rows show the marker), when
    the run directory had them; removed when they cannot be written (the manifest is gone)."""
    from orchestrator.cli.report import report_command

    written = [run_dir / n for n in ("results.csv", "report.html", "report-data.js")]
    if not any(p.exists() for p in written):
        return
    try:
        report_command(run_dir)
    except UserError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        print(
            f"forget: removed results.csv and the report ({exc}); `orchestrator report "
            f"{run_dir}` writes them again once the manifest is back"
        )
    stale = run_dir / "results.xlsx"
    if stale.exists() and stale.stat().st_mtime < (run_dir / "results.csv").stat().st_mtime:
        stale.unlink()
        print(f"forget: removed {stale} (written before; `orchestrator report` writes it again)")


def _in_shared(
    url: str,
    batch: str | None,
    selection: Selection,
    config: Config,
    outs: list[Path],
    dry_run: bool,
    pictory: PictoryAccess,
    again: str,
) -> int:
    import anyio

    from orchestrator.cli.shared import read_side
    from orchestrator.ledger.pg.pool import open_pool
    from orchestrator.ledger.pg.schema import database_lost, safe_url
    from orchestrator.run.forget import forget_in_shared

    if batch is None:
        raise ConfigError(
            "forget --ledger: name the batch with --batch NAME (`orchestrator status --ledger "
            "URL` shows it)"
        )

    where = safe_url(url)

    async def main() -> Erased:
        async with open_pool(url, max_connections=config.ledger.max_connections) as pool:
            # A connection cut mid-way: the forget again, as a user would run it (rows
            # forgotten by then are looked for again, jobs recorded cleaned are not asked again).
            db = read_side(config, pool, url)
            erased = await db.run_pooled(
                lambda _: forget_in_shared(
                    pool, where, batch, selection, config, outs, dry_run=dry_run, pictory=pictory
                )
            )
            for out in [] if dry_run else outs:
                if (out / "results.csv").exists() or (out / "report.html").exists():

                    async def report_again(_: bool, out: Path = out) -> None:
                        await _shared_report_again(pool, where, batch, out)

                    await db.run_pooled(report_again)
            return erased

    try:
        erased = anyio.run(main)
    except Exception as exc:
        lost = database_lost(exc)
        if lost is None:
            raise
        print(
            f"orchestrator: error: forget: lost the shared ledger at {where} ({lost}); "
            "what was erased stays erased: run the same command again when it is back",
            file=sys.stderr,
        )
        return ExitCode.NOT_ALL_DONE
    _say(erased, f"{where} (batch {batch})", again)
    if not outs and not dry_run and (erased.rows or erased.already):
        print(
            "forget: a results.csv or report `orchestrator report --ledger` wrote earlier still "
            "holds the values: write it again (or give --out DIR)"
        )
    return _exit(erased)


def _exit(erased: Erased) -> int:
    """1 when a row was held back (a clean at Pictory failed), else 0."""
    for row, why in erased.held.items():
        print(
            f"orchestrator: error: forget: row {row}: could not clean it at Pictory ({why}); "
            "nothing of this row was erased: run the same command again (a job still rendering "
            "can be cleaned once it has finished; --keep-at-pictory erases the row here and "
            "leaves its jobs there)",
            file=sys.stderr,
        )
    return ExitCode.NOT_ALL_DONE if erased.held else ExitCode.OK


async def _shared_report_again(pool: Any, where: str, batch: str, out: Path) -> None:
    import anyio

    from orchestrator.cli.report import write_batch_report
    from orchestrator.ledger.pg.batches import batch_snapshot, find_batch

    async with pool.acquire() as conn:
        batch_id = await find_batch(conn, batch, where)
    snapshot = await batch_snapshot(pool, batch_id)
    try:
        ref = f"--ledger {where} --batch {batch}"
        await anyio.to_thread.run_sync(lambda: write_batch_report(out, snapshot, ref))
    finally:
        snapshot.close()


def _say(erased: Erased, where: str, again: str) -> None:
    if erased.dry_run:
        verbs = ("would forget", "would delete", "would remove", "would be rewritten")
    else:
        verbs = ("forgot", "deleted", "removed", "rewritten without the values")
    for row in erased.rows:
        print(f"{verbs[0]} row {row} in {where}")
    for row in erased.already:
        print(f"row {row} was forgotten before; its traces were looked for again")
    _say_pictory(erased, again)
    for obj in erased.objects:
        print(f"  {verbs[1]} delivered object {obj}")
    for name in erased.files:
        print(f"  {verbs[2]} {name}")
    print(f"  ledger: {erased.records} record(s) {verbs[3]}")
    if erased.log_lines:
        print(f"  log.jsonl: {erased.log_lines} line(s) rewritten without the values")
    for note in erased.notes:
        print(f"  note: {note}")
    if erased.dry_run:
        print("  nothing was changed (--dry-run)")
        return
    if erased.rows or erased.already:
        print(
            "  the manifest still holds these rows: remove them there too (forget never edits "
            "it; a rerun on it renders none of them)"
        )


def _say_pictory(erased: Erased, again: str) -> None:
    verb = "would clean" if erased.dry_run else "cleaned"
    for row, job in erased.cleaned:
        print(f"  {verb} job {job} of row {row} at Pictory (its video, preview and links)")
    for row, job in erased.gone:
        print(
            f"  job {job} of row {row}: Pictory no longer knew it (its retention ended, or "
            "another account made it: then run this again with that account's credentials)"
        )
    if erased.left:
        jobs = ", ".join(f"{job} (row {row})" for row, js in erased.left.items() for job in js)
        rows = " ".join(shlex.quote(row) for row in erased.left)
        print(f"  left at Pictory ({'; '.join(erased.left_why)}): job(s) {jobs}")
        print(
            "  to clean them there, with the batch's Pictory credentials set: "
            + again.replace("{rows}", rows)
        )
