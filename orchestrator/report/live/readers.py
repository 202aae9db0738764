"""Where the live page reads a batch from: the same read side as ``orchestrator status``.

- a run directory: its ledger replayed (``file.read_ledger``, which takes no lock and ignores a
  torn last line of a live writer) and ``status.status`` (liveness from ``run.lock``, the
  request rate from the log's newest ``rate`` event);
- a shared batch: ``pg.batches.batch_view`` (rows by status, live workers and their leases)
  and ``pg.batches.batch_rows`` (the state folded from every worker's events), then
  ``status.status`` as ``status --ledger`` does.

``open_reader`` yields a ``LiveReader``; each ``read`` is one fresh reading.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import anyio

from orchestrator.clock import Clock
from orchestrator.errors import UserError
from orchestrator.input.manifest import read_manifest
from orchestrator.input.row import ManifestOptions
from orchestrator.ledger.file import first_run_record, read_ledger
from orchestrator.ledger.open import LedgerPlace
from orchestrator.report.live.view import PosterShelf, Worker, build_view
from orchestrator.report.status import status


class LiveReader(Protocol):
    """One batch, read afresh at each ``read``."""

    @property
    def title(self) -> str: ...

    @property
    def videos(self) -> Path | None:
        """The folder the videos (and so the posters, under ``thumbs/``) are in, if known."""
        ...

    async def read(self) -> dict[str, Any]:
        """The page's JSON (``view.build_view``)."""
        ...


def manifest_total(run_dir: Path) -> int | None:
    """The rows in the run's manifest, as ``status`` counts them (None: it cannot be read)."""
    with contextlib.suppress(UserError, OSError):
        first = first_run_record(run_dir)
        options = ManifestOptions.from_record(first.manifest_options)
        return sum(1 for _ in read_manifest(Path(first.manifest or ""), options))
    return None


class RunDirReader:
    """A run directory's batch (read in a worker thread: the replay reads a file)."""

    def __init__(self, run_dir: Path, clock: Clock) -> None:
        self.run_dir = run_dir
        self._clock = clock
        self._total: int | None = None
        self._counted = False
        self._posters = PosterShelf(run_dir)

    @property
    def title(self) -> str:
        return self.run_dir.resolve().name

    @property
    def videos(self) -> Path | None:
        return self.run_dir

    async def read(self) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(self._read)

    def _read(self) -> dict[str, Any]:
        if not self._counted:  # once: the manifest does not change under its run
            self._total, self._counted = manifest_total(self.run_dir), True
        state = read_ledger(self.run_dir)
        try:
            report = status(self.run_dir, state, self._total)
            now_s = self._clock.wall_s()
            return build_view(
                title=self.title,
                where=str(self.run_dir.resolve()),
                state=state,
                report=report,
                approve=f"orchestrator approve {shlex.quote(str(self.run_dir))}",
                next_command=report.next_command(),
                now_s=now_s,
                posters=lambda st: self._posters.newest(st, now_s),
            )
        finally:
            state.rows.close()


READ_OUTAGE_S = 5.0
"""How long a page's read of a shared batch is tried again while the database is away (the
workers' ``Db`` retries) before the page says the ledger is lost: a cut connection is not."""


class SharedReader:
    """A shared batch in PostgreSQL: ``batch`` (None: the newest), the videos under
    ``videos`` when given (the folder its workers were given as ``--out``)."""

    def __init__(
        self,
        pool: Any,
        url: str,
        batch: str | None,
        videos: Path | None,
        clock: Clock,
        lease_s: float,
    ) -> None:
        self._pool = pool
        self._url = url
        self._batch = batch
        self._videos = videos
        self._clock = clock
        self._lease_s = lease_s
        self._posters = PosterShelf(videos)
        self._title = batch or "newest batch"

    @property
    def title(self) -> str:
        return self._title

    @property
    def videos(self) -> Path | None:
        return self._videos

    async def read(self) -> dict[str, Any]:
        """The page's JSON; a read cut short (a connection cut, a restart) is tried again on new
        connections for up to ``READ_OUTAGE_S`` before the page says the ledger is lost."""
        from orchestrator.ledger.pg.pool import Db
        from orchestrator.ledger.pg.schema import database_lost, safe_url

        db = Db(self._pool, self._clock, max_outage_s=READ_OUTAGE_S, where=safe_url(self._url))
        try:
            return await db.run_pooled(lambda _: self._read())
        except Exception as exc:
            lost = database_lost(exc)
            if lost is None:
                raise
            raise UserError(f"lost the shared ledger at {safe_url(self._url)} ({lost})") from exc

    async def _read(self) -> dict[str, Any]:
        from orchestrator.ledger.pg.batches import batch_rows, batch_view
        from orchestrator.ledger.pg.schema import safe_url

        view = await batch_view(self._pool, self._batch)
        self._title = view.name
        listed, state = await batch_rows(self._pool, view.batch_id)
        try:
            report = status(None, state, len(listed), live=bool(view.workers))
            account = ""
            if view.accounts is not None:
                account = f" --account {view.accounts[0] if len(view.accounts) == 1 else 'NAME'}"
            ref = f"--ledger {safe_url(self._url)} --batch {shlex.quote(view.name)}{account}"
            workers = [
                Worker(w.worker, w.account, w.rows, w.until_s, self._lease_s) for w in view.leases
            ]
            now_s = self._clock.wall_s()
            shelf = self._posters
            return await anyio.to_thread.run_sync(
                lambda: build_view(
                    title=view.name,
                    where=f"{safe_url(self._url)} (batch {view.name})",
                    state=state,
                    report=report,
                    approve=f"orchestrator approve {ref}",
                    next_command=report.next_command(ref),
                    now_s=now_s,
                    posters=lambda st: shelf.newest(st, now_s),
                    workers=workers,
                )
            )
        finally:
            state.rows.close()


@asynccontextmanager
async def open_reader(
    place: LedgerPlace,
    clock: Clock,
    *,
    videos: Path | None = None,
    max_connections: int = 2,
    lease_s: float = 30.0,
) -> AsyncIterator[LiveReader]:
    """The reader of the batch at ``place``; a shared one's connections close on the way out.
    ``videos``: where a shared batch's workers wrote their videos (for the posters)."""
    if place.url is None:
        assert place.run_dir is not None
        read_ledger(place.run_dir).rows.close()  # a folder that is no run directory: refused now
        yield RunDirReader(place.run_dir, clock)
        return
    from orchestrator.ledger.pg.batches import batch_view
    from orchestrator.ledger.pg.pool import open_pool

    async with open_pool(place.url, max_connections=max_connections) as pool:
        await batch_view(pool, place.batch)  # no such batch: refused now, not on the page
        yield SharedReader(pool, place.url, place.batch, videos, clock, lease_s)
