"""Every limit of one account shared by every worker using it, held in the database.

Requests: each worker's ``limits.RateLimiter`` spaces its own requests; when several workers use
one account, it also asks ``PgSharedRate.take`` for a turn before each request. The ``rates``
table holds, per account, when the account's next request may be sent (``next_at``, by the
database's clock) and the account's window guard (``guard_s``). Taking a turn is one atomic
statement: the turn is ``max(next_at, now)``, and ``next_at`` moves one spacing past it. The
spacing is the local limiter's rule for both of the account's limits at once, the larger wins::

    max((1 s + guard) / floor(max_rps), (60 s + guard) / floor(max_per_minute))

so whatever the number of workers, no 1-second window of the account holds more than
``floor(max_rps)`` requests and no 60-second window more than ``floor(max_per_minute)`` (the same
guarantee as one worker alone, see ``limits``). A worker that dies between taking a turn and
sending wastes that turn: the account runs under its limits, never over them.

The guard is learned for the account, not fixed: it starts at the limiter's first step for a
shared account (10 ms: 99 % of the rate, ``window_guard.SHARED_FIRST_GUARD_S``) and a 429 heard by
any worker widens it a step for every worker (``widen``: the limiter asks for the step after
the guard its turn was taken under, so the 429s of one burst, heard by several workers, widen
it once). The widening rides on the worker's next turn, so a
429 costs no round trip of its own; a pause for a 429 is the hearing worker's alone.

Each worker holds at most one turn at a time (it takes turns one request after another, inside
its limiter's queue), so turns are never reserved far ahead.

Renders: ``PgSharedRenders``, a row per slot of the account, leased (below).

The account is named by a digest of the API's base URL and the credentials' public part (the
user or client id, or a digest of the API key): no secret is stored.

While the database is away, turns and slots wait for it (``pool.Db``): the account's rate and
renders in flight cannot be shared without it, so no request that takes a turn is sent meanwhile.
"""

from __future__ import annotations

import itertools
import math

import anyio
import asyncpg

from orchestrator.clock import Clock
from orchestrator.ledger.pg.pool import Db
from orchestrator.ledger.pg.schema import Conn

SECOND_S = 1.0
MINUTE_S = 60.0


def _db(pool: asyncpg.Pool | Db, clock: Clock) -> Db:
    return pool if isinstance(pool, Db) else Db(pool, clock)


def per_window(limit: float) -> float:
    """What a window's length plus guard is divided by for the spacing: ``floor(limit)``, or
    ``limit`` itself under 1 (one request per 1/limit windows). ``api.limits.spacing_s``'s rule
    (a test holds the two together)."""
    count = math.floor(limit)
    return count if count >= 1 else limit


_SPACING = "GREATEST((1.0 + {g}) / $2::float8, COALESCE((60.0 + {g}) / $3::float8, 0.0))"
"""The account's spacing in seconds under guard ``{g}`` ($2, $3: ``per_window`` of the limits)."""

_TAKE_TURN = f"""
    INSERT INTO rates AS r (account, next_at, guard_s)
    VALUES ($1, clock_timestamp() + make_interval(secs => {_SPACING.format(g="$4::float8")}), $4)
    ON CONFLICT (account) DO UPDATE
        SET guard_s = GREATEST(r.guard_s, EXCLUDED.guard_s),
            next_at = GREATEST(r.next_at, clock_timestamp()) + make_interval(
                secs => {_SPACING.format(g="GREATEST(r.guard_s, EXCLUDED.guard_s)")})
    RETURNING extract(epoch FROM r.next_at)::float8 - {_SPACING.format(g="r.guard_s")} AS turn,
              extract(epoch FROM clock_timestamp())::float8 AS now,
              r.guard_s AS guard_s
"""
"""Take the account's ($1) next turn, its guard at least $4; returns the turn, now, the guard."""


class PgSharedRate:
    """``window_guard.SharedRate`` on the ``rates`` table."""

    def __init__(
        self,
        pool: asyncpg.Pool | Db,
        account: str,
        clock: Clock,
        *,
        max_rps: float,
        max_per_minute: float | None = None,
    ) -> None:
        """``max_rps``, ``max_per_minute``: the account's limits (``[limits]``)."""
        if max_rps <= 0 or (max_per_minute is not None and max_per_minute <= 0):
            raise ValueError(f"PgSharedRate: limits must be > 0: {max_rps}, {max_per_minute}")
        self._db = _db(pool, clock)
        self.account = account
        self._clock = clock
        self._per_second = float(per_window(max_rps))
        self._per_minute = None if max_per_minute is None else float(per_window(max_per_minute))
        self._wanted_guard_s = 0.0
        self.guard_s = 0.0
        """The account's guard when this worker last took a turn (0 before its first)."""
        self.turns = 0

    def spacing_s(self, guard_s: float) -> float:
        """The account's spacing between turns under ``guard_s`` (what ``take`` applies)."""
        spacing = (SECOND_S + guard_s) / self._per_second
        if self._per_minute is not None:
            spacing = max(spacing, (MINUTE_S + guard_s) / self._per_minute)
        return spacing

    def widen(self, guard_s: float) -> None:
        """Have the account's guard at least ``guard_s`` from this worker's next turn on."""
        self._wanted_guard_s = max(self._wanted_guard_s, guard_s)

    async def take(self) -> float:
        """Wait for this account's next turn; returns it (database time, seconds since the
        epoch). A try whose answer was lost wasted a turn: the account runs under its rate."""
        record = await self._db.fetchrow(
            _TAKE_TURN, self.account, self._per_second, self._per_minute, self._wanted_guard_s
        )
        assert record is not None  # INSERT ... RETURNING always returns the row
        turn, now = float(record["turn"]), float(record["now"])
        self.guard_s = float(record["guard_s"])
        self.turns += 1
        if turn > now:
            await self._clock.sleep(turn - now)
        return turn


_TAKE_SLOT = """
    WITH free AS MATERIALIZED (
        SELECT s.slot FROM render_slots s
        LEFT JOIN rows r ON r.batch_id = s.batch_id AND r.row_key = s.row_key
        WHERE s.account = $1 AND s.slot < $3
          AND (s.owner IS NULL
               OR (s.lease_until < clock_timestamp()
                   AND (s.row_key IS NULL
                        OR (s.batch_id = $5 AND s.row_key = $6)
                        OR r.status IS DISTINCT FROM 'pending'
                        OR s.taken_at + make_interval(secs => GREATEST(s.hold_s, $7))
                           < clock_timestamp())))
        ORDER BY (s.batch_id = $5 AND s.row_key = $6) IS TRUE DESC, s.slot
        LIMIT 1
        FOR UPDATE OF s SKIP LOCKED
    )
    UPDATE render_slots s SET owner = $2,
        lease_until = clock_timestamp() + make_interval(secs => $4),
        batch_id = $5, row_key = $6, taken_at = clock_timestamp(), hold_s = $7
    FROM free WHERE s.account = $1 AND s.slot = free.slot
    RETURNING s.slot
"""
"""Hold a slot of the account ($1) for the token $2 and the row ($5, $6) whose render is
expected to take $7 s: slots 0..$3-1, lease $4 s. Free: nobody's; or its lease ran out and its
row is this one (taken over), or finished, or unknown, or its render must be over (taken longer
ago than its own worker's expectation and ours)."""


class PgSharedRenders:
    """``stages.base.RenderSlots`` for workers sharing an account: at most ``max_renders``
    renders of the account in flight across all of them, plus this worker's own limit.

    A slot is a row of ``render_slots`` (``account``, ``slot`` 0..max-1) held with a lease,
    renewed with the worker's row leases (``renew``). Its ``owner`` is the token of one take,
    ``WORKER#N``: a take whose answer was lost is found again by its token, and a slot whose
    lease ran out and went to another is never freed by mistake. Entering waits for the local
    limiter, then for a free slot (looking again every ``poll_s``); leaving frees the slot.

    A render's slot names its row (``for_row``: ``batch_id``, ``row_key``), because a dead
    worker's render goes on at Pictory after its lease: its slot is not free when the lease
    expires but passes to the worker that takes the row over (which re-attaches to the render
    and takes the row's slot first), and is free once the row is no longer pending (done,
    failed, ambiguous) or, if nobody takes the row over, once its render must be over: a
    render's time after the slot was taken (``hold_s``, the longest the taking worker had held
    a slot, at least ``lease_s``, or the waiting worker's own, whichever is longer). Workers
    whose rows all wait for a slot cannot take rows over, so the slot must come free by itself.
    So the account holds no more than ``max_renders`` renders at Pictory, a dead worker's
    included, as long as its renders take no longer than those its workers saw.
    """

    def __init__(
        self,
        pool: asyncpg.Pool | Db,
        account: str,
        worker_id: str,
        clock: Clock,
        *,
        max_renders: int,
        lease_s: float,
        batch_id: int | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self._db = _db(pool, clock)
        self.account = account
        self._worker_id = worker_id
        self._clock = clock
        self._max = max_renders
        self._lease_s = lease_s
        self._batch_id = batch_id
        self._poll_s = poll_s
        self.longest_hold_s = 0.0
        """The longest this worker held a slot (a render's time, request to finish seen)."""
        self._local = anyio.CapacityLimiter(max_renders)
        self._made = False
        self._takes = itertools.count(1)
        self._held: list[str] = []
        """The tokens of the slots this worker holds."""
        self._since: dict[str, float] = {}
        """When each row's slot was taken (``for_row``), on the worker's clock."""

    def for_row(self, row_key: str) -> _RowSlot:
        """The slot of the render of ``row_key`` (of this worker's batch), held ``async with``."""
        return _RowSlot(self, row_key)

    async def __aenter__(self) -> None:
        await self.enter(None)

    async def __aexit__(self, *exc: object) -> None:
        await self.leave(None)

    async def enter(self, row_key: str | None) -> str:
        """Wait for the local limiter, then for a slot (``row_key``'s own first); its token."""
        await self._local.acquire()
        try:
            while True:
                token = await self._take(row_key)
                if token is not None:
                    self._since[token] = self._clock.now()
                    return token
                await self._clock.sleep(self._poll_s)
        except BaseException:
            self._local.release()
            raise

    async def leave(self, token: str | None) -> None:
        """Give back the slot of the take ``token`` (None: any this worker holds)."""
        since = self._since.pop(token, None) if token is not None else None
        if since is not None:
            self.longest_hold_s = max(self.longest_hold_s, self._clock.now() - since)
        try:
            # Given back even when cancelled; not waited for longer than the slot's lease, which
            # ends it anyway once no heartbeat renews it.
            with anyio.move_on_after(self._lease_s, shield=True):
                await self.give_back(token)
        finally:
            self._local.release()

    async def take(self, row_key: str | None = None) -> int | None:
        """Hold a free slot of the account, if there is one; its number, else None."""
        token = await self._take(row_key)
        if token is None:
            return None
        return int(
            await self._db.fetchval(
                "SELECT slot FROM render_slots WHERE account = $1 AND owner = $2",
                self.account,
                token,
            )
        )

    async def _take(self, row_key: str | None) -> str | None:
        if not self._made:
            await self._db.execute(
                """
                INSERT INTO render_slots (account, slot)
                SELECT $1, generate_series(0, $2 - 1) ON CONFLICT DO NOTHING
                """,
                self.account,
                self._max,
            )
            self._made = True
        token = f"{self._worker_id}#{next(self._takes)}"
        batch_id = self._batch_id if row_key is not None else None

        async def attempt(conn: Conn, retrying: bool) -> int | None:
            if retrying:  # the lost try may have taken a slot: it holds our token
                found = await conn.fetchval(
                    "SELECT slot FROM render_slots WHERE account = $1 AND owner = $2",
                    self.account,
                    token,
                )
                if found is not None:
                    return int(found)
            slot = await conn.fetchval(
                _TAKE_SLOT,
                self.account,
                token,
                self._max,
                self._lease_s,
                batch_id,
                row_key,
                max(self._lease_s, self.longest_hold_s),
            )
            return None if slot is None else int(slot)

        slot = await self._db.run(attempt)
        if slot is None:
            return None
        self._held.append(token)
        return token

    async def give_back(self, token: str | None = None) -> None:
        """Free the slot of the take ``token`` (None: one this worker holds), if this worker
        still holds it (a slot whose lease ran out may be another's by now)."""
        if token is None:
            if not self._held:
                return
            token = self._held[-1]
        if token not in self._held:
            return
        self._held.remove(token)
        await self._db.execute(
            "UPDATE render_slots SET owner = NULL, lease_until = NULL, batch_id = NULL, "
            "row_key = NULL WHERE account = $1 AND owner = $2",
            self.account,
            token,
        )

    async def renew(self) -> None:
        """Extend the lease of every slot this worker holds (its heartbeat)."""
        await self._db.execute(
            """
            UPDATE render_slots SET lease_until = clock_timestamp() + make_interval(secs => $3)
            WHERE account = $1 AND owner = ANY($2::text[])
            """,
            self.account,
            list(self._held),
            self._lease_s,
        )


class _RowSlot:
    """``PgSharedRenders.for_row``: one row's render slot, ``async with``."""

    def __init__(self, slots: PgSharedRenders, row_key: str) -> None:
        self._slots = slots
        self._row_key = row_key
        self._token: str | None = None

    async def __aenter__(self) -> None:
        self._token = await self._slots.enter(self._row_key)

    async def __aexit__(self, *exc: object) -> None:
        token, self._token = self._token, None
        await self._slots.leave(token)
