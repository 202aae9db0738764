"""Fault injection: every random decision about faults, drawn from one seeded generator.

Each decision consumes the generator in a fixed order, so the same requests in the same order
against the same seed meet the same faults. Only faults with a non-zero probability draw at all.

Where each fault is decided:

- per API request (``for_request``): ``slow`` (wait, then carry on), then one of
  ``server_error`` (500/502/503), ``rate_limit`` (429), ``drop_before`` / ``drop_after``
  (close the connection without an answer; ``drop_after`` only for job-creating requests,
  after the job exists);
- per job at creation (``job_fate``): ``job_failed`` or ``job_stuck``; then, only for a job
  that searches stock visuals and is to complete, ``visual_not_found``;
- per video download (``download_cut_at``, ``html_instead_of_video``): ``download_cut``,
  ``html_video``;
- per request carrying a legacy token (``token_revoked``): ``token_revoked``;
- per request carrying a valid API key (``key_refused``): ``key_refused``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from orchestrator.simulator.settings import SimSettings

SERVER_ERROR_STATUSES = (500, 502, 503)


class FaultKind(StrEnum):
    """The names under which injected faults are counted in ``stats()["faults"]``."""

    SERVER_ERROR = "server_error"
    RATE_LIMIT = "rate_limit"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    SLOW = "slow"
    JOB_FAILED = "job_failed"
    JOB_STUCK = "job_stuck"
    VISUAL_NOT_FOUND = "visual_not_found"
    DOWNLOAD_CUT = "download_cut"
    HTML_VIDEO = "html_video"
    TOKEN_REVOKED = "token_revoked"
    KEY_REFUSED = "key_refused"


class JobFate(StrEnum):
    """How a job ends, decided when it is created."""

    OK = "ok"
    FAILED = "failed"
    STUCK = "stuck"


Drop = Literal["before", "after"] | None


@dataclass(frozen=True, slots=True)
class RequestFaults:
    """The faults one API request meets. At most one of status/rate-limit/drop is set."""

    slow_s: float = 0.0
    server_error_status: int | None = None
    rate_limited: bool = False
    drop: Drop = None


NO_FAULTS = RequestFaults()


class FaultPlan:
    """Draws faults for one simulator instance and counts the ones it injected."""

    def __init__(self, settings: SimSettings) -> None:
        self._s = settings
        self._rng = random.Random(f"{settings.seed}:faults")
        self.counts: Counter[str] = Counter()

    def _hit(self, probability: float) -> bool:
        return probability > 0.0 and self._rng.random() < probability

    def _count(self, kind: FaultKind) -> None:
        self.counts[kind.value] += 1

    def for_request(self, *, creating: bool) -> RequestFaults:
        """Faults for one API request; ``creating`` marks requests that create a job."""
        s = self._s
        slow_s = 0.0
        if self._hit(s.fault_slow_p):
            self._count(FaultKind.SLOW)
            slow_s = s.fault_slow_delay_s
        if self._hit(s.fault_server_error_p):
            self._count(FaultKind.SERVER_ERROR)
            status = self._rng.choice(SERVER_ERROR_STATUSES)
            return RequestFaults(slow_s=slow_s, server_error_status=status)
        if self._hit(s.fault_rate_limit_p):
            self._count(FaultKind.RATE_LIMIT)
            return RequestFaults(slow_s=slow_s, rate_limited=True)
        if self._hit(s.fault_drop_p):
            after = creating and self._rng.random() < 0.5
            self._count(FaultKind.DROP_AFTER if after else FaultKind.DROP_BEFORE)
            return RequestFaults(slow_s=slow_s, drop="after" if after else "before")
        if slow_s:
            return RequestFaults(slow_s=slow_s)
        return NO_FAULTS

    def job_fate(self) -> JobFate:
        """Whether a new job will complete, fail or never finish."""
        if self._hit(self._s.fault_job_failed_p):
            self._count(FaultKind.JOB_FAILED)
            return JobFate.FAILED
        if self._hit(self._s.fault_job_stuck_p):
            self._count(FaultKind.JOB_STUCK)
            return JobFate.STUCK
        return JobFate.OK

    def visual_not_found(self) -> bool:
        """Whether a job searching stock visuals finds none for a scene (and so fails)."""
        if self._hit(self._s.fault_visual_not_found_p):
            self._count(FaultKind.VISUAL_NOT_FOUND)
            return True
        return False

    def download_cut_at(self, length: int) -> int | None:
        """How many body bytes to send before closing, or ``None`` to send them all."""
        if length < 2 or not self._hit(self._s.fault_download_cut_p):
            return None
        self._count(FaultKind.DOWNLOAD_CUT)
        return self._rng.randint(1, length - 1)

    def html_instead_of_video(self) -> bool:
        """Whether this video download answers a web page instead of the MP4."""
        if self._hit(self._s.fault_html_video_p):
            self._count(FaultKind.HTML_VIDEO)
            return True
        return False

    def token_revoked(self) -> bool:
        """Whether the legacy token on this request is revoked right now."""
        if self._hit(self._s.fault_token_revoked_p):
            self._count(FaultKind.TOKEN_REVOKED)
            return True
        return False

    def key_refused(self) -> bool:
        """Whether the valid API key on this request is refused in passing (it stays good)."""
        if self._hit(self._s.fault_key_refused_p):
            self._count(FaultKind.KEY_REFUSED)
            return True
        return False
