"""A simulator served by `orchestrator sim` in its own process, for tests that run the real CLI
as a subprocess (and for ``scripts/soak``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any


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


def sim_env(sim: StandaloneSim) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PICTORY_API_BASE_URL=sim.base_url,
        PICTORY_CLIENT_ID="crash-client",
        PICTORY_CLIENT_SECRET="crash-secret",
        PICTORY_USER_ID="crash-user",
    )
    return env
