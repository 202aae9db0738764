"""No secret in a shared ledger (issue 32): with the database password, the client secret (from
a ``_FILE``) and the notify URL's key planted, ``submit``, a worker with failing rows and
``report`` leave none of them in any table or in any file of the worker's ``--out``, which is
private (0700, files 0600)."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from e2e.helpers import write_batch
from e2e.receiver import Receiver

from orchestrator.cli.main import main
from orchestrator.ledger.pg.schema import TABLES

PG_PASSWORD = "pgpw-PLANTED-31c7"
CLIENT_SECRET = "secret-PLANTED-pg-88e1"
NOTIFY_KEY = "/hooks/secret-key"


async def _tables_holding(url: str, markers: list[str]) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        found = []
        for table in TABLES:
            rows = await conn.fetch(f"SELECT t::text AS row FROM {table} t")
            text = "\n".join(r["row"] for r in rows)
            found += [f"{table}: {m}" for m in markers if m in text]
        return found
    finally:
        await conn.close()


async def test_no_planted_secret_in_any_table_or_worker_file(
    make_sim: Any,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every table and every file of a worker's ``--out`` is searched for each marker."""
    sim = make_sim(seed=7, fault_job_failed_p=0.5)
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
    monkeypatch.setenv("PICTORY_CLIENT_ID", "client-pg")
    monkeypatch.delenv("PICTORY_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("PICTORY_API_KEY", raising=False)
    monkeypatch.setenv("PICTORY_CLIENT_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)  # the throwaway server trusts loopback
    batch = write_batch(tmp_path, 5, config={"retry": {"max_attempts": 2}})
    out = tmp_path / "worker"
    with Receiver() as receiver:
        monkeypatch.setenv("HOOK", receiver.url)
        submitted = [
            *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
            *("--ledger", pg_url, "--name", "planted", "--notify", "env:HOOK"),
        ]
        worker = ["worker", "--ledger", pg_url, "--out", str(out), "--config", str(batch["config"])]

        def cli() -> None:
            assert main(submitted) == 0
            main(worker)
            main(["report", str(out), "--ledger", pg_url, "--batch", "planted"])

        await anyio.to_thread.run_sync(cli)
        assert receiver.bodies, "a notification was posted"
    markers = [PG_PASSWORD, CLIENT_SECRET, NOTIFY_KEY]
    assert await _tables_holding(pg_url, markers) == []
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "results.csv" for p in files)
    assert [f"{p}: {m}" for p in files for m in markers if m.encode() in p.read_bytes()] == []
    printed = "".join(capsys.readouterr())
    assert [m for m in markers if m in printed] == []
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
