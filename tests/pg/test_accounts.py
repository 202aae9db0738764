"""Batches bound to accounts, as an agency with two clients on one database meets them: each
client's workers render only their own client's batches, a worker given another account's batch
is refused in one line before it sends anything, and a batch for any account (as every batch
submitted before batches had accounts) is any worker's."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from e2e.helpers import run_cli, write_batch

from orchestrator.config import Credentials, account_key

pytestmark = pytest.mark.slow

TIMEOUT_S = 60.0


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env, TIMEOUT_S)


def _client(sim: Any, client: str) -> dict[str, str]:
    """The environment of a worker on client ``client``'s Pictory account (its own client id)."""
    return {**sim.env(), "PICTORY_CLIENT_ID": f"{client}-client"}


def _key(sim: Any, client: str) -> str:
    """The account key a worker of ``_client(sim, client)`` stores in ``rows.account``."""
    env = _client(sim, client)
    credentials = Credentials.model_validate(
        {
            "client_id": env["PICTORY_CLIENT_ID"],
            "client_secret": env["PICTORY_CLIENT_SECRET"],
            "user_id": env["PICTORY_USER_ID"],
        }
    )
    return account_key(sim.base_url, credentials)


def _batch(tmp_path: Path, name: str, rows: int = 4) -> dict[str, Path]:
    """A batch whose rows differ from every other batch's (the simulator counts a second render
    of the same template and values as a duplicate)."""
    batch = write_batch(tmp_path / name, rows)
    manifest = batch["manifest"]
    manifest.write_text(manifest.read_text().replace("Name ", f"{name} "))
    return batch


def _submit(
    batch: dict[str, Path], url: str, name: str, env: dict[str, str], *whose: str
) -> subprocess.CompletedProcess[str]:
    return _cli(
        [
            *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
            *("--ledger", url, "--name", name, *whose),
        ],
        env,
    )


def _worker(
    url: str, batch: dict[str, Path], out: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    return _cli(
        [
            *("worker", "--ledger", url, "--out", str(out)),
            *("--config", str(batch["config"]), *extra),
        ],
        env,
    )


def _rows_by_account(url: str) -> dict[tuple[str, str | None, str], int]:
    """``(batch, rows.account, status)`` → rows, from the database."""

    async def read() -> dict[tuple[str, str | None, str], int]:
        conn = await asyncpg.connect(url)
        try:
            records = await conn.fetch(
                "SELECT b.name, r.account, r.status, count(*) AS n FROM rows r "
                "JOIN batches b ON b.id = r.batch_id GROUP BY 1, 2, 3"
            )
        finally:
            await conn.close()
        return {(r["name"], r["account"], r["status"]): int(r["n"]) for r in records}

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, read()).result()


def _one_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command said (exit 2, nothing else on stderr)."""
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("orchestrator: error: "), done.stderr
    return lines[0].removeprefix("orchestrator: error: ")


def test_each_accounts_workers_render_only_their_own_batch(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """Batch ``a`` submitted for client-a, ``b`` for client-b; client-b's worker, started first
    without ``--batch``, passes over the older batch ``a`` (saying so once) and renders ``b``;
    client-a's renders ``a``. Every row is rendered on its own client's account (the ledger's
    ``rows.account``, the simulator's minutes per account), and ``status`` shows the binding."""
    sim = make_sim("test")
    env_a, env_b = _client(sim, "a"), _client(sim, "b")
    batch_a, batch_b = _batch(tmp_path, "a"), _batch(tmp_path, "b")
    submitted = _submit(batch_a, pg_url, "a", env_a, "--account", "client-a")
    assert submitted.returncode == 0, submitted.stderr
    assert "accounts: client-a (only workers given --account with this name" in submitted.stdout
    assert "--batch a --account client-a --out DIR" in submitted.stdout
    assert _submit(batch_b, pg_url, "b", env_b, "--account", "client-b").returncode == 0

    worker_b = _worker(pg_url, batch_b, tmp_path / "wb", env_b, "--account", "client-b")
    assert worker_b.returncode == 0, worker_b.stdout + worker_b.stderr
    passing = [line for line in worker_b.stdout.splitlines() if "passing over" in line]
    assert passing == [
        "passing over batch 'a', bound to client-a (this worker is on account 'client-b'): "
        "it takes batch 'b'"
    ], worker_b.stdout
    worker_a = _worker(pg_url, batch_a, tmp_path / "wa", env_a, "--account", "client-a")
    assert worker_a.returncode == 0, worker_a.stdout + worker_a.stderr
    assert "passing over" not in worker_a.stdout  # ``b`` has no rows left to do

    assert _rows_by_account(pg_url) == {
        ("a", _key(sim, "a"), "done"): 4,
        ("b", _key(sim, "b"), "done"): 4,
    }
    stats = sim.stats()
    assert set(stats["quota_minutes_used"]) == {"client:a-client", "client:b-client"}
    assert stats["renders_started"] == 8 and stats["duplicate_renders"] == 0

    status = _cli(["status", "--ledger", pg_url, "--batch", "a"], env_a)
    assert "accounts: client-a (only workers given --account with this name" in status.stdout
    as_json = json.loads(
        _cli(["status", "--ledger", pg_url, "--batch", "b", "--json"], env_b).stdout
    )
    assert as_json["accounts"] == ["client-b"] and as_json["rows"] == {"done": 4}


def test_a_worker_given_another_accounts_batch_is_refused_in_one_line(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """``worker --batch a`` by client-b's worker, or by a worker naming no account: exit 2, one
    line naming the batch and its account; without ``--batch``, one line saying it may render
    no batch of the ledger. Nothing is claimed and no request reaches the API."""
    sim = make_sim("test")
    env_b = _client(sim, "b")
    batch = _batch(tmp_path, "a")
    assert _submit(batch, pg_url, "a", _client(sim, "a"), "--account", "client-a").returncode == 0
    out = tmp_path / "w"

    refused = _worker(pg_url, batch, out, env_b, "--batch", "a", "--account", "client-b")
    assert _one_error(refused) == (
        "batch 'a' is bound to account client-a, and this worker is on account 'client-b' "
        "(--account): it claims none of the batch's rows; start a worker with the credentials "
        "of that account and --account client-a"
    )
    nameless = _worker(pg_url, batch, out, env_b, "--batch", "a")
    assert _one_error(nameless) == (
        "batch 'a' is bound to account client-a, and this worker names no account (give it "
        "--account NAME): it claims none of the batch's rows; start a worker with the "
        "credentials of that account and --account client-a"
    )
    nothing = _worker(pg_url, batch, out, env_b, "--account", "client-b")
    assert _one_error(nothing) == (
        f"{pg_url} holds no batch this worker may render: 'a' (client-a) is bound to other "
        "accounts, and this worker is on account 'client-b' (--account)"
    )
    assert _rows_by_account(pg_url) == {("a", None, "pending"): 4}
    asked = sim.stats()["requests"]
    assert set(asked) == {"GET /__sim__/stats"}, asked  # this reading only: no API request


def test_a_batch_for_any_account_is_any_workers_and_must_be_asked_for(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """A batch submitted without ``--account`` into a ledger with no bound batch is for any
    account (as every batch submitted before batches had accounts): client-b's worker renders
    it. Once a batch is bound, ``submit`` without ``--account`` is refused in one line, and
    ``--any-account`` says it on purpose: client-a's worker renders that one. A worker naming
    no account takes only batches for any account, and leaves client-a's alone."""
    sim = make_sim("test")
    env_a, env_b = _client(sim, "a"), _client(sim, "b")
    batches = {name: _batch(tmp_path, name) for name in ("open", "a", "late")}
    first = _submit(batches["open"], pg_url, "open", env_a)
    assert first.returncode == 0, first.stderr
    assert "accounts: any (workers of every account claim its rows)" in first.stdout
    assert _submit(batches["a"], pg_url, "a", env_a, "--account", "client-a").returncode == 0
    forgot = _submit(batches["late"], pg_url, "late", env_a)
    assert _one_error(forgot) == (
        "the ledger holds batches bound to accounts (client-a): name the accounts whose workers "
        "may render this one with --account NAME (repeatable), or give --any-account to leave "
        "it to every account's workers"
    )
    on_purpose = _submit(batches["late"], pg_url, "late", env_a, "--any-account")
    assert on_purpose.returncode == 0, on_purpose.stderr

    worker_b = _worker(pg_url, batches["open"], tmp_path / "wb", env_b, "--account", "client-b")
    assert worker_b.returncode == 0, worker_b.stdout + worker_b.stderr
    assert "it takes batch 'open'" in worker_b.stdout
    late = _worker(
        pg_url, batches["late"], tmp_path / "wa", env_a, "--account", "client-a", "--batch", "late"
    )
    assert late.returncode == 0, late.stdout + late.stderr
    nameless = _worker(pg_url, batches["open"], tmp_path / "wn", env_b)
    assert nameless.returncode == 0, nameless.stdout + nameless.stderr
    assert "0 row(s) worked on" in nameless.stdout
    passing = [line for line in nameless.stdout.splitlines() if "passing over" in line]
    assert passing == [
        "passing over batch 'a', bound to client-a (this worker names no account): it takes "
        "batch 'open'"
    ]

    assert _rows_by_account(pg_url) == {
        ("open", _key(sim, "b"), "done"): 4,
        ("late", _key(sim, "a"), "done"): 4,
        ("a", None, "pending"): 4,
    }
    status = _cli(["status", "--ledger", pg_url, "--batch", "late", "--json"], env_a)
    assert json.loads(status.stdout)["accounts"] is None


def test_an_account_name_is_never_a_secret(tmp_path: Path) -> None:
    """``submit --account pictai_...`` (an API key where a name belongs) and a name a shell
    would mangle are refused, exit 2, before the database is touched; the key is not echoed."""
    batch = _batch(tmp_path, "k")
    env = dict(os.environ)
    url = "postgresql://me@127.0.0.1:1/db"  # nothing listens: the names are checked first
    key = _submit(batch, url, "k", env, "--account", "pictai_0123456789")
    assert "never stored in a ledger" in _one_error(key)
    assert "0123456789" not in key.stderr + key.stdout
    spaced = _submit(batch, url, "k", env, "--account", "client a")
    assert _one_error(spaced).startswith("--account 'client a': an account's name is")


async def test_the_ledger_itself_refuses_another_accounts_batch(
    pool: asyncpg.Pool, pg_url: str, tmp_path: Path
) -> None:
    """Not only the worker command: ``PgLedger.open`` (what ``execute`` and a library caller
    reach) opens a bound batch only for one of its accounts, named or not."""
    from orchestrator.errors import RunDirError
    from orchestrator.ledger.pg.ledger import PgLedger

    from .conftest import submit_small

    await submit_small(pool, tmp_path, 4, name="a", accounts=["client-a"])
    for name, account in (("a", "client-b"), ("a", None), (None, "client-b")):
        with pytest.raises(RunDirError, match="client-a"):
            await PgLedger.open(pool, pg_url, name, account_name=account)
    ledger = await PgLedger.open(pool, pg_url, None, account_name="client-a")
    await ledger.aclose()


def test_the_account_name_may_come_from_the_config(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """``[ledger] account = "client-a"`` in a worker's config stands for ``--account``."""
    sim = make_sim("test")
    env_a = _client(sim, "a")
    batch = _batch(tmp_path, "a", rows=2)
    assert _submit(batch, pg_url, "a", env_a, "--account", "client-a").returncode == 0
    with batch["config"].open("a") as config:
        config.write('\n[ledger]\naccount = "client-a"\n')
    done = _worker(pg_url, batch, tmp_path / "w", env_a)
    assert done.returncode == 0, done.stderr
    assert _rows_by_account(pg_url) == {("a", _key(sim, "a"), "done"): 2}
