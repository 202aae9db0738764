"""AI-credit usage as an API-key account reads it, beside ``routes_lookup``.

``GET /v1/aicredits/usage[?month=M[&year=Y]]`` → a bare list of ``{"transactionId", "type",
"amount", "source", "description", "plan", "transactionDate"}``, newest first; ``year``
without ``month`` is 400 ``INVALID_REQUEST`` [doc "Get AI Credits Usage"]: one ``debit`` per AI
generation a render was charged for as it started (``source`` ``Text-to-Image``,
``AI Avatar`` as in the doc's example; [choice] ``Text-to-Video`` for an AI video), and a
``credit`` (``Monthly Reset``, as the doc's) of the ``quota_ai_credits`` setting on the
month's first day, so that what the month granted less what it spent is what ``GET
/v1/quota`` has left ([choice]); months in the future or over 12 months back hold nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from orchestrator.contract import ai_credits
from orchestrator.simulator.answers import ApiProblem, json_response
from orchestrator.simulator.core import Simulator
from orchestrator.simulator.routes_api import CURRENT_ACCOUNT, SIM_KEY

AI_CREDITS_HISTORY_MONTHS = 12
DEBIT_DESCRIPTIONS = {
    ai_credits.IMAGE: "Credits consumed by a text-to-image generation",
    ai_credits.VIDEO: "Credits consumed by a text-to-video generation",
    ai_credits.AVATAR: "Credits consumed by an AI avatar generation",
}
"""A debit's ``description`` by ``source`` (the doc example's for images and avatars)."""


def _sim(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


def _iso(timestamp_s: float) -> str:
    moment = datetime.fromtimestamp(timestamp_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _month(query: Mapping[str, str], now: datetime) -> tuple[int, int]:
    raw_year, raw_month = query.get("year"), query.get("month")
    if raw_year is not None and raw_month is None:
        raise ApiProblem(400, "INVALID_REQUEST", "'month' is required when 'year' is given")
    year, month = now.year, now.month
    if raw_year is not None:
        if not raw_year.isdigit():
            raise ApiProblem(400, "INVALID_REQUEST", "'year' must be a year, e.g. 2026")
        year = int(raw_year)
    if raw_month is not None:
        if not raw_month.isdigit() or not 1 <= int(raw_month) <= 12:
            raise ApiProblem(400, "INVALID_REQUEST", "'month' must be a number from 1 to 12")
        month = int(raw_month)
    return year, month


async def ai_credits_usage(request: web.Request) -> web.Response:
    """``GET /v1/aicredits/usage`` (404 without ``quota_published``, as ``GET /v1/quota``)."""
    sim, account = _sim(request), CURRENT_ACCOUNT.get()
    if not sim.settings.quota_published:
        raise ApiProblem(404, "QUOTA_NOT_PUBLISHED", "this account publishes no AI-credit usage")
    now = datetime.fromtimestamp(sim.now(), UTC)
    year, month = _month(request.query, now)
    months_back = (now.year - year) * 12 + now.month - month
    if not 0 <= months_back < AI_CREDITS_HISTORY_MONTHS:
        return json_response([])
    first_day = datetime(year, month, 1, tzinfo=UTC)
    grant = _transaction(
        first_day.timestamp(),
        f"{account}\0{year}-{month}",
        type="credit",
        amount=sim.settings.quota_ai_credits,
        source="Monthly Reset",
        description="Credits reset at the start of the billing cycle",
    )
    spent = [
        _transaction(
            debit.at,
            f"{account}\0{debit.job_id}\0{i}",
            type="debit",
            amount=debit.amount,
            source=debit.source,
            description=DEBIT_DESCRIPTIONS.get(debit.source, f"Credits consumed by {debit.source}"),
        )
        for i, debit in enumerate(sim.accounting.debits.get(account, ()))
        if _month_of(debit.at) == (year, month)
    ]
    return json_response([*reversed(spent), grant])


def _month_of(at_s: float) -> tuple[int, int]:
    at = datetime.fromtimestamp(at_s, UTC)
    return at.year, at.month


def _transaction(at_s: float, seed: str, **fields: Any) -> dict[str, Any]:
    """One usage transaction (the doc example's fields; its id: the time, then a digest)."""
    at = datetime.fromtimestamp(at_s, UTC)
    digest = hashlib.sha256(seed.encode()).hexdigest()[:32]
    amount = fields["amount"]
    fields["amount"] = int(amount) if amount == int(amount) else amount
    return {
        "transactionId": f"{at:%Y%m%d%H%M%S}{at.microsecond // 1000:03d}{digest}",
        **fields,
        "plan": "Simulator",
        "transactionDate": _iso(at_s),
    }
