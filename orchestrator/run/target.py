"""What a run directory's batch runs against: its *target*, recorded by every session in its
``run`` record (``RunStarted.target``): the embedded simulator (``--simulate PROFILE``) or an API
(its base URL), and the ``--config`` file (its absolute path). ``resume`` and ``approve`` (and
``Batch.resume``) reuse the latest session's target for what they are not told
(``session_target``):

- ``--simulate``: the recorded profile, unless another is given;
- ``--config``: the recorded file, unless one is given;
- the base URL: ``PICTORY_API_BASE_URL`` when it is set now, else, unless ``--config`` is given,
  the one the batch last ran against (a URL once given in the environment is not lost with the
  shell).

A run directory never changes between the embedded simulator and an API: its simulated videos
and jobs would be mixed with real ones. A session that would is refused, naming the command
that goes on. A ledger older than targets says nothing, and nothing is reused or refused.

May import what ``run`` may; ``run.batch`` and ``cli.run_dir`` use it.
"""

from __future__ import annotations

import json
import mmap
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import DEFAULT_BASE_URL, Config, load_config
from orchestrator.errors import ConfigError, RunDirError
from orchestrator.ledger.codec import decode
from orchestrator.ledger.file import LEDGER_NAME
from orchestrator.ledger.records import JsonObject, RunStarted

RUN_LINE = b'{"e":"run"'
"""How every ``run`` record's line starts (the ledger writes ``e`` first, without spaces)."""


@dataclass(frozen=True)
class Target:
    """What a session sends its requests to (``RunStarted.target``)."""

    simulate: str | None = None
    """The ``--simulate`` profile: the embedded simulator, whose jobs die with the process."""
    base_url: str | None = None
    """An API's base URL (None under ``--simulate``)."""
    config: Path | None = None
    """The ``--config`` file, absolute (None: none was given)."""

    def record(self) -> JsonObject:
        out: JsonObject = {}
        if self.simulate is not None:
            out["simulate"] = self.simulate
        if self.base_url is not None:
            out["base_url"] = self.base_url
        if self.config is not None:
            out["config"] = str(self.config)
        return out

    @classmethod
    def from_record(cls, data: JsonObject | None) -> Target | None:
        if data is None:
            return None
        simulate, base_url, config = data.get("simulate"), data.get("base_url"), data.get("config")
        return cls(
            simulate=simulate if isinstance(simulate, str) else None,
            base_url=base_url if isinstance(base_url, str) else None,
            config=Path(config) if isinstance(config, str) else None,
        )


def recorded_target(run_dir: Path) -> Target | None:
    """The target of ``run_dir``'s latest session; None when there is no ledger, or its latest
    session recorded none (an older version ran it)."""
    latest = last_run_record(run_dir / LEDGER_NAME)
    return Target.from_record(latest.target) if latest is not None else None


def last_run_record(path: Path) -> RunStarted | None:
    """The ledger's last ``run`` record, found from the end (a ledger of a million lines is not
    replayed for it); None when there is none. A damaged or torn line is passed over here: the
    replay that follows refuses it by name."""
    try:
        f = path.open("rb")
    except OSError:  # none there (or --out is no folder: the run says so)
        return None
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for line in _run_lines_backwards(data):
                try:
                    event = decode(json.loads(line))
                except ValueError:  # damaged, or newer: the replay says so
                    continue
                if isinstance(event, RunStarted):
                    return event
    return None


def _run_lines_backwards(data: mmap.mmap) -> Iterator[bytes]:
    """Every whole line that starts like a ``run`` record, last first."""
    end = len(data)
    while end > 0:
        at = data.rfind(b"\n" + RUN_LINE, 0, end)
        start = at + 1 if at >= 0 else 0
        if at >= 0 or data[: len(RUN_LINE)] == RUN_LINE:
            stop = data.find(b"\n", start)
            if stop >= 0:  # a line without its newline was torn by a crash: never acknowledged
                yield data[start:stop]
        if at < 0:
            return
        end = at


def session_target(
    run_dir: Path, *, simulate: str | None, config: Path | None, reuse: bool
) -> Target:
    """This session's target: the ``simulate`` profile and ``config`` file it is given, and
    (``reuse``: ``resume``, ``approve``) the latest session's for the rest. Refuses a change
    between the embedded simulator and an API. ``base_url`` is the recorded one to pin, when
    the session relies on the record."""
    recorded = recorded_target(run_dir)
    base_url = None
    if reuse and recorded is not None:
        simulate = simulate or recorded.simulate
        if config is None:
            config = recorded.config
            base_url = recorded.base_url
    if recorded is not None:
        _refuse_a_switch(run_dir, recorded, simulate)
    return Target(
        simulate=simulate,
        base_url=None if simulate else base_url,
        config=config.absolute() if config is not None else None,
    )


def load_target_config(target: Target, given: Path | None, warn: list[str] | None = None) -> Config:
    """The config of ``target``: its file (``given`` on the command line, else the recorded
    one), and the recorded base URL unless ``PICTORY_API_BASE_URL`` states one now."""
    try:
        config = load_config(given or target.config, warn=warn)
    except ConfigError as exc:
        if given is not None or target.config is None:
            raise
        raise ConfigError(
            f"{exc} (the config file this batch last ran with); give --config FILE"
        ) from exc
    if target.base_url is not None and not _environment_states_base_url():
        config = config.model_copy(
            update={"api": config.api.model_copy(update={"base_url": target.base_url})}
        )
    return config


def _environment_states_base_url() -> bool:
    """Whether ``PICTORY_API_BASE_URL`` is set now (read by ``config``, the one module that
    reads the environment: without a file, only the environment can move the base URL)."""
    return load_config(None).api.base_url != DEFAULT_BASE_URL


def _refuse_a_switch(run_dir: Path, recorded: Target, simulate: str | None) -> None:
    go_on = f"`orchestrator resume {shlex.quote(str(run_dir))}`"
    if recorded.simulate and not simulate:
        raise RunDirError(
            f"{run_dir} holds a batch run against the embedded simulator (--simulate "
            f"{recorded.simulate}); give --simulate to go on there ({go_on} does), or choose "
            "another --out for the real API: simulated and real videos do not mix in one run "
            "directory"
        )
    if simulate and not recorded.simulate:
        where = recorded.base_url or "an API"
        raise RunDirError(
            f"{run_dir} holds a batch run against {where}; --simulate would mix simulated "
            f"videos and jobs with its real ones: leave it out ({go_on} goes on there), or "
            "choose another --out to try the batch offline"
        )
