"""The one classification point: classify()'s table and call_with_retry's loop, on virtual time."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import anyio
import pytest

from orchestrator.api.retry import (
    REMAKE_UNBILLED,
    REREAD_VIDEO_URL,
    RESEND_UNBILLED,
    REUPLOAD_TEMPLATE,
    Decision,
    RetryPolicy,
    SecondChance,
    backoff_cap_s,
    call_with_retry,
    classify,
    resume_action,
)
from orchestrator.clock import VirtualClock
from orchestrator.errors import (
    AmbiguousError,
    ApiError,
    AuthError,
    CredentialsRefusedError,
    DownloadError,
    JobFailedError,
    JobLostError,
    JobStuckError,
    LinkExpiredError,
    NotAVideoError,
    NotDeliveredError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from orchestrator.ledger.row_state import RowState, RowStatus

POLICY = RetryPolicy()


def _classify(exc: BaseException, attempt: int = 1, **kwargs: bool) -> Decision:
    return classify(exc, attempt=attempt, policy=POLICY, rng=random.Random(0), **kwargs)


@pytest.mark.parametrize(
    ("exc", "action", "kind"),
    [
        (NotDeliveredError("refused"), "retry", "not_delivered"),
        (TransientError("502", status=502), "retry", "transient"),
        (DownloadError("cut short"), "retry", "download"),
        (LinkExpiredError("403 on the video URL", status=403), "retry", "link_expired"),
        (RateLimitedError("429", status=429, retry_after_s=3), "retry", "rate_limited"),
        (AuthError("401", status=401), "refresh_auth_then_retry", "auth"),
        (CredentialsRefusedError("key refused", status=401), "fail", "auth"),
        (PermanentError("400", status=400), "fail", "permanent"),
        (JobFailedError("status: failed"), "fail", "job_failed"),
        (JobStuckError("render outlived its deadline"), "fail", "stuck"),
        (AmbiguousError("render PUT timed out"), "ambiguous", "ambiguous"),
        (ApiError("job offers no video URL"), "fail", "error"),
    ],
)
def test_classify_table_maps_each_error_to_its_action(
    exc: ApiError, action: str, kind: str
) -> None:
    """Every ApiError kind gets the action drawn in retry.py's decision table, kind preserved."""
    decision = _classify(exc)
    assert (decision.action, decision.kind) == (action, kind)


@pytest.mark.parametrize(
    "name", ["cancelled", "KeyboardInterrupt", "SystemExit", "ValueError", "OSError"]
)
async def test_classify_reraises_anything_that_is_not_an_api_error(name: str) -> None:
    """Cancellation, interrupts and programming errors are re-raised, never turned into a retry."""
    exc = _non_api_error(name)
    with pytest.raises(type(exc)):
        _classify(exc)


def _non_api_error(name: str) -> BaseException:
    """An instance of anyio's cancellation class (needs a running loop) or of a builtin."""
    if name == "cancelled":
        return anyio.get_cancelled_exc_class()()
    builtin: dict[str, type[BaseException]] = {
        "KeyboardInterrupt": KeyboardInterrupt,
        "SystemExit": SystemExit,
        "ValueError": ValueError,
        "OSError": OSError,
    }
    return builtin[name]()


def test_second_auth_error_in_one_call_refreshes_again_after_a_pause() -> None:
    """A 401 after this call already refreshed (a token revoked early, again) refreshes once more,
    after a backoff pause rather than at once."""
    decision = _classify(AuthError("401", status=401), attempt=3, auth_refreshed=True)
    assert (decision.action, decision.kind) == ("refresh_auth_then_retry", "auth")
    assert 0.0 <= decision.delay_s <= backoff_cap_s(3, POLICY)


@pytest.mark.parametrize("exc", [TransientError("503"), RateLimitedError("429"), AuthError("401")])
def test_attempts_exhausted_fail_with_kind_preserved(exc: ApiError) -> None:
    """At max_attempts a retryable error becomes a fail that still names its kind."""
    decision = _classify(exc, attempt=POLICY.max_attempts)
    assert (decision.action, decision.kind) == ("fail", exc.kind)
    assert "6 attempts" in decision.reason


def test_backoff_is_full_jitter_within_the_exponential_cap() -> None:
    """Delays are uniform in [0, min(max_delay_s, base_delay_s * 2**(attempt-1))], spread out."""
    policy = RetryPolicy(max_attempts=100, base_delay_s=0.5, max_delay_s=10.0)
    rng = random.Random(42)
    for attempt, cap_s in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 10.0), (60, 10.0)]:
        assert backoff_cap_s(attempt, policy) == cap_s
        delays = [
            classify(TransientError("5xx"), attempt=attempt, policy=policy, rng=rng).delay_s
            for _ in range(500)
        ]
        assert all(0.0 <= d <= cap_s for d in delays)
        assert min(delays) < 0.05 * cap_s and max(delays) > 0.95 * cap_s


def test_retry_after_is_honoured_plus_positive_jitter() -> None:
    """A 429 waits at least Retry-After, at most Retry-After + rate_limit_jitter_s, never less."""
    rng = random.Random(1)
    exc = RateLimitedError("429", status=429, retry_after_s=7.0)
    delays = [classify(exc, attempt=1, policy=POLICY, rng=rng).delay_s for _ in range(300)]
    assert all(7.0 <= d <= 7.0 + POLICY.rate_limit_jitter_s for d in delays)
    assert max(delays) - min(delays) > 0.4  # jittered, not constant


@pytest.mark.parametrize("retry_after_s", [None, -1.0, float("nan")])
def test_429_without_usable_retry_after_uses_the_default(retry_after_s: float | None) -> None:
    """A missing or nonsensical Retry-After falls back to default_retry_after_s (+ jitter)."""
    exc = RateLimitedError("429", status=429, retry_after_s=retry_after_s)
    delay_s = _classify(exc).delay_s
    assert POLICY.default_retry_after_s <= delay_s <= POLICY.default_retry_after_s + 0.5


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_delay_s": -1.0}, {"max_delay_s": float("inf")}]
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    """A RetryPolicy with a zero attempt budget or a negative/infinite delay is a ValueError."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# ---- call_with_retry ---------------------------------------------------------------------------


def _script(
    clock: VirtualClock, *outcomes: BaseException | str
) -> tuple[Callable[[], Awaitable[str]], list[float]]:
    """A call that raises or returns ``outcomes`` in turn, and the clock times it was called at."""
    calls: list[float] = []
    queue = list(outcomes)

    async def fn() -> str:
        calls.append(clock.now())
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return fn, calls


async def test_transient_errors_are_retried_on_the_clock_until_success() -> None:
    """Two 503s then success: three calls, waits taken on the virtual clock as decided."""
    clock = VirtualClock()
    fn, calls = _script(clock, TransientError("503"), TransientError("503"), "ok")
    seen: list[tuple[str, int, float]] = []

    def on_retry(decision: Decision, exc: BaseException, attempt: int) -> None:
        seen.append((decision.kind, attempt, decision.delay_s))

    result = await call_with_retry(
        fn,
        policy=POLICY, clock=clock, rng=random.Random(5), on_retry=on_retry,
    )  # fmt: skip
    assert result == "ok"
    assert [(k, a) for k, a, _ in seen] == [("transient", 1), ("transient", 2)]
    assert calls[1] == pytest.approx(seen[0][2])
    assert calls[2] == pytest.approx(seen[0][2] + seen[1][2])


async def test_attempts_exhausted_reraise_the_last_error() -> None:
    """A call failing every time is made max_attempts times, then its last error propagates."""
    clock = VirtualClock()
    attempts = 0

    async def always_502() -> None:
        nonlocal attempts
        attempts += 1
        raise TransientError(f"502 #{attempts}", status=502)

    policy = RetryPolicy(max_attempts=4)
    with pytest.raises(TransientError, match="502 #4"):
        await call_with_retry(always_502, policy=policy, clock=clock, rng=random.Random(0))
    assert attempts == 4
    assert clock.now() <= 1.0 + 2.0 + 4.0


async def test_429_reports_to_the_limiter_and_waits_retry_after() -> None:
    """Each 429 calls on_rate_limited(retry_after_s), and the retry waits at least that long."""
    clock = VirtualClock()
    fn, calls = _script(
        clock, RateLimitedError("429", retry_after_s=3.0), RateLimitedError("429"), "ok"
    )
    reported: list[float | None] = []
    result = await call_with_retry(
        fn,
        policy=POLICY, clock=clock, rng=random.Random(2), on_rate_limited=reported.append,
    )  # fmt: skip
    assert result == "ok"
    assert reported == [3.0, None]
    assert 3.0 <= calls[1] <= 3.5
    assert 3.0 + 2.0 <= calls[2] <= 3.5 + 2.5


async def test_auth_errors_refresh_before_every_retry_until_attempts_run_out() -> None:
    """401 on every attempt: each retry starts with a refresh (the first at once, later ones after
    a pause); the last 401 propagates after max_attempts."""
    clock = VirtualClock()
    policy = RetryPolicy(max_attempts=3)
    fn, calls = _script(clock, AuthError("401 a"), AuthError("401 b"), AuthError("401 c"), "x")
    refreshed_at: list[float] = []

    async def refresh() -> None:
        refreshed_at.append(clock.now())

    with pytest.raises(AuthError, match="401 c"):
        await call_with_retry(
            fn,
            policy=policy, clock=clock, rng=random.Random(0), refresh_auth=refresh,
        )  # fmt: skip
    assert len(calls) == 3 and len(refreshed_at) == 2
    assert refreshed_at[0] == 0.0  # the first refresh is not a backoff
    assert calls[2] == refreshed_at[1] > 0.0  # the second one waited


async def test_auth_refresh_then_success_returns_the_result() -> None:
    """401 → refresh → success returns the value with a single refresh."""
    clock = VirtualClock()
    fn, _ = _script(clock, AuthError("401"), "ok")
    refreshed: list[bool] = []

    async def refresh() -> None:
        refreshed.append(True)

    result = await call_with_retry(
        fn,
        policy=POLICY, clock=clock, rng=random.Random(0), refresh_auth=refresh,
    )  # fmt: skip
    assert (result, refreshed) == ("ok", [True])


async def test_auth_error_without_a_refresher_fails_at_once() -> None:
    """With no refresh_auth hook a 401 cannot be fixed and propagates on the first attempt."""
    clock = VirtualClock()
    fn, calls = _script(clock, AuthError("401"), "ok")
    with pytest.raises(AuthError):
        await call_with_retry(
            fn,
            policy=POLICY, clock=clock, rng=random.Random(0),
        )  # fmt: skip
    assert len(calls) == 1


async def test_a_failing_refresh_is_classified_like_an_attempt() -> None:
    """A 5xx from the token refresh is retried with backoff; the next attempt succeeds."""
    clock = VirtualClock()
    fn, calls = _script(clock, AuthError("401"), "ok")
    refresh_errors = [TransientError("token endpoint 503")]

    async def refresh() -> None:
        if refresh_errors:
            raise refresh_errors.pop()

    result = await call_with_retry(
        fn,
        policy=POLICY, clock=clock, rng=random.Random(0), refresh_auth=refresh,
    )  # fmt: skip
    assert result == "ok"
    assert len(calls) == 2
    assert calls[1] > 0.0  # the failed refresh was followed by a backoff wait


@pytest.mark.parametrize(
    "exc", [PermanentError("400"), AmbiguousError("render PUT timed out"), JobFailedError("x")]
)
async def test_fail_and_ambiguous_reraise_after_one_call(exc: ApiError) -> None:
    """Permanent and ambiguous outcomes are re-raised at once for the caller to record."""
    clock = VirtualClock()
    fn, calls = _script(clock, exc, "never reached")
    with pytest.raises(type(exc)):
        await call_with_retry(
            fn,
            policy=POLICY, clock=clock, rng=random.Random(0),
        )  # fmt: skip
    assert len(calls) == 1


@pytest.mark.parametrize("name", ["cancelled", "KeyboardInterrupt", "ValueError"])
async def test_cancellation_interrupts_and_bugs_are_never_retried(name: str) -> None:
    """A call raising cancellation, KeyboardInterrupt or a bug is made once; it propagates."""
    exc = _non_api_error(name)
    calls = 0

    async def fn() -> None:
        nonlocal calls
        calls += 1
        raise exc

    with pytest.raises(type(exc)):
        await call_with_retry(fn, policy=POLICY, clock=VirtualClock(), rng=random.Random(0))
    assert calls == 1


async def test_cancelling_during_a_backoff_wait_stops_retrying() -> None:
    """Cancelling the caller while it waits to retry ends the call: no further attempt."""
    clock = VirtualClock()
    calls = 0

    async def always_503() -> None:
        nonlocal calls
        calls += 1
        raise TransientError("503")

    async def caller() -> None:
        policy = RetryPolicy(base_delay_s=10.0, max_delay_s=10.0)
        await call_with_retry(always_503, policy=policy, clock=clock, rng=random.Random(0))

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await clock.sleep(0.001)  # the caller is now asleep in its backoff
        tg.cancel_scope.cancel()
    await clock.sleep(100.0)
    assert calls == 1


@pytest.mark.parametrize(
    ("chance", "exc", "times_done", "again"),
    [
        (RESEND_UNBILLED, AmbiguousError("lost"), 0, True),
        (RESEND_UNBILLED, AmbiguousError("lost"), 2, True),
        (RESEND_UNBILLED, AmbiguousError("lost"), 3, False),
        (RESEND_UNBILLED, TransientError("502", status=502), 0, False),
        (REMAKE_UNBILLED, JobFailedError("failed"), 1, True),
        (REMAKE_UNBILLED, JobStuckError("stuck"), 0, True),
        (REMAKE_UNBILLED, JobLostError("cleaned", status=404), 2, False),
        (REMAKE_UNBILLED, PermanentError("400", status=400), 0, False),
        (
            REMAKE_UNBILLED,
            JobFailedError("no stock visual", error_code="SCENE_BACKGROUND_VISUAL_NOT_FOUND"),
            0,
            False,
        ),
        (
            REMAKE_UNBILLED,
            JobFailedError(
                "SCENE_BACKGROUND_VISUAL_NOT_FOUND: scene 2", error_code="TEXT_TO_VIDEO_FAILED"
            ),
            0,
            False,
        ),
        (REMAKE_UNBILLED, JobFailedError("boom", error_code="TEXT_TO_VIDEO_FAILED"), 0, True),
        (REUPLOAD_TEMPLATE, PermanentError("no such template", status=404), 0, True),
        (REUPLOAD_TEMPLATE, PermanentError("no such template", status=404), 1, False),
        (REUPLOAD_TEMPLATE, PermanentError("bad variable", status=400), 0, False),
        (REUPLOAD_TEMPLATE, TransientError("404?", status=404), 0, False),
        (REREAD_VIDEO_URL, NotAVideoError("text/html"), 0, True),
        (REREAD_VIDEO_URL, NotAVideoError("text/html"), 1, False),
        (REREAD_VIDEO_URL, DownloadError("cut short"), 0, False),
    ],
)
def test_second_chances_follow_the_table(
    chance: SecondChance, exc: ApiError, times_done: int, again: bool
) -> None:
    """A stage does a step again only for the errors its second chance names (and, for a
    template, only a 404), at most ``max_times`` in one run of the row, and never a job that
    failed for a cause Pictory found in what we sent (it would fail the same way)."""
    assert chance.allows(exc, times_done) is again


@pytest.mark.parametrize(
    ("status", "permanent", "kind", "flags", "action"),
    [
        (None, False, None, {}, "work"),
        ("pending", False, None, {}, "work"),
        ("done", False, None, {"retry_failed": True, "rerender_ambiguous": True}, "skip"),
        ("ambiguous", False, "ambiguous", {}, "skip"),
        ("ambiguous", False, "ambiguous", {"rerender_ambiguous": True}, "work"),
        ("failed", True, "permanent", {}, "skip"),
        ("failed", True, "permanent", {"retry_failed": True}, "work"),
        ("failed", True, "job_failed", {"retry_failed": True}, "restart"),
        ("failed", False, "job_lost", {}, "restart"),
        ("failed", False, "transient", {}, "work"),
    ],
)
def test_resume_action_follows_the_table(
    status: RowStatus | None,
    permanent: bool,
    kind: str | None,
    flags: dict[str, bool],
    action: str,
) -> None:
    """Which known rows a run works on, skips, or starts over from new jobs."""
    state = None
    if status is not None:
        state = RowState("r1", status=status, fail_permanent=permanent, fail_kind=kind)
    options = {"retry_failed": False, "rerender_ambiguous": False, **flags}
    assert resume_action(state, **options) == action
