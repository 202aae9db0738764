"""``doctor --calibrate`` (``api.calibrate``) against the simulator, the profile file
(``api.calibration``), ``run`` using it for its limits and ``sim --profile FILE`` replaying it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from orchestrator.api.calibrate import CalibrationPlan, calibrate
from orchestrator.api.calibration import (
    CalibrationProfile,
    load_profile,
    queues_renders,
    with_profile,
    write_profile,
)
from orchestrator.cli import main as cli_main
from orchestrator.cli.parser import build_parser
from orchestrator.clock import VirtualClock
from orchestrator.config import ApiConfig, Config, Credentials, account_key, load_config
from orchestrator.errors import ConfigError
from orchestrator.report.console import _describe
from orchestrator.simulator import SimSettings, running_simulator
from orchestrator.simulator.cli import settings_from_args

KEY = Credentials(api_key=SecretStr("pictai_calibrate"))
PLAN = CalibrationPlan(poll_s=0.5, settle_s=3.0, sustain_s=0.0)
"""On virtual time: polls every 0.5 s; no sustained probe unless a test asks."""
MEASURED = {"max_concurrent_renders": 3, "rate_limit_rps": 5.0, "queued_status": "pending"}
"""The account the brief describes: cap 3, 5 requests per second, queued renders ``pending``."""


async def _calibrate(
    settings: SimSettings, plan: CalibrationPlan = PLAN
) -> tuple[CalibrationProfile, dict[str, Any]]:
    clock = VirtualClock(start_s=1_000_000.0)
    async with running_simulator(settings, clock=clock.now) as sim:
        config = Config(api=ApiConfig(base_url=sim.base_url))
        profile = await calibrate(config, KEY, plan=plan, clock=clock)
        return profile, sim.stats()


def _account(**overrides: Any) -> SimSettings:
    return SimSettings.for_profile("test", render_s=10.0, jitter_frac=0.0, **overrides)


async def test_calibrate_finds_the_cap_the_queue_the_rate_and_render_time(tmp_path: Path) -> None:
    """Against cap 3, 5 req/s and queued renders saying ``pending``, calibration finds exactly
    those, times the renders, and bills C + 1 = 4 renders: the number it states, and the number
    the simulator counted. The profile written reads back the same."""
    profile, stats = await _calibrate(_account(**MEASURED))
    write_profile(profile, tmp_path / "p.toml")
    assert load_profile(tmp_path / "p.toml") == profile
    assert (profile.max_concurrent_renders, profile.cap_found) == (3, True)
    assert profile.queues_renders and profile.queued_status == "pending"
    assert profile.rate_limit_rps == 5.0 and profile.retry_after is True
    assert profile.render_s_p50 is not None and 10.0 <= profile.render_s_p50 <= 11.0
    assert profile.billable_renders == stats["renders_started"] == PLAN.max_renders == 4
    assert "at most 4 billable render(s)" in PLAN.statement()
    assert set(stats["requests"]) == {"POST /v2/video/storyboard/render", "GET /v1/jobs/{id}"}


async def test_calibrate_without_retry_after_or_limits() -> None:
    """429s without ``Retry-After`` are recorded as such; an account whose cap is above the
    renders allowed is reported as "at least" (no cap found, nothing queued)."""
    profile, _ = await _calibrate(
        _account(rate_limit_rps=5.0, retry_after_header=False, max_concurrent_renders=10)
    )
    assert profile.rate_limit_rps == 5.0 and profile.retry_after is False
    assert (profile.cap_found, profile.queues_renders) == (False, False)
    assert profile.max_concurrent_renders == 4 and profile.billable_renders == 4


async def test_calibrate_queued_in_progress_and_sustained_reads() -> None:
    """A queued render that says ``in-progress`` without ``renderProgress`` counts as queued
    after the settle time; the sustained reads at the found rate meet no per-minute limit."""
    plan = CalibrationPlan(poll_s=0.5, settle_s=3.0, sustain_s=65.0, max_renders=3)
    profile, _ = await _calibrate(_account(max_concurrent_renders=2, rate_limit_rps=5.0), plan)
    assert (profile.max_concurrent_renders, profile.queued_status) == (2, "in-progress")
    assert profile.queues_renders and profile.rate_limit_rpm is None
    assert profile.billable_renders == 3


def _profile(**fields: Any) -> CalibrationProfile:
    base: dict[str, Any] = {
        "account": "acc",
        "base_url": "https://api.example/pictoryapis",
        "measured_at": "2026-12-07T03:00:00Z",
        "rate_limit_rps": 5.0,
        "retry_after": True,
        "max_concurrent_renders": 3,
        "cap_found": True,
        "queues_renders": True,
        "queued_status": "pending",
        "render_s_p50": 40.0,
        "render_s_p90": 48.0,
        "billable_renders": 4,
    }
    return CalibrationProfile(**{**base, **fields})


def test_profile_file_round_trip_and_mistakes(tmp_path: Path) -> None:
    """The TOML written is read back equal; an unknown key or a bad value is one error naming
    the file and the key."""
    path = tmp_path / "p.toml"
    write_profile(_profile(), path)
    assert load_profile(path) == _profile()
    path.write_text(path.read_text() + "burst = 3\n")
    with pytest.raises(ConfigError, match=r"p\.toml: unknown key 'burst'"):
        load_profile(path)
    path.write_text(path.read_text().replace("burst = 3\n", "").replace("= 3\n", "= 0\n"))
    with pytest.raises(ConfigError, match=r"p\.toml: calibration profile key 'max_concurrent"):
        load_profile(path)


def test_run_uses_the_accounts_profile_and_config_keys_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run against the real API takes its limits from the account's profile in the
    documented place (config keys still win), queues ahead only with a profile that says
    renders queue, and its start line names the profile."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config = Config(api=ApiConfig(base_url="https://api.example/pictoryapis"))
    assert with_profile(config, KEY) == config and not queues_renders(config)
    account = account_key(config.api.base_url, KEY)
    path = tmp_path / "orchestrator" / "profiles" / f"{account}.toml"
    write_profile(_profile(rate_limit_rpm=200.0), path)
    used = with_profile(config, KEY)
    assert used.limits.max_requests_per_s == 5.0
    assert used.limits.max_requests_per_minute == 200.0
    assert used.limits.max_renders_in_flight == 3
    assert used.limits.calibration == str(path) and queues_renders(used)
    assert used.limits.renders_queued_ahead == 1 and config.limits.renders_queued_ahead == 0
    line = _describe("run_started", {"rows": 2, "calibration": str(path)}, False)
    assert line is not None and f"limits from calibration profile {path}" in line
    given = tmp_path / "c.toml"
    api = f'[api]\nbase_url = "{config.api.base_url}"\n'
    given.write_text(api + "[limits]\nmax_requests_per_s = 2.0\n")
    mine = with_profile(load_config(given), KEY)
    assert mine.limits.max_requests_per_s == 2.0 and mine.limits.max_renders_in_flight == 3
    write_profile(_profile(queues_renders=False), path)
    refusing = with_profile(config, KEY)
    assert not queues_renders(refusing) and refusing.limits.renders_queued_ahead == 0
    given.write_text(api + '[limits]\ncalibration = "none"\n')
    unused = with_profile(load_config(given), KEY).limits
    assert unused.max_renders_in_flight == 8 and unused.calibration == "none"


def _sim_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["sim", *argv])


async def test_sim_profile_file_replays_the_measured_account(tmp_path: Path) -> None:
    """``sim --profile FILE`` answers with the profile's figures: calibrating the replayed
    simulator finds the same cap, queue, rate and Retry-After again."""
    path = tmp_path / "acct.toml"
    write_profile(_profile(render_s_p50=10.0, render_s_p90=10.0), path)
    settings = settings_from_args(_sim_args("--profile", str(path)))
    assert settings.max_concurrent_renders == 3 and settings.rate_limit_rps == 5.0
    assert settings.queued_status == "pending" and settings.render_s == 10.0
    again, _ = await _calibrate(settings.model_copy(update={"time_scale": 1.0}))
    assert (again.max_concurrent_renders, again.rate_limit_rps) == (3, 5.0)
    assert again.queues_renders and again.queued_status == "pending"
    with pytest.raises(ValueError, match="neither a profile name"):
        settings_from_args(_sim_args("--profile", str(tmp_path / "missing.toml")))
    assert cli_main.main(["sim", "--profile", str(tmp_path / "missing.toml")]) == 2


def test_sim_profile_file_replays_a_per_minute_limit_and_a_cap_that_refuses(
    tmp_path: Path,
) -> None:
    """A profile that measured a per-minute limit and a cap that refuses (no queue) is played
    with both: ``rate_limit_rpm`` and ``renders_over_cap = refuse-429``; one that queues keeps
    the queue."""
    path = tmp_path / "refuses.toml"
    write_profile(_profile(rate_limit_rpm=120, queues_renders=False), path)
    settings = settings_from_args(_sim_args("--profile", str(path)))
    assert settings.rate_limit_rpm == 120 and settings.renders_over_cap == "refuse-429"
    write_profile(_profile(), path)
    assert settings_from_args(_sim_args("--profile", str(path))).renders_over_cap == "queue"


def test_doctor_calibrate_cli_states_asks_and_writes(
    make_sim: Any, api_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``doctor --calibrate`` states the billable renders, refuses without a confirmation
    (nothing sent), and with ``--yes`` makes exactly the stated number against a simulator
    with 2 renders at once and writes the profile there."""
    sim = make_sim(max_concurrent_renders=2, queued_status="pending", render_s=0.4, jitter_frac=0.0)
    api_env(sim)
    out = tmp_path / "profile.toml"
    config = tmp_path / "fast.toml"
    config.write_text("[poll]\nrender_interval_s = 0.05\n[limits]\nmax_requests_per_s = 200\n")
    argv = ["doctor", "--calibrate", "--renders", "3", "--sustain-seconds", "0"]
    argv += ["--config", str(config), "--profile-out", str(out)]
    assert cli_main.main(argv) == 2
    assert cli_main.main(["doctor", "--yes", "--renders", "3"]) == 2
    assert "--yes, --renders: only with --calibrate" in capsys.readouterr().err
    assert sim.stats()["renders_started"] == 0 and not out.exists()
    assert cli_main.main([*argv, "--yes"]) == 0
    printed = capsys.readouterr().out
    assert "at most 3 billable render(s)" in printed and "3 billable render(s) made" in printed
    assert sim.stats()["renders_started"] == 3
    profile = load_profile(out)
    assert (profile.max_concurrent_renders, profile.queues_renders) == (2, True)
    assert profile.rate_limit_rps is None  # the test profile has no rate limit
