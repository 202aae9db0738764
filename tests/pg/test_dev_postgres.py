"""``orchestrator dev-postgres``: a newcomer's throwaway PostgreSQL, as a user runs it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from e2e.helpers import run_cli, write_batch

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60


def test_dev_postgres_serves_a_ready_ledger_and_removes_it_on_ctrl_c(tmp_path: Path) -> None:
    """It prints the --ledger URL alone on stdout, with the schema already in the database, so
    `submit` and `status` work at once; Ctrl-C stops the server, removes its folder and exits
    0."""
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "dev-postgres", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert re.fullmatch(r"postgresql://orchestrator@127\.0\.0\.1:\d+/videos", url), url
        batch = write_batch(tmp_path, 3)
        submit = ["submit", str(batch["manifest"]), "--template", str(batch["template"])]
        submitted = run_cli([*submit, "--ledger", url], env=dict(os.environ))
        assert submitted.returncode == 0, submitted.stderr
        status = run_cli(["status", "--ledger", url], env=dict(os.environ))
        assert status.returncode == 0, status.stderr
        assert "3 rows: 0 done, 0 failed, 0 ambiguous, 3 pending" in status.stdout
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=START_TIMEOUT_S)
    assert server.returncode == 0, err
    assert "Traceback" not in err
    (folder,) = re.findall(r"its data lives in (\S+), removed when it stops", err)
    assert not Path(folder).exists()


def test_dev_postgres_on_a_taken_port_says_so_in_one_line() -> None:
    """A port already in use (an earlier dev-postgres still running) is one line naming the port
    and what to do, exit 2; nothing is left behind."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["dev-postgres", "--port", str(port)], env=dict(os.environ), timeout_s=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "--port 0" in result.stderr
