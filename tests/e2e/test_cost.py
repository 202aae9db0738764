"""Cost in the invoice's units (issue 28, item 3; docs/cost.md): the estimate ``validate`` and
``run`` print next to the account's quota, the spend caps ``--max-minutes`` and
``--max-credits``, ``--check-quota``, and what ``status`` says was consumed. Against the
simulator with ``jitter_frac=0``: every render is 30 s (0.5 video minutes); a render of
``AI_TEMPLATE`` (an AI image and a 5 s AI video) uses 22 AI credits, one of ``TEMPLATE`` none
(Pictory charges AI credits only for AI features: ``contract.ai_credits``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import AI_TEMPLATE, read_results, run_args, write_batch

EXACT = {"jitter_frac": 0.0, "video_duration_s": 30.0, "template_video_length": "drawn"}
"""Renders of exactly 0.5 video minutes (whatever the template's scenes say)."""
TEMPLATE_ESTIMATE = "× ~0.1 min"
"""helpers.TEMPLATE: two scenes of two and three words, each the shortest scene (2 s)."""


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PICTORY_API_KEY", "PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _validate(batch: dict[str, Path]) -> None:
    args = ["validate", str(batch["manifest"]), "--template", str(batch["template"])]
    assert main([*args, "--config", str(batch["config"])]) == 0


def test_validate_prints_the_estimate_without_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offline, ``validate`` prints rows × expected minutes from the template's length, says
    the quota was not read, and still ends with "no problems"."""
    batch = write_batch(tmp_path, 3)
    _validate(batch)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "estimate: 3 video(s) × ~0.1 min = ~0.2 video minutes, ~0 AI credits (template length)"
    )
    assert out[1] == "quota: not read (no Pictory credentials in the environment)"
    assert out[-1].endswith("3 rows, no problems")


def test_validate_shows_the_quota_the_account_publishes(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """With credentials, ``validate`` reads ``GET /v1/quota`` (nothing billed) and prints what
    is left beside the estimate; an account that does not publish it (404) is said in a line."""
    api_env(make_sim(quota_video_minutes=90, quota_ai_credits=500))
    batch = write_batch(tmp_path, 3)
    _validate(batch)
    out = capsys.readouterr().out
    assert "quota: 90 of 90 video minutes left, 500 of 500 AI credits left" in out

    api_env(make_sim(quota_published=False))
    _validate(batch)
    out = capsys.readouterr().out
    assert "quota: not published for this account (GET /v1/quota answered 404/403)" in out
    assert TEMPLATE_ESTIMATE in out


def test_a_run_prints_the_estimate_and_the_quota_at_its_start(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The start of ``run`` says the estimate and the quota, and the summary what was used: the
    AI credits the estimate counted for the template's AI visuals are the ones the renders used;
    a template without any is estimated and charged none."""
    api_env(make_sim(**EXACT, quota_video_minutes=100))
    batch = write_batch(tmp_path, 2, project=AI_TEMPLATE)
    assert main(run_args(batch)) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[1].startswith("estimate: 2 video(s) × ~0.1 min") and "(template length)" in err[1]
    assert err[1].endswith(", ~44 AI credits (template length)")
    assert err[2] == "quota: 100 of 100 video minutes left, 22000 of 22000 AI credits left"
    assert "2 video(s) rendered: 1.0 video minutes, 44 AI credits used" in captured.out

    plain = write_batch(tmp_path / "plain", 2)
    assert main(run_args(plain)) == 0
    captured = capsys.readouterr()
    assert ", ~0 AI credits (template length)" in captured.err
    assert "2 video(s) rendered: 1.0 video minutes, 0 AI credits used" in captured.out


def test_max_minutes_stops_at_the_cap(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--max-minutes 1.2`` with 0.5-minute renders: the first render tells what a row costs,
    then rows are admitted while what is committed fits; 2 renders (≤ 1.2 / 0.5), the run
    halts at the cap like ``--max-renders`` (exit 1, the reason in the summary and the
    ledger), and ``status`` shows what was consumed."""
    sim = make_sim(**EXACT)
    api_env(sim)
    batch = write_batch(tmp_path, 6, project=AI_TEMPLATE)
    assert main(run_args(batch, "--max-minutes", "1.2")) == 1
    out = capsys.readouterr().out
    assert sim.stats()["renders_started"] == 2
    assert "spend cap: 1.0 video minutes committed, the next row would pass --max-minutes 1.2" in (
        out
    )
    assert [r["status"] for r in read_results(batch["out"])].count("done") == 2

    assert main(["status", str(batch["out"])]) == 0
    status = capsys.readouterr().out
    assert "consumed: 2 video(s) rendered: 1.0 video minutes, 44 AI credits used" in status
    assert "--max-minutes 1.2" in status
    assert main(["status", str(batch["out"]), "--json"]) == 0
    consumed = json.loads(capsys.readouterr().out)["consumed"]
    assert consumed == {"renders": 2, "video_minutes": 1.0, "ai_credits": 44.0}


def test_max_credits_stops_at_the_cap(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--max-credits 50`` with renders of 22 AI credits (the template's AI visuals): 2
    renders (≤ 50 / 22), then the cap; a resume with the same cap (it is recorded) commits
    another 44 credits. Rows without AI features use none, so the cap lets them all render."""
    sim = make_sim(**EXACT)
    api_env(sim)
    batch = write_batch(tmp_path, 6, project=AI_TEMPLATE)
    assert main(run_args(batch, "--max-credits", "50")) == 1
    out = capsys.readouterr().out
    assert sim.stats()["renders_started"] == 2
    assert "the next row would pass --max-credits 50" in out
    assert main(["resume", str(batch["out"])]) == 1
    assert sim.stats()["renders_started"] == 4

    plain = write_batch(tmp_path / "plain", 3)
    assert main(run_args(plain, "--max-credits", "50")) == 0
    assert sim.stats()["renders_started"] == 7


def test_renders_that_leave_out_ai_credits_used_are_read_as_unknown(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An account whose renders say ``aiCreditsUsed`` only when they used some (setting
    ``ai_credits_field`` ``when-used``): a ``--max-credits`` run of rows without AI features
    renders them all, and the summary says the credits are known for none of them."""
    sim = make_sim(**EXACT, ai_credits_field="when-used")
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch, "--max-credits", "1")) == 0
    assert sim.stats()["renders_started"] == 3
    assert "3 video(s) rendered: 1.5 video minutes, 0 AI credits used (known for 0)" in (
        capsys.readouterr().out
    )
    assert {r["ai_credits"] for r in read_results(batch["out"])} == {""}


def test_check_quota_refuses_a_batch_that_cannot_fit(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--check-quota`` against an account with 0.1 video minutes left: one line with the
    figures, exit 2, nothing rendered; with ``--max-minutes 0.1`` the session fits, and stops
    at its cap."""
    sim = make_sim(quota_video_minutes=0.1)
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch, "--check-quota")) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        "orchestrator: error: --check-quota: the batch needs about 0.2 video minutes (3 videos "
        "× 0.07 min) but the account has 0.1 of 0.1 left; render fewer rows (--max-minutes, "
        "--max-renders) or raise the plan's quota"
    )
    assert sim.stats()["renders_started"] == 0
    assert main(run_args(batch, "--check-quota", "--max-minutes", "0.1")) == 1
    assert sim.stats()["renders_started"] == 1


def test_check_quota_refuses_a_batch_whose_ai_visuals_need_more_credits_than_are_left(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three rows of a template with AI visuals (22 credits each) against 50 AI credits left:
    refused with the figures, nothing rendered; the same rows without AI visuals fit."""
    sim = make_sim(quota_ai_credits=50)
    api_env(sim)
    batch = write_batch(tmp_path, 3, project=AI_TEMPLATE)
    assert main(run_args(batch, "--check-quota")) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "orchestrator: error: --check-quota: the batch needs about 66.0 AI credits but the "
        "account has 50.0 left; render fewer rows (--max-credits) or add AI credits"
    )
    assert sim.stats()["renders_started"] == 0
    assert main(run_args(write_batch(tmp_path / "plain", 3), "--check-quota")) == 0
    assert sim.stats()["renders_started"] == 3


def test_a_run_goes_on_when_the_quota_is_not_published(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An account answering 404 to ``GET /v1/quota``: the run says so and renders every row,
    ``--check-quota`` included (there is nothing to check against)."""
    api_env(make_sim(quota_published=False))
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--check-quota")) == 0
    assert "quota: not published for this account" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (("--max-minutes", "0"), "--max-minutes 0: give an amount above 0"),
        (("--max-credits", "-5"), "--max-credits -5: give an amount above 0"),
    ],
)
def test_a_cap_that_is_not_above_zero_is_one_error_line(
    given: tuple[str, str],
    message: str,
    tmp_path: Path,
    make_sim: Any,
    api_env: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--max-minutes 0`` or a negative ``--max-credits``: one line naming the option, exit 2,
    nothing sent."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, *given)) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"orchestrator: error: {message}"
    assert set(sim.stats()["requests"]) == {"GET /__sim__/stats"}  # this reading only


def test_a_template_renders_as_long_as_its_scenes_so_the_estimate_holds(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """By default the simulator renders a template as long as its scenes are timed
    (``contract.video_length``, the reading the estimate counts with): the minutes the run
    estimates are the minutes it uses."""
    api_env(make_sim())
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch)) == 0
    captured = capsys.readouterr()
    estimate = next(line for line in captured.err.splitlines() if line.startswith("estimate:"))
    assert "= ~0.2 video minutes" in estimate
    assert "3 video(s) rendered: 0.2 video minutes" in captured.out
