"""The webhook receiver's budget per source: a token bucket per remote address, charged only
for callbacks that carry the secret (why: ``orchestrator.api.webhooks``' docstring). On the
``Clock``, so tests run it on virtual time.
"""

from __future__ import annotations

from orchestrator.clock import Clock

MAX_CALLBACKS_PER_S = 200.0
"""Callbacks with the secret a source may send a second, sustained (a batch gets one per job)."""
MAX_CALLBACK_BURST = 400
"""... and at once: more jobs than a batch has in flight may finish together."""
MAX_BUDGET_SOURCES = 1024
"""Sources whose budget is remembered before those refilled to the full burst are forgotten."""


class SourceBudgets:
    """A token bucket per source: ``rate_per_s`` tokens a second, up to ``burst``; each callback
    takes one. A bucket refilled to the full burst is the same as none, so those are forgotten
    once more than ``max_sources`` are remembered."""

    def __init__(
        self,
        clock: Clock,
        *,
        rate_per_s: float = MAX_CALLBACKS_PER_S,
        burst: int = MAX_CALLBACK_BURST,
        max_sources: int = MAX_BUDGET_SOURCES,
    ) -> None:
        self._clock = clock
        self._rate_per_s = rate_per_s
        self._burst = float(burst)
        self._max_sources = max_sources
        self._left: dict[str, tuple[float, float]] = {}
        """Source → (tokens left, when counted)."""

    @property
    def sources(self) -> int:
        """How many sources' budgets are remembered."""
        return len(self._left)

    def take(self, source: str) -> bool:
        """One token from ``source``'s bucket; False (and nothing taken) when it is empty."""
        now = self._clock.now()
        if source not in self._left and len(self._left) >= self._max_sources:
            self._left = {
                s: (t, at)
                for s, (t, at) in self._left.items()
                if self._tokens(t, at, now) < self._burst
            }
        tokens = self._tokens(*self._left.get(source, (self._burst, now)), now)
        taken = tokens >= 1.0
        self._left[source] = (tokens - 1.0 if taken else tokens, now)
        return taken

    def _tokens(self, left: float, at: float, now: float) -> float:
        return min(self._burst, left + (now - at) * self._rate_per_s)
