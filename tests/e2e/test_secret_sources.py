"""Secrets from where a container or a workstation keeps them (issue 32): ``*_FILE`` variables,
the OS keyring, the notification URL from a file or ``ORCHESTRATOR_NOTIFY_URL``; ``doctor``
names where each came from (never the value) and every command warns about a secret given on
its command line. Then the marker test: planted secrets (client secret and API key from files,
the notify URL's key, the webhook secret) appear in no file under the run directory after a
good run, a failing run and a ``report``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.doctor import command_line_finding
from orchestrator.cli.exposed import exposed, running_exposures
from orchestrator.cli.main import main
from orchestrator.config import load_credentials
from orchestrator.errors import ConfigError
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import run_args, write_batch
from .receiver import Receiver

CLIENT_SECRET = "secret-FROMFILE-4e1d77a2"
API_KEY = "pictai_FROMFILE_9b8a7c6d5e"
NOTIFY_KEY = "/hooks/secret-key"
"""The receiver's path: a chat webhook's key."""
CREDENTIALS = (
    "PICTORY_API_KEY",
    "PICTORY_CLIENT_ID",
    "PICTORY_CLIENT_SECRET",
    "PICTORY_USER_ID",
    "ORCHESTRATOR_NOTIFY_URL",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No credential, and no ``*_FILE`` form of one, in the environment."""
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name + "_FILE", raising=False)
    return monkeypatch


def _secret_file(folder: Path, name: str, value: str) -> Path:
    path = folder / name
    path.write_text(f"  {value}\n\n")  # stripped when read
    path.chmod(0o600)
    return path


def test_credentials_come_from_files_named_by_file_variables(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    """``PICTORY_API_KEY_FILE`` and ``PICTORY_CLIENT_SECRET_FILE`` are read (stripped), and the
    credentials say which file each came from, never the value."""
    clean_env.setenv("PICTORY_API_KEY_FILE", str(_secret_file(tmp_path, "key", API_KEY)))
    creds = load_credentials(required=True)
    assert creds.api_key is not None and creds.api_key.get_secret_value() == API_KEY
    assert f"from the file {tmp_path / 'key'} (PICTORY_API_KEY_FILE)" in creds.describe()
    clean_env.delenv("PICTORY_API_KEY_FILE")
    clean_env.setenv("PICTORY_CLIENT_ID", "client-1")
    clean_env.setenv("PICTORY_CLIENT_SECRET_FILE", str(_secret_file(tmp_path, "s", CLIENT_SECRET)))
    creds = load_credentials(required=True)
    assert creds.client_secret is not None
    assert creds.client_secret.get_secret_value() == CLIENT_SECRET
    described = creds.describe()
    assert "the id from PICTORY_CLIENT_ID" in described
    assert "(PICTORY_CLIENT_SECRET_FILE)" in described and CLIENT_SECRET not in described


def test_a_missing_or_doubled_secret_file_is_one_line(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``*_FILE`` naming a missing or empty file, or set beside its variable, is refused in
    one line naming the variable and the file; ``run`` exits 2 without a traceback."""
    clean_env.setenv("PICTORY_CLIENT_ID", "client-1")
    clean_env.setenv("PICTORY_CLIENT_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=r"PICTORY_CLIENT_SECRET_FILE=.*absent: cannot read"):
        load_credentials(required=True)
    (tmp_path / "empty").write_text("\n")
    clean_env.setenv("PICTORY_CLIENT_SECRET_FILE", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match=r"the secret file is empty"):
        load_credentials(required=True)
    clean_env.setenv("PICTORY_CLIENT_SECRET", "x")
    with pytest.raises(ConfigError, match=r"both PICTORY_CLIENT_SECRET and .*_FILE are set"):
        load_credentials(required=True)
    clean_env.delenv("PICTORY_CLIENT_SECRET")
    clean_env.setenv("PICTORY_CLIENT_SECRET_FILE", str(tmp_path / "absent"))
    batch = write_batch(tmp_path, 1)
    assert main(run_args(batch)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line] == [
        f"orchestrator: error: PICTORY_CLIENT_SECRET_FILE={tmp_path / 'absent'}: cannot read "
        "the secret file (No such file or directory); fix the path or its permissions"
    ]


@pytest.fixture
def fake_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A ``keyring`` package on the import path holding an API key, as ``keyring set
    orchestrator PICTORY_API_KEY`` leaves one (the optional extra is not installed here)."""
    package = tmp_path / "site" / "keyring"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(f"""
        from . import errors
        def get_password(service, user):
            if (service, user) == ("orchestrator", "PICTORY_API_KEY"):
                return {API_KEY!r}
            return None
        """)
    )
    (package / "errors.py").write_text(
        "class KeyringError(Exception): pass\nclass NoKeyringError(KeyringError): pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in ("keyring", "keyring.errors"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield
    for name in ("keyring", "keyring.errors"):
        sys.modules.pop(name, None)


def test_the_os_keyring_is_asked_last_and_named(
    fake_keyring: None, clean_env: pytest.MonkeyPatch
) -> None:
    """With no variable and no file, a real run's credentials come from the keyring (service
    ``orchestrator``), and say so; a simulated run never asks it."""
    creds = load_credentials(required=True)
    assert creds.api_key is not None and creds.api_key.get_secret_value() == API_KEY
    assert "from the OS keyring (orchestrator/PICTORY_API_KEY)" in creds.describe()
    assert load_credentials(required=False).api_key is None


def test_doctor_says_where_each_credential_came_from(
    tmp_path: Path,
    make_sim: Any,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``doctor`` against a simulator names the file the client secret came from and checks it
    with a real token call; it never prints the secret."""
    sim = make_sim()
    clean_env.setenv("PICTORY_API_BASE_URL", sim.base_url)
    clean_env.setenv("PICTORY_CLIENT_ID", "client-1")
    clean_env.setenv("PICTORY_CLIENT_SECRET_FILE", str(_secret_file(tmp_path, "s", CLIENT_SECRET)))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"the secret from the file {tmp_path / 's'} (PICTORY_CLIENT_SECRET_FILE)" in out
    assert CLIENT_SECRET not in out
    assert sim.stats()["requests"]["POST /v1/oauth2/token"] >= 1


def test_a_secret_given_as_an_argument_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--notify https://…``, ``--token T`` and a ``--ledger`` URL with a password each get one
    warning naming the flag and the safer form; ``env:``, ``file:`` and plain URLs none."""
    assert exposed(["run", "m.csv", "--notify", "https://hooks.example/T/B/key"]) == ["--notify"]
    assert exposed(["serve", "--token=abc"]) == ["--token"]
    assert exposed(["status", "--ledger", "postgresql://u:pw@db/x"]) == ["--ledger"]
    assert exposed(["run", "--notify", "env:SLACK", "--ledger", "postgresql://u@db/x"]) == []
    assert exposed(["run", "--notify-file", "/run/secrets/hook"]) == []
    batch = write_batch(tmp_path, 1)
    main(run_args(batch, "--simulate", "test", "--notify", "https://127.0.0.1:9/hooks/k"))
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "puts a secret on the command line" in line]
    assert len(warned) == 1 and "--notify-file FILE" in warned[0], err
    assert "hooks/k" not in err


def test_doctor_warns_about_a_running_orchestrator_with_a_secret_argument() -> None:
    """``doctor`` finds this user's running orchestrator whose arguments hold a notify URL and
    names its process and the flag, with the safer form, never the URL."""
    url = "https://hooks.example/T0/B0/PLANTEDKEY"
    code = "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(30)"
    with subprocess.Popen(
        [sys.executable, "-c", code, "orchestrator", "run", "m.csv", "--notify", url],
        stdout=subprocess.PIPE,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
            found = [e for e in running_exposures() if e[0] == proc.pid]
        finally:
            proc.kill()
    assert found == [(proc.pid, "--notify")]
    finding = command_line_finding(found)
    assert finding.verdict == "warn" and f"process {proc.pid}" in finding.detail
    assert finding.fix is not None and "--notify-file" in finding.fix
    assert "PLANTEDKEY" not in finding.line()
    assert command_line_finding([]).verdict == "ok"


def test_the_notify_url_comes_from_a_file_or_the_environment(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--notify-file FILE`` posts to the URL the file holds and the ledger records the file's
    path, not the URL; with no ``--notify``, ``ORCHESTRATOR_NOTIFY_URL`` is used; a missing
    file is one line naming it, before anything is sent."""
    with Receiver() as receiver:
        hook = _secret_file(tmp_path, "hook", receiver.url)
        batch = write_batch(tmp_path / "a", 2)
        assert main(run_args(batch, "--simulate", "test", "--notify-file", str(hook))) == 0
        assert len(receiver.bodies) == 1
        ledger = (batch["out"] / LEDGER_NAME).read_text()
        assert f'"notify":"file:{hook}"' in ledger and NOTIFY_KEY not in ledger
        clean_env.setenv("ORCHESTRATOR_NOTIFY_URL", receiver.url)
        other = write_batch(tmp_path / "b", 2)
        assert main(run_args(other, "--simulate", "test")) == 0
        assert len(receiver.bodies) == 2
        assert '"notify":"env:ORCHESTRATOR_NOTIFY_URL"' in (other["out"] / LEDGER_NAME).read_text()
    capsys.readouterr()
    third = write_batch(tmp_path / "c", 1)
    missing = tmp_path / "nowhere"
    assert main(run_args(third, "--simulate", "test", "--notify-file", str(missing))) == 2
    err = capsys.readouterr().err
    assert f"--notify-file={missing}: cannot read the secret file" in err
    assert "Traceback" not in err and not third["out"].exists()


def _files_holding(run_dir: Path, markers: list[str]) -> list[str]:
    found = []
    for path in run_dir.rglob("*"):
        if path.is_file() and path.name != "webhook.secret":
            data = path.read_bytes()
            found += [f"{path.name}: {m}" for m in markers if m.encode() in data]
    return found


@pytest.mark.parametrize("credential", ["client_secret_file", "api_key_file"])
def test_planted_secrets_appear_in_no_file_of_the_run_dir(
    tmp_path: Path,
    make_sim: Any,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    credential: str,
) -> None:
    """A good run, a run where rows fail (and notifications are posted), a resume and
    ``report``: the client secret or API key (from files), the notify URL's key and the
    webhook secret are in no file under the run directory but ``webhook.secret``, and in
    nothing printed."""
    sim = make_sim(seed=5, fault_job_failed_p=0.5)
    clean_env.setenv("PICTORY_API_BASE_URL", sim.base_url)
    if credential == "api_key_file":
        clean_env.setenv("PICTORY_API_KEY_FILE", str(_secret_file(tmp_path, "k", API_KEY)))
        secret = API_KEY
    else:
        clean_env.setenv("PICTORY_CLIENT_ID", "client-1")
        clean_env.setenv(
            "PICTORY_CLIENT_SECRET_FILE", str(_secret_file(tmp_path, "s", CLIENT_SECRET))
        )
        secret = CLIENT_SECRET
    batch = write_batch(
        tmp_path, 6, config={"retry": {"max_attempts": 2}, "webhook": {"enabled": True}}
    )
    with Receiver() as receiver:
        clean_env.setenv("ORCHESTRATOR_NOTIFY_URL", receiver.url)
        main(run_args(batch))
        main(run_args(batch, "--retry-failed"))
        assert main(["report", str(batch["out"])]) == 1  # rows failed
        assert receiver.bodies, "notifications were posted"
    out, err = capsys.readouterr()
    webhook_secret = (batch["out"] / "webhook.secret").read_text().strip()
    assert b'"e":"failed"' in (batch["out"] / LEDGER_NAME).read_bytes(), "a failing run"
    markers = [secret, NOTIFY_KEY, webhook_secret]
    assert _files_holding(batch["out"], markers) == []
    assert [m for m in markers if m in out + err] == []
