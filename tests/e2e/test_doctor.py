"""``orchestrator doctor`` through the real CLI: it passes against a working simulator, and says
which of the secret, the API key or the base URL is wrong (exit 2), without billing anything."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.cli.doctor import Finding, _skew_finding
from orchestrator.simulator.process import SimProcess

pytestmark = pytest.mark.slow


def _doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def sim() -> SimProcess:
    with SimProcess(
        "--profile", "test", "--client-secret", "sim-secret", "--api-key", "pictai_right"
    ) as sim:
        yield sim


def test_doctor_passes_against_the_simulator_and_bills_nothing(sim: SimProcess) -> None:
    """Every check passes with the right credentials, exit 0, and no job is created."""
    before = sim.stats()
    done = _doctor(sim.env())
    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("credentials", "API", "clock", "quota", "templates"):
        assert f"OK    {check}:" in done.stdout
    assert "ready" in done.stdout
    after = sim.stats()
    assert after["renders_started"] == before["renders_started"] == 0
    assert after["jobs"] == before["jobs"]
    assert {k for k in after["requests"] if "/__sim__/" not in k} <= {
        "POST /v1/oauth2/token",
        "GET /v1/quota",
        "GET /v1/templates",
    }, after["requests"]


def test_doctor_passes_with_an_api_key(sim: SimProcess) -> None:
    """A key: named as the credential in use, with the v2 video routes it takes (§5.6), and
    the key itself printed nowhere."""
    env = sim.env()
    env["PICTORY_API_KEY"] = "pictai_right"
    done = _doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "API key accepted" in done.stdout
    assert "OK    credentials: an API key (pictai_…) from PICTORY_API_KEY" in done.stdout
    routes = _line(done.stdout, "OK    routes:")
    assert "no token" in routes and "POST /v2/video/storyboard" in routes
    assert "/v1/video/from-template" not in routes
    assert "pictai_right" not in done.stdout + done.stderr


def test_doctor_names_client_credentials_with_or_without_a_user_id(sim: SimProcess) -> None:
    """Client id + secret pass with no PICTORY_USER_ID (optional, §6.1); doctor says whether a
    user id is in use and that videos go to the v1 routes with a token; no value is printed."""
    env = sim.env()
    env.pop("PICTORY_USER_ID")
    done = _doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    credentials = _line(done.stdout, "OK    credentials:")
    assert "PICTORY_CLIENT_ID and PICTORY_CLIENT_SECRET" in credentials
    assert "without a user id" in credentials
    routes = _line(done.stdout, "OK    routes:")
    assert "POST /v1/oauth2/token" in routes and "no X-Pictory-User-Id" in routes
    assert "POST /v1/video/from-template" in routes
    env["PICTORY_USER_ID"] = "doctor-user-77"
    done = _doctor(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "with the user id from PICTORY_USER_ID" in _line(done.stdout, "OK    credentials:")
    assert "with X-Pictory-User-Id" in _line(done.stdout, "OK    routes:")
    for value in ("sim-client", "sim-secret", "doctor-user-77"):
        assert value not in done.stdout + done.stderr


def _line(stdout: str, start: str) -> str:
    """The one line of ``stdout`` that starts (after indentation) with ``start``."""
    (line,) = [s.strip() for s in stdout.splitlines() if s.strip().startswith(start)]
    return line


def test_doctor_names_a_wrong_client_secret(sim: SimProcess) -> None:
    env = sim.env()
    env["PICTORY_CLIENT_SECRET"] = "not-the-secret"
    done = _doctor(env)
    assert done.returncode == 2
    assert "refused the client credentials" in done.stdout
    assert "PICTORY_CLIENT_SECRET" in done.stdout
    assert "SKIP  quota" in done.stdout
    assert "not-the-secret" not in done.stdout + done.stderr


def test_doctor_names_a_wrong_api_key(sim: SimProcess) -> None:
    env = sim.env()
    env["PICTORY_API_KEY"] = "pictai_wrong"
    done = _doctor(env)
    assert done.returncode == 2
    assert "refused the API key in PICTORY_API_KEY" in done.stdout


def test_doctor_names_a_wrong_base_url(sim: SimProcess) -> None:
    """The simulator's host without the /pictoryapis root answers 404: not the API."""
    env = sim.env()
    env["PICTORY_API_BASE_URL"] = sim.base_url.removesuffix("/pictoryapis")
    done = _doctor(env)
    assert done.returncode == 2
    assert "is not the Pictory API" in done.stdout
    assert "PICTORY_API_BASE_URL" in done.stdout


def test_doctor_names_an_unreachable_base_url(sim: SimProcess) -> None:
    env = sim.env()
    env["PICTORY_API_BASE_URL"] = "http://127.0.0.1:9/pictoryapis"
    done = _doctor(env)
    assert done.returncode == 2
    assert "cannot reach 127.0.0.1:9" in done.stdout


def test_doctor_without_credentials_says_what_to_set(sim: SimProcess) -> None:
    env = sim.env()
    for name in ("PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET", "PICTORY_USER_ID"):
        env.pop(name)
    done = _doctor(env)
    assert done.returncode == 2
    assert "FAIL  credentials" in done.stdout and "PICTORY_API_KEY" in done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("skew_s", "verdict"), [(2.0, "ok"), (-90.0, "warn"), (900.0, "fail")])
def test_clock_skew_is_judged_from_the_date_header(skew_s: float, verdict: str) -> None:
    """The API's ``Date`` header against this machine's clock: 30 s warns, 300 s fails."""
    server = "Sat, 28 Nov 2026 20:00:00 GMT"
    server_s = 1795896000.0  # that instant
    finding: Finding = _skew_finding(server, server_s + skew_s)
    assert finding.verdict == verdict
    if verdict != "ok":
        assert ("ahead of" if skew_s > 0 else "behind") in finding.detail
