"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` into a temporary folder,
``pg_ctl start`` on a free loopback port (and a Unix socket in that folder), ``pg_ctl stop`` and
the folder removed at the end. Uses the server binaries of Debian's ``postgresql`` package
(``scripts/ensure-postgresql`` installs it), or ``initdb``/``pg_ctl`` on PATH.

PostgreSQL refuses to run as root. Run as root (CI, containers), the server runs as the
``postgres`` system user that Debian's package creates, in a folder that user owns; the tests
connect over loopback TCP with ``trust`` authentication, as the database user ``orchestrator``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DB_USER = "orchestrator"
START_TIMEOUT_S = 60


class NoPostgres(RuntimeError):
    """No PostgreSQL server could be started here; the message says why and what to install."""


def server_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: ``$PG_BINDIR``, Debian's newest, or PATH."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return Path(explicit)
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if debian:
        return Path(debian[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise NoPostgres(
        "no PostgreSQL server binaries (initdb, pg_ctl) on this machine: run "
        "scripts/ensure-postgresql as root, or `apt-get install postgresql`, or set PG_BINDIR"
    )


@dataclass
class LocalPostgres:
    """A running server; ``url(db)`` is a connection URL, ``create_database(name)`` makes one."""

    folder: Path
    port: int
    bindir: Path
    as_user: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_USER, name)
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, tool: str, *args: str, timeout_s: float = START_TIMEOUT_S) -> None:
        command = [str(self.bindir / tool), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout_s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start() -> LocalPostgres:
    """Start a fresh server; raises ``NoPostgres`` with the reason when it cannot."""
    bindir = server_bindir()
    as_user: str | None = None
    if os.geteuid() == 0:
        as_user = "postgres"
        try:
            import pwd

            pwd.getpwnam(as_user)
        except KeyError:
            raise NoPostgres(
                "running as root, and PostgreSQL refuses to run as root; there is no "
                "`postgres` user to run it as (Debian's postgresql package creates one)"
            ) from None
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    server = LocalPostgres(folder=folder, port=_free_port(), bindir=bindir, as_user=as_user)
    if as_user is not None:
        shutil.chown(folder, user=as_user)
    data, log = folder / "data", folder / "server.log"
    try:
        server._run(
            "initdb", "-D", str(data), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        options = (
            f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=on -c max_connections=200"
        )
        server._run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        tail = ""
        with contextlib.suppress(OSError):
            tail = log.read_text(errors="replace")[-500:]
        shutil.rmtree(folder, ignore_errors=True)
        raise NoPostgres(
            f"could not start PostgreSQL from {bindir}: {exc}; "
            f"{detail.decode(errors='replace')[-500:]} {tail}".strip()
        ) from exc
    return server


@contextlib.contextmanager
def running() -> Iterator[LocalPostgres]:
    server = start()
    try:
        yield server
    finally:
        server.stop()
