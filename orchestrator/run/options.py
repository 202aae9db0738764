"""What a session of a batch is told besides its manifest and its run directory: ``RunOptions``,
the options of ``orchestrator run`` as one typed value, and what they make of a config, the
batch-wide choices and the manifest's reading.

``Batch`` (``run.batch``) takes one; the CLI builds one from its parsed arguments
(``cli.commands.options_from_args``), so the command line and the library are checked and
applied by the same code here.

May import what ``run`` may.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from orchestrator.clock import RealClock
from orchestrator.config import (
    NOTIFY_FROM_CONFIG,
    Config,
    DeliverConfig,
    default_notify_source,
    load_config,
    machine_time_zone,
    notify_source,
)
from orchestrator.errors import UserError
from orchestrator.input.identity import identity_named
from orchestrator.input.manifest import text_dialect
from orchestrator.input.names import parse_pattern
from orchestrator.input.row import ManifestOptions, with_row_cap
from orchestrator.ledger.file import LEDGER_NAME, first_run_record
from orchestrator.ledger.records import BatchChoices
from orchestrator.run.admission import HaltPolicy, Window
from orchestrator.run.pool import VIDEOS_DIR
from orchestrator.storage.destination import check_presign_days, check_url

UNTIL_MAX_AHEAD_H = 12
"""An ``until`` time that has passed today means tomorrow only if that is at most this far off."""
AT_WINDOW_END = ("finish", "stop")
RESULTS_DIALECTS = ("excel", "excel-eu", "utf8")
KEEP_LOCAL = ("all", "posters", "none")
MAX_PORT = 65535
"""``results_dialect``: the names of ``report.results_csv.NAMED_DIALECTS``."""


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The options of ``orchestrator run`` (each named like its ``--option``; docs/cli.md says
    what each does), all optional. Three kinds:

    - what this process does: ``concurrency`` (rows in flight), ``retry_failed``,
      ``rerender_ambiguous``, ``direct``, ``webhook``, ``approve``, ``links_valid_days``;
    - the batch-wide choices, recorded in the ledger (``records.BatchChoices``): ``canary``,
      ``halt_after`` (``"5"`` or ``"5%"``), ``max_renders``, ``max_minutes`` and ``max_credits``
      (spend caps in video minutes and AI credits: docs/cost.md), ``window`` (``"22:00-06:30"``) or
      ``until`` (``"06:30"``), ``time_zone``, ``at_window_end``, ``check_quota``,
      ``rerender_changed``, ``notify`` (a URL, ``env:NAME``, ``file:PATH`` or ``config``;
      unset: ``[notify] url``, else ``ORCHESTRATOR_NOTIFY_URL`` when set);
    - how the manifest is read, recorded with the run: ``sheet``, ``delimiter``, ``encoding``,
      ``strict_headers``, ``strict_columns``, ``allow_paths``, ``max_rows``,
      ``results_dialect``, ``name_pattern``.

    A resumed batch (``Batch.resume``) keeps each recorded choice and manifest option it is not
    given again."""

    concurrency: int | None = None
    retry_failed: bool = False
    rerender_ambiguous: bool = False
    direct: bool = False
    webhook: bool = False
    approve: bool = False
    metrics_port: int | None = None
    """Serve Prometheus metrics at ``http://127.0.0.1:PORT/metrics`` (0: any free port) while
    the run lasts (``[metrics] port``; docs/overnight.md#monitoring)."""
    keep_local: Literal["all", "posters", "none"] | None = None
    """Local copies kept once a row's delivery is checksum-verified (``[run] keep_local``):
    ``all``, ``posters`` or ``none``; never removed before that."""
    links_valid_days: float | None = None
    """Warn, at the end and in the report, when a done row's ``email_url`` may stop working
    within this many days (``[report] links_valid_days``; docs/run-directory.md)."""

    deliver: str | None = None
    """``--deliver URL``: each video to ``s3://bucket/prefix/`` or ``file:///path/`` once
    downloaded (``[deliver] url``; docs/delivery.md)."""
    deliver_presign_days: float | None = None
    """``--deliver-presign DAYS``: results.csv links a presigned URL (at most 7 days)."""
    deliver_public_url: str | None = None
    """``--deliver-public-url BASE``: results.csv links ``BASE`` + the object's key."""
    pictory_aws_connection: str | None = None
    pictory_vimeo_connection: str | None = None
    """Pictory-side delivery on the v2 routes: ``awsConnectionId`` / ``vimeoConnectionId``
    (``[deliver] aws_connection_id`` / ``vimeo_connection_id``; contract §6.3)."""

    canary: int | None = None
    halt_after: str | None = None
    max_renders: int | None = None
    max_minutes: float | None = None
    max_credits: float | None = None
    window: str | None = None
    until: str | None = None
    time_zone: str | None = None
    at_window_end: Literal["finish", "stop"] = "finish"
    check_quota: bool = False
    rerender_changed: bool = False
    notify: str | None = None

    sheet: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    strict_headers: bool = False
    strict_columns: bool = False
    allow_paths: Sequence[str | Path] = ()
    max_rows: int | None = None
    results_dialect: str | None = None
    name_pattern: str | None = None
    """``--name PATTERN``: video file names from the row's columns (``input.names``), else
    ``[run] name_pattern``; recorded when the batch begins, and kept (see
    ``batch_name_pattern``)."""

    def configured(self, config: Config) -> Config:
        """``config`` with this process's options applied (``--concurrency``...)."""
        limits = config.limits
        if self.concurrency is not None:
            limits = limits.model_copy(
                update={"max_rows_in_flight": _positive(self.concurrency, "--concurrency")}
            )
        run = config.run
        if self.rerender_ambiguous:
            run = run.model_copy(update={"rerender_ambiguous": True})
        if self.rerender_changed:
            run = run.model_copy(update={"rerender_changed": True})
        if self.direct:
            run = run.model_copy(update={"route": "direct"})
        if self.keep_local is not None:
            if self.keep_local not in KEEP_LOCAL:
                raise UserError(
                    f"--keep-local {self.keep_local}: choose one of {', '.join(KEEP_LOCAL)}"
                )
            run = run.model_copy(update={"keep_local": self.keep_local})
        deliver = self._deliver(config)
        report = config.report
        if self.links_valid_days is not None:
            if not self.links_valid_days > 0:
                raise UserError(
                    f"--links-valid-days {self.links_valid_days:g}: give a number of days above 0"
                )
            report = report.model_copy(update={"links_valid_days": self.links_valid_days})
        webhook = config.webhook
        if self.webhook:
            webhook = webhook.model_copy(update={"enabled": True})
        metrics = config.metrics
        if self.metrics_port is not None:
            if not 0 <= self.metrics_port <= MAX_PORT:
                raise UserError(f"--metrics-port {self.metrics_port}: choose 0 to {MAX_PORT}")
            metrics = metrics.model_copy(update={"port": self.metrics_port})
        notify = config.notify
        given = self.notify
        if given and notify_source(given) == NOTIFY_FROM_CONFIG and given != NOTIFY_FROM_CONFIG:
            notify = notify.model_copy(update={"url": SecretStr(given)})  # this process's own URL
        return config.model_copy(
            update={
                "limits": limits,
                "run": run,
                "webhook": webhook,
                "notify": notify,
                "metrics": metrics,
                "deliver": deliver,
                "report": report,
            }
        )

    def _deliver(self, config: Config) -> DeliverConfig:
        """``[deliver]`` with ``--deliver``, ``--deliver-presign``, ``--deliver-public-url``,
        checked in one line each (a URL we cannot deliver to, more than 7 days)."""
        given = {
            key: value
            for key, value in (
                ("url", self.deliver),
                ("presign_days", self.deliver_presign_days),
                ("public_url_base", self.deliver_public_url),
                ("aws_connection_id", self.pictory_aws_connection),
                ("vimeo_connection_id", self.pictory_vimeo_connection),
            )
            if value is not None
        }
        deliver = config.deliver.model_copy(update=given)
        check_presign_days(deliver.presign_days)
        if deliver.url is not None:
            check_url(deliver.url)
        elif given.keys() & {"presign_days", "public_url_base"}:
            raise UserError("--deliver-presign and --deliver-public-url need --deliver URL")
        return deliver

    def choices(self, config: Config) -> BatchChoices:
        """The batch-wide choices these options state (validated; see ``records.BatchChoices``).
        A window or ``until`` is read in ``time_zone`` (default: this machine's zone)."""
        window = self._window()
        if self.at_window_end not in AT_WINDOW_END:
            raise UserError(
                f"--at-window-end {self.at_window_end}: choose one of {', '.join(AT_WINDOW_END)}"
            )
        notify = self.notify
        if notify is None and config.notify.url is not None:
            notify = NOTIFY_FROM_CONFIG
        elif notify is None:
            notify = default_notify_source()  # ORCHESTRATOR_NOTIFY_URL, when set
        return BatchChoices(
            canary=_positive(self.canary, "--canary"),
            halt_after=_halt_after(self.halt_after),
            max_renders=_positive(self.max_renders, "--max-renders"),
            max_minutes=_positive_amount(self.max_minutes, "--max-minutes"),
            max_credits=_positive_amount(self.max_credits, "--max-credits"),
            window=self.window if window is not None and window.start is not None else None,
            until=self.until if window is not None and window.start is None else None,
            time_zone=window.zone if window is not None else None,
            at_window_end=self.at_window_end if self.at_window_end != "finish" else None,
            check_quota=self.check_quota,
            rerender_changed=self.rerender_changed,
            notify=notify_source(notify),
        )

    def manifest_options(
        self,
        *,
        recorded: dict[str, Any] | None = None,
        manifest: Path | None = None,
        run_dir: Path | None = None,
        config_file: Path | None = None,
    ) -> ManifestOptions:
        """How the manifest is read: these options; on resume, the ones the first run
        ``recorded``, each overridden when given again (``allow_paths`` adds to them); with
        ``manifest``: its delimiter and encoding as found (``results.csv`` follows them); the
        row cap from ``max_rows``, else ``[input] max_rows`` of ``config_file``. Rows without
        ``id`` get readable names in a new batch; ``run_dir``'s batch keeps the names it began
        with."""
        if self.results_dialect is not None and self.results_dialect not in RESULTS_DIALECTS:
            raise UserError(
                f"--results-dialect {self.results_dialect}: choose one of "
                + ", ".join(RESULTS_DIALECTS)
            )
        base = ManifestOptions.from_record(recorded)
        given: dict[str, Any] = {
            name: getattr(self, name)
            for name in (
                "sheet",
                "delimiter",
                "encoding",
                "strict_headers",
                "strict_columns",
                "results_dialect",
            )
            if getattr(self, name)
        }
        allowed = [str(Path(p).expanduser().resolve()) for p in self.allow_paths]
        if allowed:  # allow_paths adds to the folders an earlier run allowed
            given["allow_paths"] = tuple(dict.fromkeys([*base.allow_paths, *allowed]))
        given["readable_names"] = readable_names(run_dir)
        given["name_pattern"] = batch_name_pattern(
            self.name_pattern or base.name_pattern, run_dir, config_file
        )
        options = replace(base, **given)
        if manifest is not None:
            found = text_dialect(manifest, options)
            options = replace(
                options,
                found_delimiter=found[0] if found else None,
                found_encoding=found[1] if found else None,
            )
        if self.max_rows is not None and self.max_rows < 1:
            raise UserError(f"--max-rows {self.max_rows}: the cap must be at least 1 row")
        return with_row_cap(options, self.max_rows, config_file)

    def _window(self) -> Window | None:
        if self.window and self.until:
            raise UserError("give either --window or --until, not both")
        zone = self.time_zone or machine_time_zone()
        if self.window:
            return Window.parse(self.window, zone=zone)
        if self.until:
            window = Window.parse(self.until, option="--until", zone=zone)
            now = window.now(RealClock())
            left_s = window.seconds_left(now)
            if window.end < now.time() and left_s > UNTIL_MAX_AHEAD_H * 3600:
                means = now + dt.timedelta(seconds=left_s)
                raise UserError(
                    f"--until {self.until}: that time has passed today (it is {now:%H:%M}); it "
                    f"would mean tomorrow {means:%a %H:%M}, {left_s / 3600:.0f} h from now. Give "
                    f"a later time, or for a run that long say --window "
                    f"{now:%H:%M}-{window.end:%H:%M}"
                )
            return window
        return None


def readable_names(run_dir: Path | None) -> bool:
    """Whether rows without ``id`` get readable names (``identity.readable_name``): yes, unless
    ``run_dir`` holds a batch begun with identity names (its first record says so, or, with its
    ledger removed, its videos are named so)."""
    if run_dir is None:
        return True
    if (run_dir / LEDGER_NAME).exists():
        try:
            recorded = first_run_record(run_dir).manifest_options
        except UserError:  # the run refuses it, saying why
            return True
        return ManifestOptions.from_record(recorded).readable_names
    with contextlib.suppress(OSError), os.scandir(run_dir / VIDEOS_DIR) as entries:
        return not any(identity_named(entry.name) for entry in entries)
    return True


def batch_name_pattern(
    given: str | None, run_dir: Path | None, config_file: Path | None
) -> str | None:
    """The batch's name pattern (``--name``): the one ``run_dir``'s batch recorded when it began
    (none, for a batch begun without), else ``given``, else ``[run] name_pattern`` of
    ``config_file``. A pattern other than the recorded one is refused: a batch keeps its names,
    so a row's video never changes name and two patterns never meet in one folder."""
    if given is not None:
        parse_pattern(given)
    if run_dir is not None and (run_dir / LEDGER_NAME).exists():
        try:
            recorded = ManifestOptions.from_record(first_run_record(run_dir).manifest_options)
        except UserError:  # the run refuses the ledger, saying why
            return given
        if given is not None and given != recorded.name_pattern:
            began = (
                f"names its videos with --name {recorded.name_pattern!r}"
                if recorded.name_pattern
                else "began without --name (its videos are named by id or line)"
            )
            raise UserError(
                f"--name {given!r}: the batch in {run_dir} {began}; a batch keeps its names: "
                "leave --name out, or start another batch with another --out"
            )
        return recorded.name_pattern
    if given is None and config_file is not None:
        given = load_config(config_file).run.name_pattern
        if given is not None:
            parse_pattern(given, "[run] name_pattern")
    return given


def _halt_after(text: str | None) -> str | None:
    """``--halt-after``, checked (``HaltPolicy.parse`` says what is wrong) and kept as given."""
    if not text:
        return None
    HaltPolicy.parse(text)
    return text.strip()


def _positive_amount(value: float | None, option: str) -> float | None:
    """A spend cap: a number above 0 (``--max-minutes 90``, ``--max-credits 2.5``)."""
    if value is not None and not value > 0:
        raise UserError(f"{option} {value:g}: give an amount above 0")
    return float(value) if value is not None else None


def _positive(value: int | None, option: str) -> int | None:
    if value is not None and value < 1:
        raise UserError(f"{option} must be at least 1")
    return value
