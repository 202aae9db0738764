"""Whether the run may start another row, and another render: signals, halts, windows, caps.

The pool asks ``Admission`` before it admits each row; the render stage asks it before it spends
money. Every reason to stop admitting is recorded in ``stop_reason`` (the first one wins) and sent
to the sink once.

- ``request_stop``: the first Ctrl-C / SIGTERM: stop admitting, drain what is in flight.
- halt policy (``--halt-after N`` or ``P%``): too many rows failed; the batch is probably broken.
- spend cap (``--max-renders N``): this run sends at most N render requests, to the first rows
  in manifest order: a row that will need a render is admitted only with a reserved render
  (``reserve_render``), so no preview is made that the cap could not render; a row that ends
  without using its reservation (it failed before its render) hands it to the next row.
- spend caps in the invoice's units (``--max-minutes N``, ``--max-credits N``): this session
  commits at most N video minutes (AI credits): a row is admitted only if what is committed
  (the real ``videoDuration``/``aiCreditsUsed`` of its finished renders, plus what each row in
  flight is expected to spend, ``run.cost``, until its render says) and what it is expected to
  spend fit; else it waits for rows in flight to settle, and when none is left the cap is
  reached. Until a render of the batch has said what it spent, one row at a time is admitted
  (the estimate is only an estimate: a first render tells what the rest will cost). A render
  sent whose spend is never told (failed, ambiguous) stays committed at its expected spend.
- window (``--window HH:MM-HH:MM`` / ``--until HH:MM``; ``HH:MM:SS`` also works): rows start
  only inside it, and near its end only if the observed row durations say they can finish in
  time.
- a dead network (``NetworkWatch``): no API answer for ``network_dead_after_s`` while requests
  keep failing to get through (DNS, connection refused): stop, rather than let every row retry on
  its own for minutes; nothing was sent, so every row resumes as it was.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio

from orchestrator.clock import Clock, local_time
from orchestrator.errors import UserError
from orchestrator.events import Sink
from orchestrator.input.rows import RowJob
from orchestrator.run.cost import CostModel, Spend

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


@dataclass(frozen=True)
class HaltPolicy:
    """Stop admitting after ``count`` failed rows, or once ``percent`` of finished rows failed."""

    count: int | None = None
    percent: float | None = None
    min_finished_for_percent: int = 20

    @classmethod
    def parse(cls, text: str) -> HaltPolicy:
        text = text.strip()
        try:
            if text.endswith("%"):
                pct = float(text[:-1])
                if not 0 < pct <= 100:
                    raise ValueError
                return cls(percent=pct)
            count = int(text)
            if count < 1:
                raise ValueError
            return cls(count=count)
        except ValueError:
            raise UserError(
                f"--halt-after {text!r}: give a number of failed rows (e.g. 10) or a share of "
                "finished rows (e.g. 5%)"
            ) from None

    def tripped(self, finished: int, failed: int) -> bool:
        if self.count is not None and failed >= self.count:
            return True
        return (
            self.percent is not None
            and finished >= self.min_finished_for_percent
            and failed * 100.0 / finished >= self.percent
        )


@dataclass(frozen=True)
class Window:
    """A daily time-of-day window; ``start`` None means "from now" (``--until``). ``zone``: the
    IANA time zone its times are read in (None: this machine's), so workers in other zones agree;
    the seconds it reports are real seconds, across daylight-saving changes."""

    start: dt.time | None
    end: dt.time
    zone: str | None = None

    @classmethod
    def parse(cls, text: str, *, option: str = "--window", zone: str | None = None) -> Window:
        if zone is not None:
            zone_info(zone, option)
        if option == "--until":
            return cls(start=None, end=_parse_hhmm(text, option), zone=zone)
        start_text, sep, end_text = text.partition("-")
        if not sep:
            raise UserError(f"{option} {text!r}: write it as HH:MM-HH:MM, e.g. 22:00-06:30")
        return cls(
            start=_parse_hhmm(start_text, option), end=_parse_hhmm(end_text, option), zone=zone
        )

    def now(self, clock: Clock) -> dt.datetime:
        """``clock``'s time in the window's zone (aware), or this machine's (naive)."""
        if self.zone is None:
            return local_time(clock)
        return dt.datetime.fromtimestamp(clock.wall_s(), zone_info(self.zone))

    def seconds_until_open(self, now: dt.datetime) -> float:
        """0 inside the window, else the wait until it next opens."""
        if self.start is None or self._inside(now.time()):
            return 0.0
        opens = dt.datetime.combine(now.date(), self.start, now.tzinfo)
        if opens <= now:
            opens = dt.datetime.combine(now.date() + dt.timedelta(days=1), self.start, now.tzinfo)
        return _real_seconds(now, opens)

    def seconds_left(self, now: dt.datetime) -> float:
        """Seconds until the window closes (only meaningful inside it)."""
        closes = dt.datetime.combine(now.date(), self.end, now.tzinfo)
        if closes <= now:
            closes = dt.datetime.combine(now.date() + dt.timedelta(days=1), self.end, now.tzinfo)
        return _real_seconds(now, closes)

    def _inside(self, t: dt.time) -> bool:
        assert self.start is not None
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # crosses midnight


def _real_seconds(start: dt.datetime, end: dt.datetime) -> float:
    """Elapsed seconds between two wall-clock readings of one zone (aware: through UTC, so a
    daylight-saving night counts its real 23 or 25 hours; naive: as the clock reads)."""
    if start.tzinfo is None:
        return (end - start).total_seconds()
    return end.timestamp() - start.timestamp()


def zone_info(name: str, option: str = "--time-zone") -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Paris``), or a ``UserError`` saying what to give."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"{option}: {name!r} is not an IANA time zone; use a name such as Europe/Paris or "
            "America/New_York"
        ) from None


def _parse_hhmm(text: str, option: str) -> dt.time:
    match = _HHMM.match(text.strip())
    if match is None:
        raise UserError(
            f"{option}: {text!r} is not a time of day; use HH:MM (24 h), e.g. 06:30, or HH:MM:SS"
        )
    return dt.time(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


class Admission:
    def __init__(
        self,
        clock: Clock,
        sink: Sink,
        *,
        halt: HaltPolicy | None = None,
        max_renders: int | None = None,
        window: Window | None = None,
        assumed_row_s: float = 600.0,
        max_minutes: float | None = None,
        max_credits: float | None = None,
        cost: CostModel | None = None,
    ) -> None:
        self._clock = clock
        self._sink = sink
        self._halt = halt
        self._max_renders = max_renders
        self._max_minutes = max_minutes
        self._max_credits = max_credits
        self._cost = cost or CostModel(1.0)
        self._holds: dict[str, Spend] = {}
        """Rows in flight holding their expected spend (for the spend caps), until told."""
        self._sent: set[str] = set()
        """Of those, the rows whose render was sent."""
        self.committed = Spend()
        """What this session's settled renders spent (or, never told, were expected to)."""
        self._window = window
        self.window = window
        """The daily window rows start in (None: any time)."""
        self._assumed_row_s = assumed_row_s
        self.stop_reason: str | None = None
        self.renders_sent = 0
        self._reserved: set[str] = set()
        """Rows in flight holding a render of the spend cap they have not sent yet."""
        self._released = anyio.Event()
        self.finished = 0
        self.failed = 0
        self._durations_s: list[float] = []

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self._sink.emit("stop_admitting", reason=reason)

    def row_finished(self, status: str, duration_s: float | None) -> None:
        self.finished += 1
        if status in ("failed", "ambiguous"):
            self.failed += 1
        elif status == "done" and duration_s is not None:
            self._durations_s.append(duration_s)
            del self._durations_s[:-200]  # a recent window is what predicts the next rows
        if self._halt is not None and self._halt.tripped(self.finished, self.failed):
            self.request_stop(
                f"halt policy: {self.failed} of {self.finished} finished rows failed; "
                "the batch looks broken (template, account?); fix it and resume"
            )

    @property
    def _spend_capped(self) -> bool:
        return self._max_minutes is not None or self._max_credits is not None

    async def reserve_render(self, row: str, job: RowJob | None = None) -> bool:
        """Before admitting a row that will need a render: reserve one of the spend cap's
        renders for it, and (``--max-minutes``, ``--max-credits``) what ``job`` is expected to
        spend, waiting while rows in flight hold the rest; False once a cap is spent (every
        render sent, or promised to a row in flight that will send it)."""
        if self._max_renders is None and not self._spend_capped:
            return True
        expected = self._cost.expected(job) if self._spend_capped else Spend()
        while (full := self._full(expected)) is not None:
            if not self._reserved and not self._holds:
                self._cap_reached(full)
                return False
            await self._released.wait()
            if self.stop_reason is not None:
                return False
            if self._spend_capped:
                expected = self._cost.expected(job)  # a render finished meanwhile says more
        if self._max_renders is not None:
            self._reserved.add(row)
        if self._spend_capped:
            self._holds[row] = expected
        return True

    def _full(self, expected: Spend) -> str | None:
        """Which cap one more row expected to spend ``expected`` would break, if any."""
        renders = len(self._reserved) + self.renders_sent
        if self._max_renders is not None and renders >= self._max_renders:
            return "renders"
        if not self._spend_capped:
            return None
        if self._holds and self._cost.observed is None:
            return "probe"  # one row at a time until a render of the batch says what it spent
        held = sum(self._holds.values(), self.committed) + expected
        if self._max_minutes is not None and held.minutes > self._max_minutes + 1e-9:
            return "minutes"
        if self._max_credits is not None and held.credits > self._max_credits + 1e-9:
            return "credits"
        return None

    def render_settled(self, row: str, video_s: float | None, credits: float | None) -> None:
        """``row``'s render finished and said what it spent (None: not said): that replaces
        what it was expected to spend, and the rows to come are expected to spend alike."""
        self._cost.learn(video_s, credits)
        expected = self._holds.pop(row, None)
        if expected is None:
            return
        self._sent.discard(row)
        real = Spend(
            expected.video_s if video_s is None else video_s,
            expected.credits if credits is None else credits,
        )
        self.committed = self.committed + real
        self._wake()

    def row_left(self, row: str) -> None:
        """The row's task ended: a reservation it did not use goes to the next row, and a feed
        waiting for one looks again (the cap may also be spent now)."""
        if self._max_renders is None and not self._spend_capped:
            return
        self._reserved.discard(row)
        expected = self._holds.pop(row, None)
        if expected is not None and row in self._sent:  # sent, never told: count what it may cost
            self.committed = self.committed + expected
        self._sent.discard(row)
        self._wake()

    def _wake(self) -> None:
        released, self._released = self._released, anyio.Event()
        released.set()

    def take_render(self, row: str) -> bool:
        """May this run send one more render request (for ``row``)? Counts it when yes."""
        if self._max_renders is not None and (
            row not in self._reserved
            and len(self._reserved) + self.renders_sent >= self._max_renders
        ):
            self._cap_reached()
            return False
        self._reserved.discard(row)
        self.renders_sent += 1
        if row in self._holds:
            self._sent.add(row)
        return True

    def _cap_reached(self, which: str = "renders") -> None:
        held = self.committed
        if which in ("minutes", "credits"):
            spent, cap, unit = (
                (held.minutes, self._max_minutes, "video minutes")
                if which == "minutes"
                else (held.credits, self._max_credits, "AI credits")
            )
            over = "; renders spent more than estimated" if cap is not None and spent > cap else ""
            self.request_stop(
                f"spend cap: {spent:.1f} {unit} committed, the next row would pass "
                f"--max-{which} {cap:g}{over}"
            )
        else:
            self.request_stop(f"spend cap: {self._max_renders} renders sent (--max-renders)")

    def expected_row_s(self) -> float:
        if not self._durations_s:
            return self._assumed_row_s
        ordered = sorted(self._durations_s)
        return ordered[int(0.9 * (len(ordered) - 1))]  # p90: near the end, be cautious

    async def admit(self) -> bool:
        """Wait for the window if needed; False when no further row should start."""
        if self.stop_reason is not None:
            return False
        if self._window is None:
            return True
        wait_s = self._window.seconds_until_open(self._window.now(self._clock))
        if wait_s > 0:
            self._sink.emit("waiting_for_window", wait_s=round(wait_s))
            await self._clock.sleep(wait_s)
            if self.stop_reason is not None:
                return False
        left_s = self._window.seconds_left(self._window.now(self._clock))
        if left_s < self.expected_row_s():
            self.request_stop(
                f"window closes in {left_s / 60:.0f} min and a row takes about "
                f"{self.expected_row_s() / 60:.0f} min; resume in the next window"
            )
            return False
        return True


class NetworkWatch:
    """Tells a dead network from a flaky one, from two signals: requests that could not be
    delivered (``undelivered``, from the client's retry hook) and answers of any kind
    (``answered``). Dead = at least ``min_failures`` undelivered requests and no answer for
    ``dead_after_s``."""

    def __init__(self, clock: Clock, dead_after_s: float, *, min_failures: int = 3) -> None:
        self._clock = clock
        self.dead_after_s = dead_after_s
        self._min_failures = min_failures
        self._last_answer_at = clock.now()
        self._failures = 0

    def answered(self) -> None:
        self._last_answer_at = self._clock.now()
        self._failures = 0

    def undelivered(self) -> None:
        self._failures += 1

    def dead(self) -> bool:
        silent_s = self._clock.now() - self._last_answer_at
        return self._failures >= self._min_failures and silent_s >= self.dead_after_s
