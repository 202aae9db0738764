"""The shared ledger's settings and refusals as a user meets them on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from e2e.helpers import write_batch


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_password_in_the_ledger_url_is_refused_and_never_printed(tmp_path: Path) -> None:
    """``--ledger postgresql://u:PASSWORD@...``: exit 2, told to use PGPASSWORD, the password
    not echoed."""
    batch = write_batch(tmp_path, 2)
    done = _cli(
        "submit",
        str(batch["manifest"]),
        "--template",
        str(batch["template"]),
        "--ledger",
        "postgresql://me:hunter2@127.0.0.1:1/db",
    )
    assert done.returncode == 2
    assert "PGPASSWORD" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_an_unknown_ledger_key_is_named(tmp_path: Path) -> None:
    """``[ledger] lease = 5`` (a typo for lease_s) is an error naming the key."""
    config = tmp_path / "c.toml"
    config.write_text('[ledger]\nurl = "postgresql://me@127.0.0.1/db"\nlease = 5\n')
    done = _cli("status", "--ledger", "postgresql://me@127.0.0.1:1/db", "--config", str(config))
    assert done.returncode == 2
    assert "ledger.lease" in done.stderr


def test_status_needs_a_run_dir_or_a_ledger() -> None:
    """``orchestrator status`` alone says what it needs."""
    done = _cli("status")
    assert done.returncode == 2
    assert "RUN_DIR, or --ledger URL" in done.stderr


def test_an_unreachable_ledger_is_one_line_naming_it(tmp_path: Path, pg_url: str) -> None:
    """A database nobody listens on: exit 2 and the URL in the message, no traceback."""
    port = pg_url.rsplit(":", 1)[1].split("/")[0]
    url = pg_url.replace(f":{port}/", ":1/")
    done = _cli("status", "--ledger", url)
    assert done.returncode == 2
    assert "cannot connect to the ledger at postgresql://" in done.stderr
    assert "Traceback" not in done.stderr


def test_submit_refuses_a_bad_manifest_before_touching_the_database(
    tmp_path: Path, pg_url: str
) -> None:
    """Validation first: a manifest with problems creates no batch."""
    batch = write_batch(tmp_path, 2)
    batch["manifest"].write_text("id,name\nr1,Ann\n")  # the template's {{city}} has no column
    done = _cli(
        "submit", str(batch["manifest"]), "--template", str(batch["template"]), "--ledger", pg_url
    )
    assert done.returncode == 2, done.stderr
    status = _cli("status", "--ledger", pg_url)
    assert "holds no batch" in status.stderr


def test_submit_refuses_a_notification_url_it_would_have_to_store(tmp_path: Path) -> None:
    """``submit --notify URL``: a secret is never stored in a ledger; the message says what to
    give instead (exit 2, before the database is touched)."""
    done = _cli(
        *("submit", "m.csv", "--ledger", "postgresql://me@127.0.0.1:1/db"),
        *("--notify", "https://hooks.example/secret"),
    )
    assert done.returncode == 2
    assert "env:NAME" in done.stderr and "hooks.example" not in done.stderr
