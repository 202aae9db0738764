"""The ``sim`` subcommand and the settings it builds."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.simulator import PROFILE_NAMES, SimSettings
from orchestrator.simulator.cli import add_parser, settings_from_args

REPO_ROOT = Path(__file__).resolve().parents[2]

THROWAWAY_MAIN = textwrap.dedent(
    """
    import argparse, sys
    from orchestrator.simulator.cli import add_parser
    parser = argparse.ArgumentParser(prog="orchestrator")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args()
    sys.exit(args.func(args))
    """
)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orchestrator")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["sim", *argv])


def test_time_scale_and_queued_status_options() -> None:
    """``--time-scale`` and ``--queued-status`` land in the settings."""
    settings = settings_from_args(_parse("--time-scale", "0.01", "--queued-status", "pending"))
    assert settings == SimSettings.for_profile("demo", time_scale=0.01, queued_status="pending")
    assert settings_from_args(_parse()).queued_status == "in-progress"


def test_quota_options() -> None:
    """``--quota-minutes``, ``--quota-credits`` and ``--no-quota`` set what ``GET /v1/quota``
    answers (docs/cost.md): try ``run --check-quota`` against a small account offline."""
    settings = settings_from_args(
        _parse("--quota-minutes", "3", "--quota-credits", "40", "--no-quota")
    )
    assert (settings.quota_video_minutes, settings.quota_ai_credits) == (3.0, 40.0)
    assert settings.quota_published is False
    assert settings_from_args(_parse()).quota_published is True


def test_options_override_the_profile() -> None:
    """Every override lands in the settings; the rest is the profile's."""
    args = _parse(
        "--profile",
        "flaky",
        "--rate-limit",
        "7",
        "--max-concurrent-renders",
        "2",
        "--preview-seconds",
        "0.5",
        "--render-seconds",
        "1.5",
        "--seed",
        "42",
        "--new-shapes",
    )
    settings = settings_from_args(args)
    assert settings == SimSettings.for_profile(
        "flaky",
        rate_limit_rps=7,
        max_concurrent_renders=2,
        preview_s=0.5,
        render_s=1.5,
        seed=42,
        new_shapes=True,
    )
    assert (args.host, args.port, args.func.__name__) == ("127.0.0.1", 8765, "run")


def test_render_subtitles_option_sets_the_form() -> None:
    """``--render-subtitles content`` makes renders offer their subtitles as contents."""
    settings = settings_from_args(_parse("--render-subtitles", "content"))
    assert settings.render_subtitle_form == "content"
    assert settings_from_args(_parse()).render_subtitle_form == "url"


def test_template_spelling_option() -> None:
    """``--template-spelling depricated`` answers that spelling everywhere; the default follows
    each documented page."""
    settings = settings_from_args(_parse("--template-spelling", "depricated"))
    assert settings.template_spelling == "depricated"
    assert settings_from_args(_parse()).template_spelling == "documented"


def test_renders_over_cap_and_per_minute_options() -> None:
    """``--renders-over-cap`` and ``--rate-limit-per-minute`` set what a render past the cap
    gets and the per-minute limit ([choice]s: both unpublished); queue and no limit by default."""
    settings = settings_from_args(
        _parse("--renders-over-cap", "refuse-409", "--rate-limit-per-minute", "90")
    )
    assert (settings.renders_over_cap, settings.rate_limit_rpm) == ("refuse-409", 90)
    default = settings_from_args(_parse())
    assert (default.renders_over_cap, default.rate_limit_rpm) == ("queue", None)


def test_template_video_length_option() -> None:
    """``--template-video-length drawn`` gives a template's render the profile's video length
    ([choice]); by default it lasts as long as its scenes are timed."""
    assert settings_from_args(_parse("--template-video-length", "drawn")).template_video_length == (
        "drawn"
    )
    assert settings_from_args(_parse()).template_video_length == "scenes"


def test_invalid_override_exits_2_without_serving(capsys: pytest.CaptureFixture[str]) -> None:
    """A value the settings refuse is one line on stderr and exit status 2."""
    args = _parse("--rate-limit", "0")
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "rate_limit_rps" in err and err.count("\n") == 1


def test_profiles_and_unknown_keys() -> None:
    """Profiles exist as documented; unknown profiles and unknown keys are errors."""
    assert set(PROFILE_NAMES) == {"demo", "realistic", "flaky", "test"}
    demo = SimSettings.for_profile("demo")
    assert (
        demo.render_s * (1 - demo.jitter_frac) >= 2 and demo.render_s * (1 + demo.jitter_frac) <= 4
    )
    flaky = SimSettings.for_profile("flaky")
    assert all(
        0 < getattr(flaky, name) <= 0.05 for name in SimSettings.model_fields if name.endswith("_p")
    )
    test = SimSettings.for_profile("test")
    assert test.render_s < 0.1 and test.rate_limit_rps is None
    assert SimSettings.for_profile("realistic").render_s >= 60
    with pytest.raises(ValueError, match="unknown simulator profile"):
        SimSettings.for_profile("nope")
    with pytest.raises(ValidationError, match="render_seconds"):
        SimSettings.for_profile("test", render_seconds=1)
    with pytest.raises(ValidationError):
        SimSettings(fault_drop_p=1.5)


@pytest.mark.slow
def test_standalone_server_logs_requests_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """It prints the base URL, logs each request to stderr, and exits 0 on SIGINT."""
    script = tmp_path / "main.py"
    script.write_text(THROWAWAY_MAIN)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), "sim", "--port", "0", "--profile", "test"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        base_url = lines[1].split("base URL: ", 1)[1].strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/pictoryapis")
        assert "any non-empty credentials are accepted" in lines[2]
        request = urllib.request.Request(
            base_url + "/v1/oauth2/token",
            data=json.dumps({"client_id": "a", "client_secret": "b"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert "access_token" in json.loads(resp.read())
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base_url + "/v1/quota", timeout=5)
        assert refused.value.code == 401
        assert json.loads(refused.value.read()) == {"message": "Unauthorized"}
        assert refused.value.headers["X-Simulator-Reason"].startswith("UNAUTHORIZED: missing")
        refused.value.close()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert "POST /pictoryapis/v1/oauth2/token 200" in err
    assert "GET /pictoryapis/v1/quota 401" in err  # with its reason, for the developer:
    assert "(UNAUTHORIZED: missing Authorization header" in err


def test_strict_credential_routes_option() -> None:
    """``--strict-credential-routes`` switches the setting on; it is off by default."""
    assert settings_from_args(_parse("--strict-credential-routes")).strict_credential_routes
    assert not settings_from_args(_parse()).strict_credential_routes


def test_require_user_id_option() -> None:
    """``--require-user-id`` switches the setting on; off by default (the user id is optional,
    contract §6.1)."""
    assert settings_from_args(_parse("--require-user-id")).require_user_id
    assert not settings_from_args(_parse()).require_user_id
