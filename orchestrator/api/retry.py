"""The one place that decides what is tried again, at three scales.

1. **A request** (this is most of it): ``classify`` turns an exception into a ``Decision``;
   ``call_with_retry`` runs a call, classifies each failure, waits on the given clock, and
   re-raises the last exception when the decision is ``fail`` or ``ambiguous`` (the caller records
   it in the ledger).
2. **A step of a stage**, after ``call_with_retry`` gave up: a ``SecondChance`` says which errors
   a stage may answer by doing the step again, and how many times (see the table below).
3. **A row, at the start of a run**: ``resume_action`` says whether a run works on a row the
   ledger already knows, and whether its old jobs must be forgotten first.

Nothing else in the package decides whether an API error is retried.

Decision table (first matching row wins; ``attempt`` counts from 1, the attempt that just failed)::

    exception                           action                   delay_s
    ----------------------------------  -----------------------  ----------------------------------
    not an ApiError: anyio cancellation re-raised, never retried -
      KeyboardInterrupt, SystemExit,
      programming errors
    AmbiguousError                      ambiguous                -  (the delivery contract decides)
    PermanentError, JobFailedError      fail                     -
    CredentialsRefusedError (a 401 no   fail                     -  (``tokens.Auth`` latches it)
      refresh mends: API key, token
      endpoint's refusal)
    JobStuckError                       fail                     -  (deadline passed; resumable)
    attempt >= max_attempts             fail, kind kept          -
    AuthError, first in this call       refresh_auth_then_retry  0  (refresh opens the next attempt)
    AuthError again in this call        refresh_auth_then_retry  U(0, min(max_delay_s,
                                                                 base_delay_s * 2**(attempt-1)))
    RateLimitedError                    retry                    retry_after_s (or
                                                                 default_retry_after_s)
                                                                 + U(0, rate_limit_jitter_s)
    NotDeliveredError, TransientError,  retry                    U(0, min(max_delay_s,
      DownloadError, LinkExpiredError                              base_delay_s * 2**(attempt-1)))
    any other ApiError                  retry if .retryable, else fail

Backoff uses *full jitter* (AWS architecture blog, "Exponential Backoff And Jitter"): the wait is
uniform between zero and the exponential cap, so rows failing together do not retry together. A
429's ``Retry-After`` is honoured as a floor, never shortened, plus positive jitter.

Cancellation is never retried (tenacity's trap: catching ``BaseException`` swallows it):
``call_with_retry`` only catches ``ApiError``, and ``classify`` re-raises anything else.

Second chances (a stage does a whole step again; ``SecondChance.allows``)::

    name                error                               times  why it is safe
    ------------------  ----------------------------------  -----  ----------------------------
    RESEND_UNBILLED     AmbiguousError of a preview,         3      an orphan unbilled job costs
                        storyboard, transcription or                nothing (renders never: the
                        highlights request                          delivery contract)
    REMAKE_UNBILLED     JobFailedError, JobStuckError,       2      previews, transcriptions
                        JobLostError of a preview,                  and highlights bill
                        transcription or highlights job             nothing (not when Pictory
                                                                    names a cause in the
                                                                    request: ``CONTENT_CAUSES``)
    REUPLOAD_TEMPLATE   PermanentError 404 on a request      1      a 404 started no job
                        naming our uploaded template
    REREAD_VIDEO_URL    NotAVideoError of a download         1      reads the render job again;
                                                                    never renders again
    CONFIRM_LOST        PermanentError 404 on a job read     1      a read bills nothing; the
                                                                    job is declared lost
                                                                    (``job_lost``) only when the
                                                                    API says so twice, one poll
                                                                    interval apart

Resuming a row the ledger knows (``resume_action``)::

    ledger status           action    unless
    ----------------------  --------  ---------------------------------------------------------
    pending                 work
    done                    skip
    ambiguous               skip      --rerender-ambiguous: work
    failed, permanent       skip      --retry-failed: as any other failed row
    failed, its job failed  restart   (job_failed, job_lost: the recorded jobs are dead)
      or is lost
    failed, any other way   work      (re-attaches to the recorded jobs)

A session against the embedded simulator (``--simulate``) after an earlier one: every job the
ledger records was held in the memory of the earlier process's simulator, which stopped with it,
so the new simulator does not know them and nothing real was billed for them.
``lost_with_simulator`` says which rows start over from new jobs at once (a ``retry`` event,
no ``--retry-failed`` needed)::

    ledger state                                          starts over
    ----------------------------------------------------  -----------------------------------
    done, ambiguous                                       no (a render intent without a job
                                                          stays the delivery contract's)
    failed permanently, other than job_lost               no (--retry-failed, as ever)
    a render job recorded                                 yes
    a render intent without its job                       no (ambiguous, as after any kill)
    a preview, transcription or highlights job recorded   yes
    nothing recorded                                      no (it is simply worked on)
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from orchestrator.api.responses import VISUAL_NOT_FOUND
from orchestrator.clock import Clock
from orchestrator.errors import (
    AmbiguousError,
    ApiError,
    AuthError,
    CredentialsRefusedError,
    DownloadError,
    JobFailedError,
    JobLostError,
    JobStuckError,
    NotAVideoError,
    NotDeliveredError,
    PermanentError,
    RateLimitedError,
    TransientError,
)

T = TypeVar("T")

Action = Literal["retry", "refresh_auth_then_retry", "fail", "ambiguous"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How hard to try. ``max_attempts`` counts every call of the function, the first included."""

    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    rate_limit_jitter_s: float = 0.5
    default_retry_after_s: float = 2.0
    """Used when a 429 carries no (usable) ``Retry-After``."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy: max_attempts={self.max_attempts} must be >= 1")
        for name in ("base_delay_s", "max_delay_s", "rate_limit_jitter_s", "default_retry_after_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RetryPolicy: {name}={value!r} must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after one failed attempt. ``kind`` is the exception's (``transient``...)."""

    action: Action
    kind: str
    delay_s: float = 0.0
    reason: str = ""

    @property
    def retries(self) -> bool:
        """True when another attempt follows (after ``delay_s``, or after an auth refresh)."""
        return self.action in ("retry", "refresh_auth_then_retry")


def backoff_cap_s(attempt: int, policy: RetryPolicy) -> float:
    """Upper bound of the full-jitter wait after failed attempt number ``attempt`` (from 1)."""
    exponent = max(0, attempt - 1)
    if exponent >= 64:  # 2**64 seconds is forever; avoid float overflow on absurd counts
        return policy.max_delay_s
    return min(policy.max_delay_s, policy.base_delay_s * 2.0**exponent)


def classify(
    exc: BaseException,
    *,
    attempt: int,
    policy: RetryPolicy,
    rng: random.Random,
    auth_refreshed: bool = False,
) -> Decision:
    """The decision table of this module's docstring. Re-raises ``exc`` if it is no ApiError.

    ``attempt`` is the number (from 1) of the attempt that failed with ``exc``;
    ``auth_refreshed`` says whether this call already refreshed its credentials once.
    """
    if not isinstance(exc, ApiError):
        raise exc  # cancellation, KeyboardInterrupt, bugs: never retried, never swallowed
    kind = exc.kind
    if isinstance(exc, AmbiguousError):
        return Decision("ambiguous", kind, reason="the request may have created a job")
    if isinstance(exc, PermanentError):
        return Decision("fail", kind, reason="permanent error")
    if isinstance(exc, CredentialsRefusedError):
        return Decision("fail", kind, reason="the credentials were refused")
    if isinstance(exc, JobStuckError):
        return Decision("fail", kind, reason="the job outlived its deadline")
    retryable = isinstance(
        exc, NotDeliveredError | TransientError | RateLimitedError | AuthError | DownloadError
    )
    if not (retryable or exc.retryable):
        return Decision("fail", kind, reason="not retryable")
    if attempt >= policy.max_attempts:
        return Decision("fail", kind, reason=f"gave up after {attempt} attempts")
    if isinstance(exc, AuthError):
        if not auth_refreshed:
            return Decision("refresh_auth_then_retry", kind, reason="401: refresh the token")
        # A token revoked early can be revoked again; credentials the token endpoint refuses
        # fail there at once (PermanentError), so only a token that keeps being refused on use
        # comes back here, and max_attempts bounds it.
        delay_s = rng.uniform(0.0, backoff_cap_s(attempt, policy))
        return Decision(
            "refresh_auth_then_retry", kind, delay_s, "401 again: refresh after a pause"
        )
    if isinstance(exc, RateLimitedError):
        return Decision("retry", kind, _rate_limit_delay_s(exc, policy, rng), "429")
    delay_s = rng.uniform(0.0, backoff_cap_s(attempt, policy))
    return Decision("retry", kind, delay_s, "backoff with full jitter")


def _rate_limit_delay_s(exc: RateLimitedError, policy: RetryPolicy, rng: random.Random) -> float:
    retry_after_s = exc.retry_after_s
    if retry_after_s is None or not math.isfinite(retry_after_s) or retry_after_s < 0:
        retry_after_s = policy.default_retry_after_s
    return retry_after_s + rng.uniform(0.0, policy.rate_limit_jitter_s)


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    on_rate_limited: Callable[[float | None], None] | None = None,
    refresh_auth: Callable[[], Awaitable[None]] | None = None,
    on_retry: Callable[[Decision, BaseException, int], None] | None = None,
) -> T:
    """Call ``fn`` until it returns, or re-raise its last exception when the table says so.

    * ``on_rate_limited(retry_after_s)`` is called for every 429 (the rate limiter's hook), the
      last one included.
    * ``refresh_auth()`` runs at the start of the attempt that follows a 401: at once after
      the call's first 401, after a backoff pause after later ones; an exception it raises counts
      as that attempt's failure and is classified like any other. Without ``refresh_auth`` a 401
      fails at once.
    * ``on_retry(decision, exc, attempt)`` is called before each wait (logging, event sink).

    Only ``ApiError`` is caught: cancellation and programming errors propagate untouched.
    """
    auth_refreshed = False
    refresh_first = False
    attempt = 0
    while True:
        attempt += 1
        try:
            if refresh_first and refresh_auth is not None:
                refresh_first = False
                await refresh_auth()
            return await fn()
        except ApiError as exc:
            if isinstance(exc, RateLimitedError) and on_rate_limited is not None:
                on_rate_limited(exc.retry_after_s)
            decision = classify(
                exc, attempt=attempt, policy=policy, rng=rng, auth_refreshed=auth_refreshed
            )
            if decision.action == "refresh_auth_then_retry" and refresh_auth is None:
                raise
            if not decision.retries:
                raise
            if on_retry is not None:
                on_retry(decision, exc, attempt)
        if decision.action == "refresh_auth_then_retry":
            auth_refreshed = refresh_first = True
            if decision.delay_s > 0:  # the first refresh is not a backoff
                await clock.sleep(decision.delay_s)
        else:
            await clock.sleep(decision.delay_s)


# ---- second chances: a stage does a step again after call_with_retry gave up ----------------


@dataclass(frozen=True, slots=True)
class SecondChance:
    """Which failures of a step its stage answers by doing the step again, at most ``max_times``
    in one run of the row (the table in this module's docstring)."""

    errors: tuple[type[ApiError], ...]
    max_times: int
    status: int | None = None
    """Only errors with this HTTP status (None: any)."""

    def allows(self, exc: ApiError, times_done: int) -> bool:
        """Whether the step that failed with ``exc`` is done again, after ``times_done`` goes."""
        matches = isinstance(exc, self.errors) and self.status in (None, exc.status)
        return matches and times_done < self.max_times and not content_cause(exc)


CONTENT_CAUSES = (VISUAL_NOT_FOUND,)
"""Causes Pictory names in a failed job that lie in what we sent: the same request fails the
same way, so the job is not made again (the row fails, with the cause's hint in results)."""


def content_cause(exc: ApiError) -> str | None:
    """The cause in ``CONTENT_CAUSES`` that a failed job names in its code or message."""
    if not isinstance(exc, JobFailedError):
        return None
    said = f"{exc.error_code or ''} {exc.message}"
    return next((cause for cause in CONTENT_CAUSES if cause in said), None)


RESEND_UNBILLED = SecondChance((AmbiguousError,), max_times=3)
REMAKE_UNBILLED = SecondChance((JobFailedError, JobStuckError, JobLostError), max_times=2)
REUPLOAD_TEMPLATE = SecondChance((PermanentError,), max_times=1, status=404)
REREAD_VIDEO_URL = SecondChance((NotAVideoError,), max_times=1)
CONFIRM_LOST = SecondChance((PermanentError,), max_times=1, status=404)
"""A choice, not a documented behaviour: nothing public says whether a 404 (``JOB_NOT_FOUND``,
contract §1) on a job read can pass; asking once more costs one read and guards a billable
row against a passing one. The simulator answers 404 only for a job it does not know."""


# ---- resuming a row the ledger knows ---------------------------------------------------------

ResumeAction = Literal["work", "skip", "restart"]
"""``restart``: record a ``retry`` (forgetting the row's dead jobs), then work on it."""
RESTART_AFTER_KINDS = ("job_failed", "job_lost")
"""Failure kinds whose recorded jobs are dead: the row starts over from new jobs."""


class RecordedRow(Protocol):
    """What ``resume_action`` reads of a row's ledger state (``row_state.RowState``)."""

    @property
    def status(self) -> str: ...

    @property
    def fail_permanent(self) -> bool: ...

    @property
    def fail_kind(self) -> str | None: ...

    @property
    def forgotten(self) -> str | None: ...


class RecordedJobs(RecordedRow, Protocol):
    """What ``lost_with_simulator`` reads of a row's ledger state (``row_state.RowState``)."""

    @property
    def render_job(self) -> str | None: ...

    @property
    def render_intent(self) -> bool: ...

    @property
    def preview_job(self) -> str | None: ...

    @property
    def aux_jobs(self) -> dict[str, str] | None: ...


def resume_action(
    state: RecordedRow | None, *, retry_failed: bool, rerender_ambiguous: bool
) -> ResumeAction:
    """What a run does with a row the ledger records as ``state`` (None: never seen). A
    forgotten row (``orchestrator forget``) is skipped, whatever its status."""
    if state is not None and state.forgotten is not None:
        return "skip"
    if state is None or state.status == "pending":
        return "work"
    if state.status == "done":
        return "skip"
    if state.status == "ambiguous":
        return "work" if rerender_ambiguous else "skip"
    if state.fail_permanent and not retry_failed:
        return "skip"
    return "restart" if state.fail_kind in RESTART_AFTER_KINDS else "work"


def lost_with_simulator(state: RecordedJobs) -> bool:
    """Whether a row starts over because its recorded jobs died with the embedded simulator of
    an earlier session (the table in this module's docstring): its jobs are certainly gone and
    nothing real was billed, so it is made again without ``--retry-failed``."""
    if state.status in ("done", "ambiguous") or state.forgotten is not None:
        return False
    if state.status == "failed" and state.fail_permanent and state.fail_kind != "job_lost":
        return False
    if state.render_job is not None:
        return True
    if state.render_intent:
        return False
    return state.preview_job is not None or bool(state.aux_jobs)
