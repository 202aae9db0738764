"""Jobs and their state, computed lazily from the clock on every read.

A job's whole future is fixed when it is created: ``start_at`` (later than now only for a render
queued behind the account's render cap), ``end_at`` and its fate (ok, failed, stuck). Reading a
job just compares ``now`` with those times, so no timers run per job.

The render cap is a per-account min-heap of the times its ``max_concurrent_renders`` slots become
free: a new render takes the earliest slot, starting when that slot's previous render ends. That
is first-come first-served, exactly like a queue, in O(log cap) per render. A stuck render frees
its slot at its nominal end (so one stuck job does not block an account forever).

Jobs are forgotten ``job_retention_s`` after their end; an expiry heap purges them, amortised on
each new job, so memory stays bounded by the jobs of the last retention period. A purged or
cleaned (``DELETE /v1/jobs/{id}/clean``) job leaves a tombstone: a 16-byte digest of its account
and id kept as one int in a set (about 70 bytes each, so 100k purged jobs cost ~7 MB), so the
job then answers ``cleaned`` to its own account and ``JOB_NOT_FOUND`` is kept for ids never
issued (contract §5.4).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from orchestrator.simulator.faults import JobFate

if TYPE_CHECKING:
    from orchestrator.contract.ai_credits import Ask
    from orchestrator.simulator.media import VideoDigest
    from orchestrator.simulator.templates import Template


VISUAL_NOT_FOUND = "SCENE_BACKGROUND_VISUAL_NOT_FOUND"
"""The ``cause`` of a job that found no stock visual for a scene (``fault_visual_not_found_p``)."""


class JobKind(StrEnum):
    PREVIEW = "preview"
    RENDER = "render"
    TRANSCRIPTION = "transcription"
    HIGHLIGHTS = "highlights"


class Phase(StrEnum):
    """What a read of the job at some instant sees."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True, eq=False)
class Job:
    """One job. Kept small: shared references, strings, floats."""

    job_id: str
    kind: JobKind
    account: str
    created_at: float
    start_at: float
    end_at: float
    fate: JobFate
    webhook: str | None = None
    webhook_input: Any = None
    """The creating request's ``webhookInput`` (§6.3), echoed in the webhook POST
    (``webhooks.keep_webhook_input``); None: none was sent."""
    template: Template | None = None
    """Preview from a template: the template (shared, survives its deletion)."""
    payload_json: str = "{}"
    """Preview: the variables JSON, or the storyboard body. Render of params: their digest."""
    storyboard: bool = False
    preview: Job | None = None
    """Render of a preview: that preview job."""
    video_duration_s: float = 0.0
    video: VideoDigest | None = None
    cause: str | None = None
    """A job fated to fail: why, as its ``error_message`` names it (``views.failure_message``);
    ``None`` is the generic ``fault_job_failed_p`` failure."""
    file_url: str = ""
    """Transcription: the media URL."""
    language: str = "en"
    v2: bool = False
    """Created on a v2 route: a finished preview answers ``status: completed`` (§6.2)."""
    project_name: str | None = None
    """Preview (stored, or a direct render's source) asked ``saveProject: true``: the name
    ``GET /v2/projects`` lists it under (``routes_lookup``)."""
    ai_asks: tuple[Ask, ...] = ()
    """Preview: the AI generations its request (and template) asked for, charged on its renders."""
    ai_credits_used: float = 0.0
    """Render: the AI credits it was charged as it started (its ``aiCreditsUsed``)."""

    def phase(self, now: float) -> Phase:
        if now < self.start_at:
            return Phase.PENDING
        if now < self.end_at or self.fate is JobFate.STUCK:
            return Phase.RUNNING
        return Phase.FAILED if self.fate is JobFate.FAILED else Phase.DONE

    def progress_pct(self, now: float) -> int:
        """0–100 while running (a stuck job stalls at 99), 100 once done."""
        if now < self.start_at:
            return 0
        span = self.end_at - self.start_at
        if span <= 0 or now >= self.end_at:
            return 99 if self.fate is JobFate.STUCK else 100
        return min(99, int(100 * (now - self.start_at) / span))


class JobStore:
    """Jobs by id, the per-account render slots, and the expiry heap."""

    def __init__(
        self,
        *,
        retention_s: float,
        max_concurrent_renders: int | None,
        on_purge: Callable[[Job], None] | None = None,
    ) -> None:
        self._retention_s = retention_s
        self._cap = max_concurrent_renders
        self._on_purge = on_purge
        self._jobs: dict[str, Job] = {}
        self._expiry: list[tuple[float, str]] = []
        self._slots: dict[str, list[float]] = {}
        self._waiting: dict[str, list[float]] = {}
        """Per account, the start times of its renders queued behind the cap (a min-heap)."""
        self._tombstones: set[int] = set()

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        """The retained jobs (not purged yet), in creation order."""
        return iter(self._jobs.values())

    def render_cap_full(self, account: str, now: float) -> bool:
        """Whether ``account`` runs ``max_concurrent_renders`` renders at ``now`` (a new one would
        wait for a slot)."""
        if self._cap is None:
            return False
        slots = self._slots.get(account, [])
        return len(slots) >= self._cap and slots[0] > now

    def render_window(self, account: str, now: float, duration_s: float) -> tuple[float, float]:
        """Reserve a render slot: ``(start_at, end_at)`` for a new render of ``account``."""
        if self._cap is None:
            return now, now + duration_s
        slots = self._slots.setdefault(account, [])
        if len(slots) < self._cap:
            start = now
            heapq.heappush(slots, start + duration_s)
        else:
            start = max(now, slots[0])
            heapq.heapreplace(slots, start + duration_s)
            if start > now:
                heapq.heappush(self._waiting.setdefault(account, []), start)
        return start, start + duration_s

    def renders_waiting(self, account: str, now: float) -> int:
        """How many of ``account``'s renders wait behind the cap at ``now``."""
        waiting = self._waiting.get(account)
        while waiting and waiting[0] <= now:
            heapq.heappop(waiting)
        return len(waiting) if waiting else 0

    def next_render_slot_s(self, account: str) -> float:
        """When ``account``'s next render slot frees (its earliest running render ends)."""
        slots = self._slots.get(account)
        return slots[0] if slots else 0.0

    def add(self, job: Job, now: float) -> None:
        self.purge(now)
        self._jobs[job.job_id] = job
        heapq.heappush(self._expiry, (job.end_at + self._retention_s, job.job_id))

    def get(self, job_id: str, now: float) -> Job | None:
        """The job, or ``None`` if unknown or past retention."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if now >= job.end_at + self._retention_s:
            self.purge(now)
            return None
        return job

    def purge(self, now: float) -> int:
        """Forget every job past retention; returns how many."""
        purged = 0
        heap = self._expiry
        while heap and heap[0][0] <= now:
            _, job_id = heapq.heappop(heap)
            job = self._jobs.pop(job_id, None)
            if job is not None:
                purged += 1
                self._tombstones.add(_tombstone(job.account, job_id))
                if self._on_purge is not None:
                    self._on_purge(job)
        return purged

    def clean(self, job: Job) -> None:
        """Forget ``job`` now (its outputs stop serving); it answers ``cleaned`` from now on."""
        if self._jobs.pop(job.job_id, None) is not None:
            self._tombstones.add(_tombstone(job.account, job.job_id))

    def was_cleaned(self, job_id: str, account: str) -> bool:
        """Whether ``account`` had a job ``job_id`` that was purged or cleaned."""
        return _tombstone(account, job_id) in self._tombstones

    @property
    def tombstones(self) -> int:
        return len(self._tombstones)


def _tombstone(account: str, job_id: str) -> int:
    digest = hashlib.blake2b(f"{account}\0{job_id}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")
