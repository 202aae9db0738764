"""The account's quota as Pictory publishes it: video minutes and AI credits, used of the limit.

``GET /v1/quota`` answers (docs.pictory.ai "Get Current Quota" [doc]) a bare object of four
entries, each ``{"used", "limit"}`` in the current billing term: ``videoMinutes``,
``transcriptionMinutes``, ``elevenLabsVoiceOverMinutes`` and ``aiCredits``; an enveloped answer
(``data``) is read too (``PictoryClient.quota``). When it has no ``aiCredits``, this month's
``GET /v1/aicredits/usage`` ("Get AI Credits Usage" [doc]: a bare list of transactions, each
``type`` ``credit`` or ``debit`` with an ``amount``) gives what was granted and spent this month
([choice]: the balance is taken as granted − spent; the page names no balance).

An account that does not publish them (404 or 403: keys or plans without the page) is no error:
``Quota.published`` is False and the estimate stands alone ("quota not published for this
account"). Anything else (no answer, 5xx after retries) raises as any call does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.api.client import PictoryClient
from orchestrator.errors import ApiError

UNPUBLISHED_STATUSES = frozenset({403, 404})


@dataclass(frozen=True)
class Allowance:
    """One quota entry: ``used`` of ``limit`` (``limit`` None: the answer gave none)."""

    used: float
    limit: float | None

    @property
    def left(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - self.used)

    def text(self, unit: str) -> str:
        if self.limit is None:
            return f"{_num(self.used)} {unit} used"
        return f"{_num(self.left or 0.0)} of {_num(self.limit)} {unit} left"


@dataclass(frozen=True)
class Quota:
    """What the account publishes; ``published`` False when it answered 404/403."""

    published: bool = True
    video_minutes: Allowance | None = None
    ai_credits: Allowance | None = None
    ai_credits_month: tuple[float, float] | None = None
    """``(granted, spent)`` this month, from ``/v1/aicredits/usage`` (when the quota lacks
    ``aiCredits``)."""

    def line(self) -> str:
        """``quota: 14302 of 14400 video minutes left, 21310 of 22000 AI credits left``."""
        if not self.published:
            return "quota: not published for this account (GET /v1/quota answered 404/403)"
        parts = [
            self.video_minutes.text("video minutes")
            if self.video_minutes
            else "video minutes not given"
        ]
        if self.ai_credits is not None:
            parts.append(self.ai_credits.text("AI credits"))
        elif self.ai_credits_month is not None:
            granted, spent = self.ai_credits_month
            parts.append(f"AI credits this month: {_num(granted)} granted, {_num(spent)} spent")
        return "quota: " + ", ".join(parts)

    @property
    def credits_left(self) -> float | None:
        if self.ai_credits is not None:
            return self.ai_credits.left
        if self.ai_credits_month is not None:
            granted, spent = self.ai_credits_month
            return max(0.0, granted - spent)
        return None


async def read_quota(client: PictoryClient) -> Quota:
    """The account's quota (see the module docstring); no billable call."""
    try:
        answer = await client.quota()
    except ApiError as exc:
        if exc.status in UNPUBLISHED_STATUSES:
            return Quota(published=False)
        raise
    quota = parse_quota(answer)
    if quota.ai_credits is None:
        try:
            usage = await client.ai_credit_usage()
        except ApiError as exc:
            if exc.status not in UNPUBLISHED_STATUSES:
                raise
        else:
            quota = Quota(video_minutes=quota.video_minutes, ai_credits_month=month_usage(usage))
    return quota


def parse_quota(answer: Any) -> Quota:
    """A ``GET /v1/quota`` answer (bare or its ``data``), tolerant of missing entries."""
    answer = answer if isinstance(answer, dict) else {}
    return Quota(
        video_minutes=_allowance(answer.get("videoMinutes")),
        ai_credits=_allowance(answer.get("aiCredits")),
    )


def month_usage(transactions: Any) -> tuple[float, float] | None:
    """``(granted, spent)`` of a month's ``/v1/aicredits/usage`` transactions."""
    if not isinstance(transactions, list):
        return None
    granted = spent = 0.0
    for item in transactions:
        amount = item.get("amount") if isinstance(item, dict) else None
        if not isinstance(amount, int | float) or isinstance(amount, bool):
            continue
        if item.get("type") == "credit":
            granted += amount
        elif item.get("type") == "debit":
            spent += amount
    return granted, spent


def _allowance(entry: Any) -> Allowance | None:
    if not isinstance(entry, dict):
        return None
    used, limit = _number(entry.get("used")), _number(entry.get("limit"))
    return None if used is None else Allowance(used, limit)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
