"""One account's request rate shared by every worker using it, held in the database.

Each worker's ``limits.RateLimiter`` spaces its own requests; when several workers use one
account, it also asks ``PgSharedRate.take`` for a turn before each request. The ``rates`` table
holds, per account, when the account's next request may be sent (``next_at``, by the database's
clock). Taking a turn is one atomic statement: the turn is ``max(next_at, now)``, and ``next_at``
moves one spacing past it. The spacing is the local limiter's, ``(1 s + guard) / floor(R)``, so
whatever the number of workers, no 1-second window of the account holds more than ``floor(R)``
requests (the same guarantee as one worker alone, see ``limits``). A worker that dies between
taking a turn and sending wastes that turn: the account runs under R, never over it.

Each worker holds at most one turn at a time (it takes turns one request after another, inside
its limiter's queue), so turns are never reserved far ahead.

The account is named by a digest of the API's base URL and the credentials' public part (the
user or client id, or a digest of the API key): no secret is stored.
"""

from __future__ import annotations

import hashlib

import asyncpg

from orchestrator.clock import Clock
from orchestrator.config import Credentials
from orchestrator.limits import _spacing_s as spacing_s  # the local limiter's spacing, exactly

SECOND_S = 1.0


def account_key(base_url: str, credentials: Credentials) -> str:
    """A stable name for the account, holding no secret."""
    if credentials.api_key is not None:
        who = "key:" + hashlib.sha256(credentials.api_key.get_secret_value().encode()).hexdigest()
    else:
        client = credentials.client_id.get_secret_value() if credentials.client_id else ""
        who = f"user:{credentials.user_id}:" + hashlib.sha256(client.encode()).hexdigest()
    return hashlib.sha256(f"{base_url}|{who}".encode()).hexdigest()[:24]


class PgSharedRate:
    """``limits.SharedRate`` on the ``rates`` table."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        account: str,
        clock: Clock,
        *,
        max_rps: float,
        window_guard_s: float = 0.05,
    ) -> None:
        self._pool = pool
        self.account = account
        self._clock = clock
        self.interval_s = spacing_s(max_rps, SECOND_S, window_guard_s)
        self.turns = 0

    async def take(self) -> float:
        """Wait for this account's next turn; returns it (database time, seconds since the
        epoch)."""
        record = await self._pool.fetchrow(
            """
            INSERT INTO rates AS r (account, next_at)
            VALUES ($1, clock_timestamp() + make_interval(secs => $2))
            ON CONFLICT (account) DO UPDATE
                SET next_at = GREATEST(r.next_at, clock_timestamp()) + make_interval(secs => $2)
            RETURNING extract(epoch FROM r.next_at)::float8 - $2 AS turn,
                      extract(epoch FROM clock_timestamp())::float8 AS now
            """,
            self.account,
            self.interval_s,
        )
        assert record is not None  # INSERT ... RETURNING always returns the row
        turn, now = float(record["turn"]), float(record["now"])
        self.turns += 1
        if turn > now:
            await self._clock.sleep(turn - now)
        return turn
