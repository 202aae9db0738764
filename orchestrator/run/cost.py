"""A batch's cost in the invoice's units (video minutes, AI credits): the estimate a session
prints before it starts, the quota check (``--check-quota``), and what a row is expected to
spend while the spend caps (``--max-minutes``, ``--max-credits``, ``run.admission``) count it.

Expected spend of a row ([choice], docs/cost.md): once renders of this batch have finished, the
mean of what they really spent (``videoDuration``, ``aiCreditsUsed``) per row; before that, the
row's own offline estimate (``input.estimate``: its template's or script's length, the AI
features its payload asks for), and for a row whose length is not known offline ``[run]
assumed_video_minutes``.

May import what ``run`` may.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import anyio

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.quota import Quota, read_quota
from orchestrator.api.retry import RetryPolicy
from orchestrator.clock import RealClock
from orchestrator.config import Config, Credentials
from orchestrator.errors import ApiError, CredentialsRefusedError, QuotaError
from orchestrator.events import Sink
from orchestrator.input.estimate import BatchEstimate, Estimator, estimate_rows
from orchestrator.input.rows import RowJob, RowLister
from orchestrator.ledger.records import BatchChoices
from orchestrator.ledger.row_state import RowState
from orchestrator.report.results import number_cell


@dataclass(frozen=True)
class Spend:
    """Video seconds and AI credits (one render's, or a sum)."""

    video_s: float = 0.0
    credits: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.video_s + other.video_s, self.credits + other.credits)

    @property
    def minutes(self) -> float:
        return self.video_s / 60.0


class CostModel:
    """What a row is expected to spend (see the module docstring), learning from renders as
    they finish (``learn``), seeded with the batch's renders already finished."""

    def __init__(self, assumed_minutes: float, finished: Iterable[RowState] = ()) -> None:
        self._assumed_s = assumed_minutes * 60.0
        self._estimator = Estimator()
        self._seen = 0
        self._seen_s = 0.0
        self._seen_credits = 0.0
        for state in finished:
            if state.video_url is not None and state.duration_s is not None:
                self.learn(state.duration_s, state.credits)

    def learn(self, video_s: float | None, credits: float | None) -> None:
        """A render finished and said what it spent (None: not said)."""
        if video_s is None:
            return
        self._seen += 1
        self._seen_s += video_s
        self._seen_credits += credits or 0.0

    @property
    def observed(self) -> Spend | None:
        """The mean spend of the renders seen, or None before the first."""
        if not self._seen:
            return None
        return Spend(self._seen_s / self._seen, self._seen_credits / self._seen)

    def expected(self, job: RowJob | None) -> Spend:
        """What ``job`` (None: a row of unknown content) is expected to spend."""
        observed = self.observed
        if observed is not None:
            return observed
        if job is None:
            return Spend(self._assumed_s)
        row = self._estimator.row(job)
        return Spend(row.video_s if row.video_s is not None else self._assumed_s, row.credits)


@dataclass(frozen=True)
class Estimate:
    """The estimate of a batch's remaining rows: ``rows`` to render, ``minutes`` and
    ``credits`` expected, and ``basis`` (how it was made, for people)."""

    rows: int
    minutes: float
    credits: float
    basis: str

    def capped(self, choices: BatchChoices) -> Estimate:
        """What a session under ``choices``' caps can spend at most: ``--max-renders`` rows,
        ``--max-minutes`` video minutes, ``--max-credits`` AI credits."""
        rows = self.rows if choices.max_renders is None else min(self.rows, choices.max_renders)
        share = rows / self.rows if self.rows else 0.0
        minutes, credits = self.minutes * share, self.credits * share
        if choices.max_minutes is not None:
            minutes = min(minutes, choices.max_minutes)
        if choices.max_credits is not None:
            credits = min(credits, choices.max_credits)
        return Estimate(rows, minutes, credits, self.basis)

    def line(self) -> str:
        """``estimate: 25 videos × ~0.3 min = ~7.5 video minutes, ~0 AI credits (template
        length)``."""
        per_row = self.minutes / self.rows if self.rows else 0.0
        return (
            f"estimate: {self.rows} video(s) × ~{per_row:.1f} min = ~{self.minutes:.1f} video "
            f"minutes, ~{number_cell(round(self.credits, 1))} AI credits ({self.basis})"
        )


def estimate(remaining: BatchEstimate | int, model: CostModel, assumed_minutes: float) -> Estimate:
    """The ``Estimate`` of the rows left: their offline ``BatchEstimate`` (or just how many),
    replaced by what earlier renders of the batch really spent once there are any."""
    rows = remaining if isinstance(remaining, int) else remaining.rows
    observed = model.observed
    if observed is not None:
        return Estimate(
            rows,
            rows * observed.minutes,
            rows * observed.credits,
            "the mean of the batch's finished renders",
        )
    if isinstance(remaining, int):
        return Estimate(rows, rows * assumed_minutes, 0.0, "[run] assumed_video_minutes a row")
    bases = sorted(b for b in remaining.bases if b != "unknown")
    basis = ", ".join({"template": "template length"}.get(b, f"{b} length") for b in bases)
    if remaining.unknown:
        basis += (", " if basis else "") + "[run] assumed_video_minutes for rows of unknown length"
    return Estimate(
        rows, remaining.minutes(assumed_minutes), remaining.credits, basis or "no rows left"
    )


def check_fits(est: Estimate, quota: Quota) -> None:
    """``--check-quota``: refuse (``QuotaError``, one line with the figures) a batch whose
    estimate cannot fit what the account has left. An unpublished quota, or an entry the answer
    lacks, is not checked."""
    minutes = quota.video_minutes
    if minutes is not None and minutes.left is not None and est.minutes > minutes.left:
        raise QuotaError(
            f"--check-quota: the batch needs about {est.minutes:.1f} video minutes "
            f"({est.rows} videos × {est.minutes / max(est.rows, 1):.2f} min) but the account "
            f"has {minutes.left:.1f} of {minutes.limit:g} left; render fewer rows "
            "(--max-minutes, --max-renders) or raise the plan's quota"
        )
    credits_left = quota.credits_left
    if credits_left is not None and est.credits > credits_left:
        raise QuotaError(
            f"--check-quota: the batch needs about {est.credits:.1f} AI credits but the account "
            f"has {credits_left:.1f} left; render fewer rows (--max-credits) or add AI credits"
        )


QUOTA_WAIT_S = 5.0
"""How long the start of a run waits for the quota it prints (without ``--check-quota``, which
waits as any request does): a courtesy, never a reason to hold the batch up."""


@dataclass(frozen=True)
class CostPlan:
    """A session's cost model and the estimate of its batch's rows left (None: not made, a
    shared batch's worker without ``--check-quota``)."""

    model: CostModel
    estimate: Estimate | None


def plan(
    states: Iterable[RowState],
    rows: RowLister | None,
    total: int | None,
    assumed_minutes: float,
) -> CostPlan:
    """One pass over the batch's row ``states`` (done rows, and what their renders spent), then
    one over its ``rows`` (a run directory's manifest) for the offline estimate of the rest; a
    shared batch has only its ``total`` (None: no estimate). Blocking: run it in a thread."""
    done: set[str] = set()
    finished: list[RowState] = []
    for state in states:
        if state.status == "done":
            done.add(state.row)
        if state.video_url is not None and state.duration_s is not None:
            finished.append(state)
    model = CostModel(assumed_minutes, finished)
    remaining: BatchEstimate | int | None = None
    if rows is not None:
        remaining = estimate_rows(rows(), frozenset(done))
    elif total is not None:
        remaining = max(0, total - len(done))
    if remaining is None:
        return CostPlan(model, None)
    return CostPlan(model, estimate(remaining, model, assumed_minutes))


async def announce(
    client: PictoryClient,
    cost: CostPlan,
    sink: Sink,
    *,
    quota: bool,
    check: bool,
    wait_s: float = QUOTA_WAIT_S,
    caps: BatchChoices | None = None,
) -> None:
    """Say the estimate (event ``estimate``) and, when ``quota`` (or ``check``), the account's
    quota beside it (event ``quota``); with ``check`` (``--check-quota``) refuse a batch that
    cannot fit (at most what the spend ``caps`` let the session spend). A quota that cannot be
    read is said (``quota_unread``) and, without ``check``, never stops the run, nor holds it
    up longer than ``wait_s``."""
    if cost.estimate is not None:
        sink.emit("estimate", line=cost.estimate.line(), minutes=round(cost.estimate.minutes, 2))
    if not (quota or check):
        return
    found: Quota | None = None
    try:
        if check:
            found = await read_quota(client)
        else:
            with anyio.move_on_after(wait_s):
                found = await read_quota(client)
    except CredentialsRefusedError:
        return  # the client sends nothing more: the first row stops the run, saying why once
    except ApiError as exc:
        if check:
            raise
        sink.emit("quota_unread", reason=str(exc))
        return
    if found is None:
        sink.emit("quota_unread", reason=f"no answer in {wait_s:g} s")
        return
    minutes = found.video_minutes
    sink.emit(
        "quota",
        line=found.line(),
        used=minutes.used if minutes else None,
        limit=minutes.limit if minutes else None,
        needed=round(cost.estimate.minutes, 1) if cost.estimate else None,
    )
    if check and cost.estimate is not None:
        check_fits(cost.estimate if caps is None else cost.estimate.capped(caps), found)


QUOTA_RETRY = RetryPolicy(max_attempts=2, base_delay_s=0.5, max_delay_s=2.0)
"""``validate`` asks for the quota once more after a passing fault, not for minutes."""


async def account_quota(config: Config, credentials: Credentials) -> Quota:
    """The quota of the account ``credentials`` name at ``config.api.base_url``."""
    clock = RealClock()
    limiter = RateLimiter(clock, max_rps=config.limits.max_requests_per_s)
    async with PictoryClient(
        config.api, credentials, clock=clock, limiter=limiter, retry_policy=QUOTA_RETRY
    ) as client:
        return await read_quota(client)


def validate_lines(
    rows: RowLister,
    config: Config,
    credentials: Credentials | None,
    states: Iterable[RowState] = (),
) -> list[str]:
    """What ``validate`` says of a valid manifest's cost: the estimate of its ``rows`` (less
    the done ones among ``states``, a run directory's), and with ``credentials`` the account's
    quota beside it (a quota that cannot be read is said in a line, never an error)."""
    assumed = config.run.assumed_video_minutes
    made = plan(states, rows, None, assumed)
    lines = [made.estimate.line()] if made.estimate is not None else []
    if credentials is None:
        return [*lines, "quota: not read (no Pictory credentials in the environment)"]
    try:
        found = anyio.run(account_quota, config, credentials)
    except ApiError as exc:
        return [*lines, f"quota: not read ({exc})"]
    lines.append(found.line())
    if made.estimate is not None:
        try:
            check_fits(made.estimate, found)
        except QuotaError as exc:
            lines.append(f"warning: {str(exc).removeprefix('--check-quota: ')}")
    return lines
