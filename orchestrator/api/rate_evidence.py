"""Whether a 429 is the rate limit or background refusals: the evidence ``RateLimiter`` keeps
(``Evidence``) and the statistics it judges by.

Limit or background: judging a 429
----------------------------------
Some servers also refuse a share of requests whatever the rate (the simulator's ``flaky``
profile: 5 %). Cutting on each of those would collapse the rate, and pausing everyone on each
would halve it. A rate limit refuses more the faster we go; background refusals do not depend on
the rate. So the limiter files every answer heard outside a cut's pause under its *level*,
``floor(effective rate)`` (the admissions per 1 s + guard), and keeps two tallies:

  * per level, over the whole run: answers and 429s. The *background share below* level L is the
    pooled 429 share of all levels < L, pulled towards a prior (``background_prior_share``,
    weighted as ``background_prior_answers`` answers), so that a level with nothing below it is
    judged against "a few per cent might be background" rather than against nothing;
  * the current *stay*: answers and 429s since the rate last entered its level.

A 429 is judged a limit when the stay's 429 count is improbable under the background share below:
the binomial tail P(X >= 429s | answers, share) is under ``limit_evidence_p``. Until
``min_answers_to_judge`` answers have been heard in all, every 429 is taken for the limit (as
without this section). Against a clean fixed-window server the levels below the limit hear no
429s at all, so the share below soon tends to zero and the first or second 429 of a probe cuts.
Against background refusals the share below settles near the background, and a stay at any
level under the limit shows nothing improbable. A stay whose tail is under ``HOLD_CLIMB_P``
(suspicious but not yet convincing) does not climb further while it gathers evidence.

A stay (not the whole history of a level) is judged, because every cut ends a stay on a 429: judged
on all-time tallies, a level cut from once by bad luck would look worse each time it is visited.
The all-time tallies serve the *ceiling*: when a 429 is judged background and the levels below
hold at least ``ANSWERS_TO_RAISE_CEILING`` answers, ``safe_rps`` is raised (never lowered) to one
step below the lowest level whose all-time 429 share significantly exceeds that of the levels
below it (``max_rps`` if none does), undoing cuts made before the background was known.

Limits of the method: level R+1 of a fixed-window limit R refuses about 1/(R+1) of requests, the
same share as a background of that size, so only the comparison with lower levels tells them
apart; at a level with nothing below it, a background above the prior share is taken for a limit
(the rate is cut once, and the levels visited below then provide the comparison).
"""

from __future__ import annotations

import math


class Evidence:
    """The answers heard, per level over the whole run and for the current stay, and what they
    say about a 429 (module docstring). ``RateLimiter`` files every answer here."""

    __slots__ = (
        "answers_at",
        "answers_heard",
        "evidence_p",
        "prior_answers",
        "prior_refused",
        "refused_at",
        "stay_answers",
        "stay_level",
        "stay_refused",
    )

    def __init__(self, prior_share: float, prior_answers: float, evidence_p: float) -> None:
        self.prior_refused = prior_share * prior_answers
        self.prior_answers = prior_answers
        self.evidence_p = evidence_p
        self.answers_at: dict[int, int] = {}  # level -> answers heard there (429s included)
        self.refused_at: dict[int, int] = {}  # level -> 429s among them
        self.answers_heard = 0
        self.stay_level = -1  # the level of the current stay, and what it has heard so far
        self.stay_answers = 0
        self.stay_refused = 0

    def count(self, level: int, *, refused: bool) -> None:
        self.answers_heard += 1
        self.answers_at[level] = self.answers_at.get(level, 0) + 1
        if refused:
            self.refused_at[level] = self.refused_at.get(level, 0) + 1
        if level != self.stay_level:  # a new stay starts with a clean slate
            self.stay_level, self.stay_answers, self.stay_refused = level, 0, 0
        self.stay_answers += 1
        self.stay_refused += refused

    def heard_below(self, level: int) -> tuple[int, float]:
        """Answers heard at all levels below ``level``, and their 429 share pulled to the prior."""
        answers, refused = 0, 0
        for lower, heard in self.answers_at.items():
            if lower < level:
                answers += heard
                refused += self.refused_at.get(lower, 0)
        share = (refused + self.prior_refused) / (answers + self.prior_answers)
        return answers, share

    def stay_p_value(self, level: int) -> float:
        """How likely this stay's 429 count at ``level`` is if only the background were refusing."""
        if level != self.stay_level or self.stay_refused == 0:
            return 1.0
        _, share = self.heard_below(level)
        return binomial_tail(self.stay_refused, self.stay_answers, share)

    def ceiling_rps(self, min_rps: float, decrease_factor: float, max_rps: float) -> float:
        """One step below the lowest level whose 429s (all stays) exceed those below it
        (``max_rps`` if none does)."""
        below_answers, below_refused = self.prior_answers, self.prior_refused
        for level in sorted(self.answers_at):
            answers, refused = self.answers_at[level], self.refused_at.get(level, 0)
            if binomial_tail(refused, answers, below_refused / below_answers) < self.evidence_p:
                return max(min_rps, one_step_below(level, decrease_factor))
            below_answers += answers
            below_refused += refused
        return max_rps


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p); 1 when k is at most the mean (no evidence of excess)."""
    if k <= n * p:
        return 1.0  # the true tail is about 1/2 or more: far above any sensible threshold
    if p <= 0.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):  # k > n * p, so k is past the mode and the terms only shrink
        log_pmf = (
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * log_p + (n - i) * log_q
        )  # fmt: skip
        term = math.exp(log_pmf)
        total += term
        if term < 1e-12 * total:
            break
    return min(1.0, total)


def one_step_below(refused_rps: float, decrease_factor: float) -> float:
    """A rate whose per-second count is one below the count that was just refused."""
    if refused_rps >= 2:
        return math.floor(refused_rps) - 0.5
    return min(refused_rps, 1.0) * decrease_factor  # even one per second was too many
