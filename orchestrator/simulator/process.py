"""The simulator served by ``python -m orchestrator sim`` in its own process, on a free loopback
port: for the benchmarks (so its CPU is not counted as ours), for tests that run the real CLI as a
subprocess and kill it, and for ``scripts/soak``.

    with SimProcess("--profile", "test") as sim:
        subprocess.run([...], env=sim.env())   # the variables a user would set
        sim.stats()                            # GET /__sim__/stats
"""

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

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
WAIT_POLL_S = 0.05
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def cli_env(base_url: str, account: str = "sim") -> dict[str, str]:
    """This process's environment pointed at the simulator at ``base_url``, as a user would set
    it: client credentials of ``account`` (``ACCOUNT-client``, ``ACCOUNT-user``), no API key."""
    env = dict(os.environ)
    env.pop("PICTORY_API_KEY", None)
    env.update(
        PICTORY_API_BASE_URL=base_url,
        PICTORY_CLIENT_ID=f"{account}-client",
        PICTORY_CLIENT_SECRET=f"{account}-secret",
        PICTORY_USER_ID=f"{account}-user",
    )
    return env


class SimProcess:
    """``orchestrator sim ARGS`` as a child process; ``close`` (or leaving ``with``) stops it."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.args = args
        command = [sys.executable, "-m", "orchestrator", "sim", "--host", HOST]
        command += ["--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base_url = f"http://{HOST}:{self.port}/pictoryapis"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                self.stats()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"simulator {args} did not start") from None
                time.sleep(WAIT_POLL_S)

    def stats(self) -> dict[str, Any]:
        url = f"http://{HOST}:{self.port}/__sim__/stats"
        with urllib.request.urlopen(url, timeout=30) as resp:
            data: dict[str, Any] = json.load(resp)
            return data

    def env(self) -> dict[str, str]:
        """The environment a user would set to point the CLI at this simulator."""
        return cli_env(self.base_url)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
