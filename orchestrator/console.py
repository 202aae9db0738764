"""What a person sees while a batch runs: a sink that prints progress to stderr."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from orchestrator.events import scrub


class ConsoleSink:
    """Prints row outcomes as they happen and a one-line tally every ``interval_s``."""

    def __init__(
        self,
        *,
        secrets: list[str],
        stream: TextIO | None = None,
        interval_s: float = 5.0,
        verbose: bool = False,
    ) -> None:
        self._stream = stream or sys.stderr
        self._secrets = secrets
        self._interval_s = interval_s
        self._verbose = verbose
        self._last_tally = time.monotonic()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.ambiguous = 0
        self.in_flight = 0
        self.retries = 0
        self.rate_limited = 0

    def _print(self, text: str) -> None:
        print(scrub(text, self._secrets), file=self._stream, flush=True)

    def emit(self, kind: str, **fields: Any) -> None:
        if kind == "run_started":
            self.total = int(fields.get("rows", 0))
            self._print(
                f"run: {self.total} rows → {fields.get('run_dir')} ({fields.get('base_url')})"
            )
        elif kind == "row_started":
            self.in_flight += 1
        elif kind == "row_done":
            self.done += 1
            self.in_flight -= 1
            self._print(f"done    {fields['row']} → {fields.get('file')}")
        elif kind == "row_failed":
            self.failed += 1
            self.in_flight -= 1
            self._print(
                f"FAILED  {fields['row']} at {fields.get('stage')}: {fields.get('message')}"
            )
        elif kind == "row_ambiguous":
            self.ambiguous += 1
            self.in_flight -= 1
            self._print(f"AMBIGUOUS {fields['row']}: {fields.get('message')}")
        elif kind == "retry":
            self.retries += 1
            if fields.get("kind") == "rate_limited":
                self.rate_limited += 1
            if self._verbose:
                self._print(
                    f"retry   {fields.get('endpoint')} ({fields.get('kind')}) in {fields.get('delay_s')} s"
                )
        elif self._verbose:
            self._print(f"{kind} {fields}")
        now = time.monotonic()
        if now - self._last_tally >= self._interval_s:
            self._last_tally = now
            self._print(
                f"… {self.done} done, {self.failed} failed, {self.in_flight} in flight of "
                f"{self.total}; {self.retries} retries ({self.rate_limited} rate-limited)"
            )
