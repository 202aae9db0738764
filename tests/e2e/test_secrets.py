"""Secrets never leave the environment: planted credentials, and the access tokens the simulator
issued, appear in no file of the run directory (ledger, log, results, videos) and in nothing the CLI
printed, on good runs and failing ones, quiet and verbose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import read_results, run_args, write_batch

CLIENT_ID = "client-PLANTED-7f3a9c41"
CLIENT_SECRET = "secret-PLANTED-51b2e8d0"
API_KEY = "pictai_PLANTED_0c9d8e7f6a5b"
SIM_TOKEN_PREFIX = b"simtok_"
"""Every access token the simulator issues starts so (``Simulator.auth``'s token factory)."""


def _leaks(run_dir: Path, printed: str, secrets: list[str]) -> list[str]:
    """Where any secret, or any issued access token, shows up: file paths and 'output'."""
    found: list[str] = []
    needles = [s.encode() for s in secrets] + [SIM_TOKEN_PREFIX]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "log.jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        found += [f"{path}: {n!r}" for n in needles if n in data]
    found += [f"output: {n!r}" for n in needles if n in printed.encode()]
    return found


def _client_credentials(monkeypatch: pytest.MonkeyPatch, sim: Any) -> list[str]:
    monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
    monkeypatch.setenv("PICTORY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PICTORY_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("PICTORY_USER_ID", "user-42")
    monkeypatch.delenv("PICTORY_API_KEY", raising=False)
    return [CLIENT_ID, CLIENT_SECRET]


def _api_key(monkeypatch: pytest.MonkeyPatch, sim: Any) -> list[str]:
    monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
    monkeypatch.setenv("PICTORY_API_KEY", API_KEY)
    for name in ("PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET", "PICTORY_USER_ID"):
        monkeypatch.delenv(name, raising=False)
    return [API_KEY]


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
@pytest.mark.parametrize(
    ("credentials", "faults"),
    [
        ("client", {}),
        ("client", {"fault_job_failed_p": 0.5}),
        ("client", {"fault_token_revoked_p": 0.3, "fault_server_error_p": 0.1}),
        ("key", {"fault_job_failed_p": 0.5, "fault_server_error_p": 0.2}),
    ],
    ids=["client-ok", "client-job-failed", "client-token-revoked", "key-failing"],
)
def test_no_secret_or_token_in_run_dir_or_output(
    tmp_path: Path,
    make_sim: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    credentials: str,
    faults: dict[str, float],
    verbose: bool,
) -> None:
    """Planted credentials and issued access tokens appear nowhere we write or print, including
    failure messages and verbose event output."""
    sim = make_sim(seed=3, **faults)
    secrets = (_client_credentials if credentials == "client" else _api_key)(monkeypatch, sim)
    # Few attempts, so token revocations and 5xx turn into failed rows whose messages are written.
    batch = write_batch(tmp_path, 8, config={"retry": {"max_attempts": 2}})
    code = main(run_args(batch, *(["-v"] if verbose else [])))
    code_again = main(run_args(batch, "--retry-failed"))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    statuses = {r["status"] for r in read_results(batch["out"])}
    if faults:  # failure messages were written to the ledger, the log and the results
        assert b'"e":"failed"' in (batch["out"] / LEDGER_NAME).read_bytes()
    else:
        assert code == code_again == 0 and statuses == {"done"}
    if "done" in statuses:
        assert list((batch["out"] / "videos").glob("*.mp4")), "videos are scanned too"
    if credentials == "client":
        assert sim.stats()["requests"]["POST /v1/oauth2/token"] >= 1  # tokens were issued
    assert _leaks(batch["out"], out + err, secrets) == []


def test_scan_would_find_a_leak(tmp_path: Path) -> None:
    """The scan itself finds a planted secret or token in a nested file and in the output."""
    (tmp_path / "videos").mkdir()
    (tmp_path / "log.jsonl").write_text("{}\n")
    (tmp_path / "videos" / "a.mp4").write_bytes(b"\x00" + CLIENT_SECRET.encode())
    leaks = _leaks(tmp_path, "Authorization: simtok_0123", [CLIENT_SECRET])
    assert len(leaks) == 2
