"""What a test (or a benchmark) can read back: ``Simulator.stats()`` and ``GET /__sim__/stats``.

Shape of the stats dict::

    {
      "requests": {"POST /v1/video/from-template": 12, "GET /v1/jobs/{id}": 40, ...},
      "requests_total": 57,
      "rate_limited": 3,            # 429s served (limit and injected)
      "renders_started": 10,
      "renders_refused": 0,         # renders refused past the render cap (renders_over_cap)
      "renders_waiting_max": 1,     # the most renders queued behind the render cap at once
      "duplicate_renders": 0,       # renders beyond the first for one (template, variables)
      "renders_per_preview": {"<preview job id>": 1, ...},
      "faults": {"drop_after": 1, ...},                          # injected faults, by kind
      "videos": {"<render job id>": {"bytes": 10321, "sha256": "..."}},   # finished renders
      "uploads": {"count": 1, "bytes": 51013},
      "cleans": {"<job id>": 1, ...},   # DELETE /v1/jobs/{id}/clean answered, per job
      "webhooks": {"sent": 2, "failed": 0, "skipped": 0},
      "pictory_delivery": {'{"awsConnectionId": "c1"}': 3},  # Pictory-side delivery fields
                                    # (§6.3) as sent on the v2 storyboard routes, JSON → count
      "jobs": {"preview": 11, "render": 10, "transcription": 0, "live": 21},
      "templates": 1,
      "quota_minutes_used": {"<account>": 5.1}
    }
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, NamedTuple

from orchestrator.simulator.media import VideoDigest

PICTORY_DELIVERY_FIELDS = ("destinations", "awsConnectionId", "vimeoConnectionId")
"""The v2 storyboard body's delivery fields (§6.3; request-schema.md lists them, item shape
unpublished)."""


class Debit(NamedTuple):
    """AI credits a render was charged for one generation (``contract.ai_credits``)."""

    at: float
    source: str
    amount: float
    job_id: str


class Accounting:
    """Counters and the ledger of renders and their videos."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.rate_limited = 0
        self.renders_started = 0
        self.renders_refused = 0
        self.renders_waiting_max = 0
        self.duplicate_renders = 0
        self.renders_per_preview: Counter[str] = Counter()
        self.jobs_created: Counter[str] = Counter()
        self.upload_count = 0
        self.upload_bytes = 0
        self.webhooks: Counter[str] = Counter(sent=0, failed=0, skipped=0)
        self.minutes_used: dict[str, float] = {}
        self.credits_used: dict[str, float] = {}
        """AI credits spent per account (each render's ``aiCreditsUsed``, at its start)."""
        self.debits: dict[str, list[Debit]] = {}
        """Each account's AI-credit debits, oldest first (``GET /v1/aicredits/usage``)."""
        self.cleans: Counter[str] = Counter()
        self.pictory_delivery: Counter[str] = Counter()
        """The Pictory-side delivery fields (``destinations``, ``awsConnectionId``,
        ``vimeoConnectionId``) requests carried, as sorted JSON, counted."""
        self._render_keys: set[bytes] = set()
        self._videos: dict[str, tuple[float, VideoDigest]] = {}

    def count_request(self, route: str) -> None:
        self.requests[route] += 1

    def record_pictory_delivery(self, body: Mapping[str, Any]) -> None:
        """Keep what a v2 storyboard body asked Pictory to deliver to (§6.3); the simulator
        delivers nothing (no Vimeo, no S3 of Pictory's), it only records."""
        fields = {k: body[k] for k in PICTORY_DELIVERY_FIELDS if body.get(k) is not None}
        if fields:
            self.pictory_delivery[json.dumps(fields, sort_keys=True)] += 1

    def record_render(
        self,
        *,
        key: str,
        preview_id: str | None,
        account: str,
        video_minutes: float,
    ) -> None:
        """A render started. ``key`` identifies what it renders (template + variables…)."""
        self.renders_started += 1
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        if digest in self._render_keys:
            self.duplicate_renders += 1
        else:
            self._render_keys.add(digest)
        if preview_id is not None:
            self.renders_per_preview[preview_id] += 1
        self.minutes_used[account] = self.minutes_used.get(account, 0.0) + video_minutes

    def record_credits(
        self, account: str, job_id: str, at: float, spent: list[tuple[str, float]]
    ) -> float:
        """A render started at ``at`` that is debited ``spent`` (``(source, credits)`` each);
        returns its ``aiCreditsUsed``."""
        total = round(sum(amount for _, amount in spent), 3)
        if total:
            self.credits_used[account] = self.credits_used.get(account, 0.0) + total
            debits = self.debits.setdefault(account, [])
            debits.extend(Debit(at, source, amount, job_id) for source, amount in spent if amount)
        return total

    def record_video(self, job_id: str, end_at: float, video: VideoDigest) -> None:
        """A render that will complete at ``end_at`` with these bytes."""
        self._videos[job_id] = (end_at, video)

    def videos(self, now: float) -> dict[str, dict[str, Any]]:
        return {
            job_id: {"bytes": video.size, "sha256": video.sha256}
            for job_id, (end_at, video) in self._videos.items()
            if end_at <= now
        }

    def snapshot(
        self, *, now: float, faults: Mapping[str, int], live_jobs: int, templates: int
    ) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "rate_limited": self.rate_limited,
            "renders_started": self.renders_started,
            "renders_refused": self.renders_refused,
            "renders_waiting_max": self.renders_waiting_max,
            "duplicate_renders": self.duplicate_renders,
            "renders_per_preview": dict(self.renders_per_preview),
            "faults": dict(faults),
            "videos": self.videos(now),
            "uploads": {"count": self.upload_count, "bytes": self.upload_bytes},
            "cleans": dict(self.cleans),
            "pictory_delivery": dict(self.pictory_delivery),
            "webhooks": dict(self.webhooks),
            "jobs": {
                "preview": self.jobs_created["preview"],
                "render": self.jobs_created["render"],
                "transcription": self.jobs_created["transcription"],
                "live": live_jobs,
            },
            "templates": templates,
            "quota_minutes_used": {k: round(v, 3) for k, v in self.minutes_used.items()},
        }
