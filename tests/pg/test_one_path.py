"""One run path: the same manifest through ``run`` on a run directory and through ``submit`` + two
workers on a real PostgreSQL gives the same results, the same ``status --json`` counts, the same
canary → approve behaviour and a notification from each; batch-wide choices are the batch's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e.helpers import read_results, run_cli, write_batch
from e2e.receiver import Receiver

pytestmark = pytest.mark.slow

ROWS = 8
CANARY = 3
TIMEOUT_S = 120.0
VARYING = {"video_url", "render_job_id", "sha256", "duration_s", "ai_credits"}
VARYING |= {"thumbnail_url", "share_url", "srt_url", "vtt_url", "txt_url", "email_url"}
VARYING |= {f"{link}_expires" for link in ("video_url", "thumbnail_url", "share_url", "email_url")}
VARYING |= {f"{kind}_url_expires" for kind in ("srt", "vtt", "txt")}
"""Columns that differ between any two renders of a row: the API's job ids and links (and when
they expire), the video's digest (the simulator's clip carries its job's id), and its drawn
duration (and so credits)."""


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(args, env, TIMEOUT_S)


def _workers(args: list[str], env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Two workers at once on the shared batch, both writing into the same ``--out``."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT_S)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _stable(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in VARYING} for row in rows]


@pytest.mark.timeout(120)
def test_run_and_two_workers_agree_canary_approve_notify(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """``run --canary 3 --notify`` and ``submit --canary 3 --notify env:…`` + two workers each
    render exactly 3 rows, exit 3 and notify; after ``approve`` both finish the rest with the
    same results.csv and the same ``status --json`` counts; ``report DIR --ledger`` writes
    results.csv and report.html with a poster per video."""
    local_sim, shared_sim = make_sim("test"), make_sim("test")
    batch = write_batch(tmp_path, ROWS)
    manifest, template = str(batch["manifest"]), str(batch["template"])
    fast = ["--config", str(batch["config"])]
    shared = ["--ledger", pg_url, "--batch", "one-path"]
    out_local, out_shared = tmp_path / "local", tmp_path / "shared"
    with Receiver() as receiver:
        env_local = local_sim.env()
        first = _cli(
            [
                *("run", manifest, "--template", template, "--out", str(out_local), *fast),
                *("--canary", str(CANARY), "--notify", receiver.url),
            ],
            env_local,
        )
        assert first.returncode == 3, first.stderr
        assert local_sim.stats()["renders_started"] == CANARY
        local_bodies = list(receiver.bodies)
        assert [b["event"] for b in local_bodies] == ["awaiting_approval"]

        env_shared = {**shared_sim.env(), "ORCH_NOTIFY_URL": receiver.url}
        submitted = _cli(
            [
                *("submit", manifest, "--template", template, "--ledger", pg_url),
                *("--name", "one-path", "--canary", str(CANARY)),
                *("--notify", "env:ORCH_NOTIFY_URL"),
            ],
            env_shared,
        )
        assert submitted.returncode == 0, submitted.stderr
        assert receiver.url not in _everything_recorded(pg_url)  # a secret is never stored
        worker_args = ["worker", *shared, "--out", str(out_shared), *fast]
        canaries = _workers(worker_args, env_shared)
        assert [w.returncode for w in canaries] == [3, 3], [w.stdout + w.stderr for w in canaries]
        assert shared_sim.stats()["renders_started"] == CANARY
        shared_bodies = receiver.bodies[len(local_bodies) :]
        assert [b["event"] for b in shared_bodies] == ["awaiting_approval"] * 2
        assert "orchestrator approve --ledger" in canaries[0].stdout

        refused = _cli([*worker_args, "--canary", "5"], env_shared)
        assert refused.returncode == 2
        assert "--canary 5: the batch" in refused.stderr and "--canary 3" in refused.stderr

        approved = _cli(["approve", str(out_local), *fast], env_local)
        assert approved.returncode == 0, approved.stderr
        approved_shared = _cli(
            ["approve", *shared, "--out", str(out_shared), *fast],
            env_shared,
        )
        assert approved_shared.returncode in (0, 1), approved_shared.stderr
        rest = _workers(worker_args, env_shared)
        assert all(w.returncode in (0, 1) for w in rest), [w.stderr for w in rest]
        assert receiver.bodies[-1]["event"] == "finished"
    assert local_sim.stats()["renders_started"] == ROWS
    assert shared_sim.stats()["renders_started"] == ROWS
    assert shared_sim.stats()["duplicate_renders"] == 0

    report_dir = tmp_path / "shared"
    report = _cli(["report", str(report_dir), *shared], env_shared)
    assert report.returncode == 0, report.stderr
    assert f"{ROWS} poster frame(s)" in report.stdout
    assert (report_dir / "report.html").exists()
    local_rows, shared_rows = read_results(out_local), read_results(report_dir)
    assert _stable(local_rows) == _stable(shared_rows)
    elsewhere = tmp_path / "to-share"  # the workers' folder stays as it is; the page links it
    apart = _cli(["report", str(out_shared), *shared, "--out", str(elsewhere)], env_shared)
    assert apart.returncode == 0, apart.stderr
    assert f"{ROWS} poster frame(s)" in apart.stdout
    assert '"../shared/videos/row-000.mp4"' in (elsewhere / "report-data.js").read_text()
    assert {r["status"] for r in shared_rows} == {"done"}

    local_status = json.loads(_cli(["status", str(out_local), "--json"], env_local).stdout)
    shared_status = json.loads(
        _cli(["status", "--ledger", pg_url, "--batch", "one-path", "--json"], env_shared).stdout
    )
    for key in ("rows", "total_rows", "failures", "next"):
        assert local_status[key] == shared_status[key], key


def test_retry_failed_on_a_shared_batch_retries_each_failed_row_once(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """Rows that failed for good are left alone by a plain worker and taken again after
    ``worker --retry-failed``, once each, whichever of two concurrent workers claims them."""
    sim = make_sim("test", fault_job_failed_p=1.0)
    env = sim.env()
    batch = write_batch(tmp_path, 4)
    submitted = _cli(
        [
            *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
            *("--ledger", pg_url, "--name", "fails"),
        ],
        env,
    )
    assert submitted.returncode == 0, submitted.stderr
    args = ["worker", "--ledger", pg_url, "--batch", "fails", "--out", str(tmp_path / "w")]
    args += ["--config", str(batch["config"])]
    report = ["report", str(tmp_path / "r"), "--ledger", pg_url, "--batch", "fails"]

    def attempts() -> list[str]:
        assert _cli(report, env).returncode == 1
        rows = read_results(tmp_path / "r")
        assert {r["status"] for r in rows} == {"failed"}
        return [r["attempts"] for r in rows]

    assert _cli(args, env).returncode == 1
    assert attempts() == ["1"] * 4
    assert _cli(args, env).returncode == 1  # a plain worker leaves failed rows alone
    assert attempts() == ["1"] * 4
    both = [
        subprocess.Popen([sys.executable, "-m", "orchestrator", *a], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for a in ([*args, "--retry-failed"], args)
    ]  # fmt: skip
    for proc in both:
        proc.communicate(timeout=TIMEOUT_S)
    assert attempts() == ["2"] * 4


def _everything_recorded(url: str) -> str:
    """Every event body and batch record in the database, as one text."""
    import anyio
    import asyncpg

    async def read() -> str:
        conn = await asyncpg.connect(url)
        try:
            events = await conn.fetch("SELECT body FROM events")
            batches = await conn.fetch("SELECT record FROM batches")
        finally:
            await conn.close()
        return "\n".join([*(str(r["body"]) for r in events), *(str(r["record"]) for r in batches)])

    return anyio.run(read)


def test_workers_obey_the_choices_submitted_with_the_batch(
    make_sim: Any, pg_url: str, tmp_path: Path
) -> None:
    """``submit --max-renders 2 --check-quota --window … --time-zone UTC --halt-after 50%``: a
    worker given none of them checks the quota, reads the window in UTC and stops after 2
    renders; a worker given another spend cap is refused, naming the batch's."""
    sim = make_sim("test")
    env = sim.env()
    batch = write_batch(tmp_path, 5)
    submitted = _cli(
        [
            *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
            *("--ledger", pg_url, "--name", "capped", "--max-renders", "2", "--check-quota"),
            *("--window", "00:00-23:59:59", "--time-zone", "UTC", "--halt-after", "50%"),
        ],
        env,
    )
    assert submitted.returncode == 0, submitted.stderr
    assert "(UTC)" in submitted.stdout
    out = tmp_path / "w"
    args = ["worker", "--ledger", pg_url, "--batch", "capped", "--out", str(out)]
    args += ["--config", str(batch["config"])]
    done = _cli(args, env)
    assert done.returncode == 1, done.stderr
    assert "spend cap" in done.stdout
    assert sim.stats()["renders_started"] == 2
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "quota" for e in log)
    started = next(e for e in log if e["event"] == "run_started")
    assert started["time_zone"] == "UTC"
    refused = _cli([*args, "--max-renders", "3"], env)
    assert refused.returncode == 2
    assert "--max-renders 3: the batch" in refused.stderr
    assert "--max-renders 2" in refused.stderr
