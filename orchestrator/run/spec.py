"""What one session of a batch is asked to do (``RunSpec``): the run directory or shared batch,
the manifest, the batch-wide choices, and what it runs against. ``execute`` runs it; the
pre-flight and the row pool read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.input.row import DEFAULT_OPTIONS, ManifestOptions
from orchestrator.ledger.open import LedgerPlace
from orchestrator.ledger.records import BatchChoices, JsonObject


@dataclass(frozen=True)
class RunSpec:
    """One session of a batch. ``run_dir`` holds what this process writes (videos, log, results,
    report; a worker's ``--out``). A run directory's batch names its ``manifest``; a shared
    batch its ``ledger_url`` (and ``batch``)."""

    run_dir: Path
    manifest: Path | None = None
    template: Path | None = None
    flow: str = "template"
    ledger_url: str | None = None
    batch: str | None = None
    account: str | None = None
    """A worker's ``--account`` (printed in the commands that continue a bound batch)."""
    choices: BatchChoices = field(default_factory=BatchChoices)
    """The batch-wide choices given on the command line."""
    retry_failed: bool = False
    approve: bool = False
    canary_required: bool = False
    """``orchestrator approve``: refuse a batch that holds no canary to approve."""
    manifest_options: ManifestOptions = DEFAULT_OPTIONS
    target: JsonObject | None = None
    """What this session sends its requests to, as its ``run`` record keeps it
    (``RunStarted.target``: ``simulate`` or ``base_url``, and ``config``)."""
    resuming: bool = False
    """``resume`` or ``approve``: a batch-wide choice this session does not state is the
    recorded one (``session.carried_choices``); ``run`` states them all anew."""

    @property
    def simulated(self) -> bool:
        """Against the embedded simulator (``--simulate``), whose jobs die with this process."""
        return bool(self.target and self.target.get("simulate"))

    @property
    def place(self) -> LedgerPlace:
        if self.ledger_url is not None:
            return LedgerPlace(url=self.ledger_url, batch=self.batch)
        return LedgerPlace(run_dir=self.run_dir)
