"""The shared ledger's schema versions as a user meets them: only `orchestrator migrate` creates
or upgrades the schema; every other command refuses a database at another version in one line
naming what to run; a worker stops when the schema changes under it. The previous release's
database (``tests/data/ledger-format-1/pg-*``) is migrated and its batch worked to the end."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from e2e.helpers import config_toml, write_batch

from orchestrator.ledger.pg.schema import SCHEMA_VERSION

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
PREVIOUS = REPO / "tests" / "data" / "ledger-format-1"
WELCOME = REPO / "jobs" / "welcome"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _in_a_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` on an event loop of its own (these tests drive the CLI synchronously)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


async def _sql(url: str, query: str, *args: object) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def _refused(command: str, done: subprocess.CompletedProcess[str], message: str) -> None:
    """``command`` ended with exit 2 and exactly one line, ``message``; no traceback."""
    assert done.returncode == 2, (command, done.stdout + done.stderr)
    assert done.stderr.splitlines() == [f"orchestrator: error: {message}"], (command, done.stderr)


def _ledger_commands(url: str, tmp_path: Path) -> dict[str, list[str]]:
    """Every command that opens a shared ledger, as a user types it."""
    return {
        "submit": [
            *("submit", str(WELCOME / "manifest.csv"), "--template"),
            *(str(WELCOME / "welcome.pictai"), "--ledger", url, "--name", "again"),
        ],
        "worker": ["worker", "--ledger", url, "--out", str(tmp_path / "w"), "--simulate=test"],
        "status": ["status", "--ledger", url],
        "report": ["report", str(tmp_path / "results"), "--ledger", url],
    }


def test_migrate_creates_the_schema_in_an_empty_database_once(
    empty_pg_url: str, tmp_path: Path
) -> None:
    """An empty database: every command says to run `orchestrator migrate`; migrate creates the
    schema at this version; run again, it has nothing to do; then the commands work."""
    url = empty_pg_url
    for command, args in _ledger_commands(url, tmp_path).items():
        _refused(
            command,
            _cli(*args),
            f"the ledger at {url} holds no orchestrator schema yet: run "
            f"`orchestrator migrate --ledger {url}`",
        )
    created = _cli("migrate", "--ledger", url)
    assert created.returncode == 0, created.stderr
    assert created.stdout == f"{url}: created the orchestrator schema (version {SCHEMA_VERSION})\n"
    again = _cli("migrate", "--ledger", url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (
        f"{url}: the orchestrator schema is at version {SCHEMA_VERSION} already: nothing to do\n"
    )
    assert _in_a_thread(_sql(url, "SELECT count(*) FROM orchestrator_schema")) == SCHEMA_VERSION
    status = _cli("status", "--ledger", url)
    assert "holds no batch" in status.stderr  # past the schema check: just no batch yet


async def _load_previous_release(url: str) -> None:
    """The database as the previous release left it: its schema (its own DDL, version 2) and a
    batch it submitted (a format-1 run record: no ``format``)."""
    data = json.loads((PREVIOUS / "pg-batch.json").read_text(encoding="utf-8"))
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute((PREVIOUS / "pg-schema.sql").read_text(encoding="utf-8"))
            for b in data["batches"]:
                await conn.execute(
                    "INSERT INTO batches (id, name, flow, record) VALUES ($1, $2, $3, $4)",
                    b["id"],
                    b["name"],
                    b["flow"],
                    b["record"],
                )
            for t in data["templates"]:
                await conn.execute(
                    "INSERT INTO templates (sha256, name, content, variables) "
                    "VALUES ($1, $2, $3, $4)",
                    t["sha256"],
                    t["name"],
                    base64.b64decode(t["content"]),
                    t["variables"],
                )
            await conn.executemany(
                "INSERT INTO rows (batch_id, row_key, line, flow, template_sha256, variables, "
                "output) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [
                    (
                        *(r["batch_id"], r["row_key"], r["line"], r["flow"]),
                        *(r["template_sha256"], r["variables"], r["output"]),
                    )
                    for r in data["rows"]
                ],
            )
            await conn.executemany(
                "INSERT INTO events (id, batch_id, row_key, body) VALUES ($1, $2, $3, $4)",
                [(e["id"], e["batch_id"], e["row_key"], e["body"]) for e in data["events"]],
            )
            await conn.execute("SELECT setval('batches_id_seq', (SELECT max(id) FROM batches))")
            await conn.execute("SELECT setval('events_id_seq', (SELECT max(id) FROM events))")
    finally:
        await conn.close()


def test_the_previous_releases_database_is_refused_until_migrated_then_worked(
    empty_pg_url: str, tmp_path: Path, make_sim: Any
) -> None:
    """A database of the previous release (schema version 2, a batch with a format-1 run
    record): every command refuses it naming `orchestrator migrate`; migrate upgrades it; its
    batch, submitted before batches had accounts, is any account's: a worker given an account
    of its own renders it to the end, each row once."""
    url = empty_pg_url
    _in_a_thread(_load_previous_release(url))
    for command, args in _ledger_commands(url, tmp_path).items():
        _refused(
            command,
            _cli(*args),
            f"the ledger at {url} has orchestrator schema version 2, older than this "
            f"orchestrator's ({SCHEMA_VERSION}): run `orchestrator migrate --ledger {url}`",
        )
    migrated = _cli("migrate", "--ledger", url)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == (
        f"{url}: migrated the orchestrator schema from version 2 to {SCHEMA_VERSION}\n"
    )
    sim = make_sim("test")
    config = tmp_path / "c.toml"
    config.write_text(config_toml())
    config.chmod(0o600)
    assert "accounts: any" in _cli("status", "--ledger", url).stdout
    worker = _cli(
        *("worker", "--ledger", url, "--out", str(tmp_path / "w"), "--config", str(config)),
        *("--account", "client-b"),
        env=sim.env(),
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    status = _cli("status", "--ledger", url, "--batch", "welcome", "--json")
    assert json.loads(status.stdout)["rows"] == {"done": 25}, status.stdout + status.stderr
    assert json.loads(status.stdout)["accounts"] is None
    stats = sim.stats()
    assert stats["renders_started"] == 25 and stats["duplicate_renders"] == 0


def test_a_database_of_a_newer_orchestrator_is_refused(pg_url: str, tmp_path: Path) -> None:
    """A database migrated by a newer orchestrator: every command, `migrate` too, says to
    upgrade orchestrator, and changes nothing."""
    newer = SCHEMA_VERSION + 1
    _in_a_thread(_sql(pg_url, "INSERT INTO orchestrator_schema VALUES ($1)", newer))
    message = (
        f"the ledger at {pg_url} has orchestrator schema version {newer}, newer than this "
        f"orchestrator reads ({SCHEMA_VERSION}): upgrade orchestrator"
    )
    commands = _ledger_commands(pg_url, tmp_path)
    commands["migrate"] = ["migrate", "--ledger", pg_url]
    for command, args in commands.items():
        _refused(command, _cli(*args), message)
    assert _in_a_thread(_sql(pg_url, "SELECT max(version) FROM orchestrator_schema")) == newer
    assert _in_a_thread(_sql(pg_url, "SELECT count(*) FROM batches")) == 0


@pytest.mark.slow
def test_a_worker_stops_when_the_schema_changes_under_it(
    pg_url: str, tmp_path: Path, make_sim: Any
) -> None:
    """`orchestrator migrate` of a newer release runs while a worker works: on its next
    heartbeat the worker stops, exit 1, with one line saying what happened and what to do;
    never a traceback. Its rows wait for their leases, as after any stop."""
    sim = make_sim("demo", time_scale=0.5, rate_limit_rps=None)
    env = sim.env()
    batch = write_batch(tmp_path, 30, config={"ledger": {"lease_s": 0.9}})
    submitted = _cli(
        *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
        *("--ledger", pg_url, "--name", "b"),
        env=env,
    )
    assert submitted.returncode == 0, submitted.stderr
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "orchestrator", "worker", "--ledger", pg_url),
            *("--out", str(tmp_path / "w"), "--config", str(batch["config"])),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _in_a_thread(_sql(pg_url, "SELECT count(*) FROM rows WHERE owner IS NOT NULL")):
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker never claimed a row"
            time.sleep(0.1)
        newer = SCHEMA_VERSION + 1
        _in_a_thread(_sql(pg_url, "INSERT INTO orchestrator_schema VALUES ($1)", newer))
        changed_at = time.monotonic()
        _, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert time.monotonic() - changed_at < 10  # the next heartbeat (every 0.3 s) and the unwind
    assert worker.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("orchestrator: error:")]
    assert errors == [
        f"orchestrator: error: the ledger at {pg_url} went from orchestrator schema version "
        f"{SCHEMA_VERSION} to {newer} while this worker ran; this worker stopped (its rows go "
        "to other workers once their leases expire): upgrade orchestrator, then start the "
        "worker again"
    ], stderr
    pending = _in_a_thread(_sql(pg_url, "SELECT count(*) FROM rows WHERE status <> 'done'"))
    assert pending > 0  # it stopped mid-batch
