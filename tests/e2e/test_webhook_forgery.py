"""Forged webhook callbacks during a real ``orchestrator run --webhook``: without the run's secret,
with the secret but another row's job, or naming a job the API does not know, they change nothing
in the ledger; and the secret itself is never written to the log, the ledger or the terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.events import LOG_NAME
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import check_invariants, run_args, write_batch

EVIL_URL = "http://127.0.0.1:9/evil.mp4"
WAIT_S = 20.0


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def _wait_for(predicate: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the run")


def _post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _done(job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "success": True,
        "data": {"status": "completed", "videoURL": EVIL_URL},
    }


@pytest.mark.slow
def test_forged_callbacks_change_nothing_in_the_ledger(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    sim = make_sim(preview_s=0.05, render_s=2.0)
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    out = batch["out"]
    run = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *run_args(batch, "--webhook")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = _wait_for(
            lambda: next(
                (e["url"] for e in _events(out / LOG_NAME) if e["event"] == "webhook_listening"),
                None,
            )
        )
        jobs = _wait_for(
            lambda: (
                found
                if len(
                    found := {
                        e["row"]: e["job"]
                        for e in _events(out / LEDGER_NAME)
                        if e["e"] == "render_job"
                    }
                )
                == 2
                else None
            )
        )
        secret = (out / "webhook.secret").read_text().strip()
        (row_a, job_a), (_, job_b) = sorted(jobs.items())
        forged = {
            "no secret": (f"{base}/hooks/{row_a}/render", _done(job_a)),
            "wrong secret": (f"{base}/hooks/{'x' * len(secret)}/{row_a}/render", _done(job_a)),
            "another row's job": (f"{base}/hooks/{secret}/{row_a}/render", _done(job_b)),
            "unknown job": (f"{base}/hooks/{secret}/{row_a}/render", _done("f" * 36)),
        }
        for what, (url, body) in forged.items():
            assert _post(url, body) == 404, what
    finally:
        printed_out, printed_err = run.communicate(timeout=60)
    assert run.returncode == 0, printed_err
    assert f"webhook receiver listening on {base}/hooks/" in printed_err
    assert "webhook callbacks refused: 2 other_job, 1 secret" in printed_err
    results = check_invariants(out, sim.stats(), 2)
    assert {r["render_job_id"] for r in results} == {job_a, job_b}
    ledger_text = (out / LEDGER_NAME).read_text()
    assert EVIL_URL not in ledger_text and "f" * 36 not in ledger_text
    rejected = [e for e in _events(out / LOG_NAME) if e["event"] == "webhooks_rejected"]
    assert rejected and rejected[0]["secret"] == 1 and rejected[0]["other_job"] == 2
    for text in (ledger_text, (out / LOG_NAME).read_text(), printed_out, printed_err):
        assert secret not in text
