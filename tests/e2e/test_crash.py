"""The real CLI as a subprocess, killed and interrupted, against a standalone simulator."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import check_invariants, run_args, write_batch

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class StandaloneSim:
    def __init__(self, *args: str) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "sim", "--port", str(self.port), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.base_url = f"http://127.0.0.1:{self.port}/pictoryapis"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("simulator did not start")

    def stats(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/__sim__/stats"
        with urllib.request.urlopen(url, timeout=5) as resp:
            data: dict[str, Any] = json.load(resp)
            return data

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def standalone_sim() -> Iterator[Any]:
    sims: list[StandaloneSim] = []

    def make(*args: str) -> StandaloneSim:
        sim = StandaloneSim(*args)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.close()


def _env(sim: StandaloneSim) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PICTORY_API_BASE_URL=sim.base_url,
        PICTORY_CLIENT_ID="crash-client",
        PICTORY_CLIENT_SECRET="crash-secret",
        PICTORY_USER_ID="crash-user",
    )
    return env


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_random_moments_then_rerun_completes(
    tmp_path: Path, standalone_sim: Any
) -> None:
    """Killed with SIGKILL part-way (several times), re-run until done: no row lost or rendered
    twice, and every file matches what the simulator served."""
    sim = standalone_sim(
        "--profile",
        "test",
        "--preview-seconds",
        "0.1",
        "--render-seconds",
        "1.0",
        "--max-concurrent-renders",
        "4",
        "--seed",
        "7",
    )
    batch = write_batch(tmp_path, 24)
    env = _env(sim)
    rng = random.Random(1234)
    kills = 0
    runs = 0
    for _ in range(20):
        runs += 1
        proc = _cli(run_args(batch), env)
        killed = False
        if kills < 6:
            time.sleep(rng.uniform(0.7, 2.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                killed = True
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err
        # A run that ended by itself has done all it can: rows whose render was in flight at a
        # kill are ambiguous by contract (never resent), so they may keep the exit status at 1.
        if proc.returncode == 0 or (not killed and proc.returncode == 1):
            break
    else:
        pytest.fail("the batch never completed")
    assert kills >= 3, f"only {kills} kills landed before the batch finished ({runs} runs)"
    results = check_invariants(batch["out"], sim.stats(), 24)
    assert {r["status"] for r in results} <= {"done", "ambiguous"}


def test_ctrl_c_drains_then_resume_completes(tmp_path: Path, standalone_sim: Any) -> None:
    """The first SIGINT stops admitting and drains; exit 130; the next run completes the batch."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "0.5")
    batch = write_batch(tmp_path, 30, extra_config="")
    env = _env(sim)
    proc = _cli(run_args(batch, "--concurrency", "2"), env)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "finishing the rows in flight" in err
    assert "Traceback" not in err
    proc = _cli(run_args(batch), env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    results = check_invariants(batch["out"], sim.stats(), 30)
    assert {r["status"] for r in results} == {"done"}


def test_double_ctrl_c_stops_at_once_and_resumes(tmp_path: Path, standalone_sim: Any) -> None:
    """A second SIGINT cancels in-flight rows at once; the ledger stays consistent for resume."""
    sim = standalone_sim("--profile", "test", "--render-seconds", "2")
    batch = write_batch(tmp_path, 10)
    env = _env(sim)
    proc = _cli(run_args(batch), env)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    proc = _cli(run_args(batch), env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    check_invariants(batch["out"], sim.stats(), 10)
