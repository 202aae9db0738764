"""``--deliver`` on a shared batch: a worker delivers what it downloads through the same deliver
stage and ``delivered`` events as a local run (the one run path); a row whose delivery failed
is uploaded by a later worker run without rendering again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2e.helpers import read_results, write_batch

from orchestrator.cli.main import main
from tests.s3_server import S3Server


def test_a_worker_delivers_and_a_second_worker_uploads_what_the_first_could_not(
    make_sim: Any, api_env: Any, pg_url: str, tmp_path: Path, s3: S3Server
) -> None:
    """The first worker's destination refuses (no such bucket): its rows fail at delivery with
    their videos downloaded. Once the bucket exists, the worker run again with --retry-failed
    uploads each row once, from the videos it has; nothing renders or downloads again."""
    sim = make_sim("test")
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    submitted = [
        *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
        *("--ledger", pg_url, "--name", "delivered"),
    ]
    assert main(submitted) == 0
    out = tmp_path / "worker"
    worker = [
        *("worker", "--ledger", pg_url, "--out", str(out), "--config", str(batch["config"])),
        *("--deliver", "s3://late/shared/"),
    ]
    assert main(worker) == 1
    s3.client.create_bucket(Bucket="late")
    assert main([*worker, "--retry-failed"]) == 0  # a shared batch's failed rows: only then
    assert sim.stats()["renders_started"] == 3
    assert len(s3.objects("late", "shared/")) == 3
    assert main(["report", str(out), "--ledger", pg_url, "--batch", "delivered"]) == 0
    rows = read_results(out)
    assert {r["status"] for r in rows} == {"done"}
    assert all(r["delivered_url"].endswith(Path(r["file"]).name) for r in rows)
