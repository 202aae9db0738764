"""A throwaway PostgreSQL server on this machine: ``initdb`` into a temporary folder,
``pg_ctl start`` on a loopback port, ``pg_ctl stop`` and the folder removed at the end. What
``orchestrator dev-postgres`` serves a newcomer's first shared batch from, and what the tests,
the benchmarks and ``scripts/soak`` start theirs with. No cluster, role or password to set up:
the server's one user (``DB_USER``) connects over loopback TCP with ``trust`` authentication.

It needs PostgreSQL's server programs (``initdb``, ``pg_ctl``, ``createdb``), found in
``$PG_BINDIR``, Debian's and Ubuntu's ``/usr/lib/postgresql/N/bin`` (the newest), Homebrew's
folders, the Windows installer's ``Program Files\\PostgreSQL\\N\\bin``, or on PATH.
``scripts/ensure-postgresql`` installs Debian's when missing.

PostgreSQL refuses to run as root. Run as root (CI, containers), the server runs as the
``postgres`` system user that Debian's package creates, through ``runuser``, in a folder that
user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DB_USER = "orchestrator"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60
SYSTEM_USER = "postgres"
"""Whom the server runs as when this process is root (Debian's package creates the user)."""
SEARCHED = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew on Apple silicon (keg-only versions)
    "/usr/local/opt/postgresql@*/bin",  # Homebrew on Intel Macs
    "/Applications/Postgres.app/Contents/Versions/*/bin",  # Postgres.app
    "C:/Program Files/PostgreSQL/*/bin",  # the EDB installer on Windows
)
"""Where the server's programs are looked for, after ``$PG_BINDIR`` and before PATH; the
highest version found wins."""
INSTALL_HINT = (
    "install PostgreSQL's server: `apt-get install postgresql` (Debian, Ubuntu; or "
    "scripts/ensure-postgresql as root), `brew install postgresql@17` (macOS), the installer "
    "from postgresql.org (Windows), or set PG_BINDIR to the folder holding initdb and pg_ctl"
)


class NoPostgres(RuntimeError):
    """No PostgreSQL server could be started here; the message says why and what to do."""


class PortInUse(NoPostgres):
    """The port asked for is taken (by another server, or an earlier one still running)."""


def _version(path: str) -> tuple[int, ...]:
    """The version in a server folder's path (``.../postgresql@17/bin`` → (17,))."""
    found = re.findall(r"(\d+(?:\.\d+)*)", path)
    return tuple(int(p) for p in found[-1].split(".")) if found else ()


def _exe(name: str) -> str:
    return f"{name}.exe" if sys.platform == "win32" else name


def server_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: ``$PG_BINDIR``, the newest of ``SEARCHED``, or
    PATH; ``NoPostgres`` says what to install when none has them."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return Path(explicit)
    candidates = [
        folder
        for pattern in SEARCHED
        for folder in glob.glob(pattern)
        if Path(folder, _exe("initdb")).is_file()
    ]
    if candidates:
        return Path(max(candidates, key=_version))
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise NoPostgres(f"no PostgreSQL server programs (initdb, pg_ctl) here: {INSTALL_HINT}")


@dataclass
class LocalPostgres:
    """A running server; ``url(db)`` is a connection URL, ``create_database(name)`` makes one."""

    folder: Path
    port: int
    bindir: Path
    as_user: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{DB_USER}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", HOST, "-p", str(self.port), "-U", DB_USER, name)
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (at once: nothing in it is kept) and remove its folder."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, tool: str, *args: str, timeout_s: float = START_TIMEOUT_S) -> None:
        command = [str(self.bindir / _exe(tool)), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _system_user() -> str | None:
    """``SYSTEM_USER`` when this process is root (PostgreSQL refuses to run as root), else None."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise NoPostgres(
            "running as root, and PostgreSQL refuses to run as root; there is no "
            f"`{SYSTEM_USER}` user to run it as (Debian's postgresql package creates one): "
            "run as another user, or install the package"
        ) from None
    return SYSTEM_USER


def start(port: int | None = None) -> LocalPostgres:
    """Start a fresh server on ``port`` (default: a free one); ``NoPostgres`` says why not."""
    bindir = server_bindir()
    if port is None:
        port = free_port()
    elif not _port_is_free(port):
        raise PortInUse(f"port {port} on {HOST} is in use")
    as_user = _system_user()
    folder = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    server = LocalPostgres(folder=folder, port=port, bindir=bindir, as_user=as_user)
    if as_user is not None:
        shutil.chown(folder, user=as_user)
    data, log = folder / "data", folder / "server.log"
    try:
        server._run(
            "initdb", "-D", str(data), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        options = f"-p {port} -c listen_addresses={HOST} -c fsync=on -c max_connections=200"
        if sys.platform != "win32":
            options += f" -k {folder}"  # its Unix socket in its own folder, not /var/run
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
def running(port: int | None = None) -> Iterator[LocalPostgres]:
    server = start(port)
    try:
        yield server
    finally:
        server.stop()
