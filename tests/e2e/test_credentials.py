"""Credentials as Pictory documents them, through the real CLI (contract §6.1): client id +
secret need no user id, against the default simulator; a 401 answered with Pictory's own body
(``{"message": "Unauthorized"}``) still ends in one line that says what to check."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.errors import ExitCode

from .helpers import check_invariants, read_results, run_args, write_batch

ROWS = 3
FEW_RETRIES = {"retry": {"max_attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.02}}


def _client_env(monkeypatch: pytest.MonkeyPatch, sim: Any, *, user_id: str | None) -> None:
    """Client id + secret for ``sim``, with or without ``PICTORY_USER_ID``; no API key."""
    monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
    monkeypatch.setenv("PICTORY_CLIENT_ID", "cred-client")
    monkeypatch.setenv("PICTORY_CLIENT_SECRET", "cred-secret")
    monkeypatch.delenv("PICTORY_API_KEY", raising=False)
    if user_id is None:
        monkeypatch.delenv("PICTORY_USER_ID", raising=False)
    else:
        monkeypatch.setenv("PICTORY_USER_ID", user_id)


def test_client_credentials_without_a_user_id_render_against_the_default_simulator(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No PICTORY_USER_ID: the client starts, gets a token and renders every row on the
    default simulator, which (like Pictory's Getting Started) asks for none."""
    sim = make_sim()
    _client_env(monkeypatch, sim, user_id=None)
    batch = write_batch(tmp_path, ROWS)
    assert main(run_args(batch)) == 0
    results = check_invariants(batch["out"], sim.stats(), ROWS)
    assert {r["status"] for r in results} == {"done"}
    assert sim.stats()["requests"]["POST /v1/oauth2/token"] >= 1


def test_a_simulator_requiring_the_user_id_fails_rows_naming_the_variable(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Against ``require_user_id`` without PICTORY_USER_ID every 401 is Pictory's bare
    ``Unauthorized``; the row's line still says to set PICTORY_USER_ID, with no traceback; with
    it set, the batch renders."""
    sim = make_sim(require_user_id=True)
    _client_env(monkeypatch, sim, user_id=None)
    batch = write_batch(tmp_path / "without", 1, config=FEW_RETRIES)
    assert main(run_args(batch)) != 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Unauthorized: the API refused the credentials" in text
    assert "set PICTORY_USER_ID" in text and "Traceback" not in text
    (row,) = read_results(batch["out"])
    assert row["status"] == "failed" and row["error"].startswith("auth: ")
    _client_env(monkeypatch, sim, user_id="u-7")
    again = write_batch(tmp_path / "with", ROWS)
    assert main(run_args(again)) == 0
    assert {r["status"] for r in read_results(again["out"])} == {"done"}


def test_a_wrong_api_key_stops_the_run_at_once_leaving_every_row_pending(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A key the API refuses (its 401 body is Pictory's ``{"message": "Unauthorized"}``): the
    first 401 stops the run within seconds, default retries and all, with one message naming
    PICTORY_API_KEY and ``orchestrator doctor`` (never the key); no row is sent, every row stays
    pending, exit 1 (some rows pending); with the right key, ``resume`` renders them all."""
    rows = 4
    sim = make_sim(accepted_api_key="pictai_right")
    monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
    monkeypatch.setenv("PICTORY_API_KEY", "pictai_wrong_one")
    batch = write_batch(tmp_path, rows)
    started = time.monotonic()
    assert main(run_args(batch)) == ExitCode.NOT_ALL_DONE
    assert time.monotonic() - started < 5.0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "the API refused the API key: check PICTORY_API_KEY" in text
    assert "`orchestrator doctor` tests it" in text and "quota: not read" not in text
    assert "pictai_wrong_one" not in text and "Traceback" not in text
    assert "FAILED" not in text
    results = read_results(batch["out"])
    assert [r["status"] for r in results] == ["pending"] * rows
    sent = {k: n for k, n in sim.stats()["requests"].items() if "/__sim__/" not in k}
    assert sent == {"GET /v1/quota": 1}  # the quota read, refused; nothing else
    monkeypatch.setenv("PICTORY_API_KEY", "pictai_right")
    assert main(["resume", str(batch["out"])]) == 0
    assert {r["status"] for r in read_results(batch["out"])} == {"done"}


def test_refused_client_credentials_stop_the_run_the_same_way(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Client credentials the token endpoint refuses take the same path as a wrong key: one
    token request, the run stops naming PICTORY_CLIENT_ID and PICTORY_CLIENT_SECRET, every row
    pending, exit 1."""
    sim = make_sim(accepted_client_secret="the-right-secret")
    _client_env(monkeypatch, sim, user_id=None)
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch)) == ExitCode.NOT_ALL_DONE
    out = capsys.readouterr()
    assert "stopped admitting rows: the token endpoint refused our client credentials" in out.out
    assert "check PICTORY_CLIENT_ID and PICTORY_CLIENT_SECRET" in out.out
    assert "Traceback" not in out.out + out.err
    assert [r["status"] for r in read_results(batch["out"])] == ["pending"] * 3
    sent = {k: n for k, n in sim.stats()["requests"].items() if "/__sim__/" not in k}
    assert sent == {"POST /v1/oauth2/token": 1}
