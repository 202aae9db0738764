"""``open_ledger``: the one place that names a ledger class. A run directory opens the embedded
JSONL ledger (``file.FileLedger``); a ``postgresql://`` URL opens a worker's view of a shared
batch (``pg.ledger.PgLedger``, imported only then). Everything above works on ``Ledger``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from orchestrator.clock import Clock
from orchestrator.errors import UserError
from orchestrator.events import Sink
from orchestrator.ledger.file import FileLedger, RowSource
from orchestrator.ledger.protocol import Ledger


@dataclass(frozen=True)
class LedgerPlace:
    """Where a batch's ledger is: a run directory, or a database ``url`` (and ``batch`` name)."""

    run_dir: Path | None = None
    url: str | None = None
    batch: str | None = None

    @property
    def shared(self) -> bool:
        return self.url is not None

    def __post_init__(self) -> None:
        if (self.run_dir is None) == (self.url is None):
            raise UserError("give a run directory or --ledger URL (one of them)")


@dataclass(frozen=True)
class SharedSettings:
    """What a shared ledger needs of the process: its lease, connections and account."""

    lease_s: float = 30.0
    max_connections: int = 4
    account: str = "default"
    """Whose Pictory account the process renders on (``config.account_key``: a digest)."""
    account_name: str | None = None
    """The name the process's account goes by (``[ledger] account``, ``--account``): a batch
    bound to accounts is opened only by a process of one of them."""
    rerender_ambiguous: bool = False
    max_outage_s: float = 300.0


@asynccontextmanager
async def open_ledger(
    place: LedgerPlace,
    clock: Clock,
    *,
    rows: RowSource | None = None,
    shared: SharedSettings = SharedSettings(),
    sink: Sink | None = None,
) -> AsyncIterator[Ledger]:
    """The ledger at ``place``, closed (claims handed back, lock released) on the way out, even
    when cancelled. ``rows``: a run directory's rows (its manifest, read lazily); ``sink``:
    where a run directory's ledger tells what it did on its own (put a removed ledger back,
    wrote into its reserve)."""
    if place.url is None:
        assert place.run_dir is not None
        ledger: Ledger = FileLedger.open(place.run_dir, rows, clock, sink=sink)
        try:
            yield ledger
        finally:
            with anyio.CancelScope(shield=True):
                await ledger.aclose()
        return
    from orchestrator.ledger.pg.ledger import PgLedger
    from orchestrator.ledger.pg.pool import open_pool

    async with open_pool(place.url, max_connections=shared.max_connections) as pool:
        ledger = await PgLedger.open(
            pool,
            place.url,
            place.batch,
            lease_s=shared.lease_s,
            clock=clock,
            account=shared.account,
            account_name=shared.account_name,
            rerender_ambiguous=shared.rerender_ambiguous,
            max_outage_s=shared.max_outage_s,
        )
        try:
            yield ledger
        finally:
            with anyio.CancelScope(shield=True):  # hand the claimed rows back even when cancelled
                await ledger.aclose()
