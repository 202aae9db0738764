"""``--name-pattern`` on a shared batch: the pattern is a batch choice recorded at ``submit``,
so every worker names the videos the same way as a local run (the one run path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2e.helpers import read_results, write_batch

from orchestrator.cli.main import main


def test_a_shared_batch_names_its_videos_by_the_pattern(
    make_sim: Any, api_env: Any, pg_url: str, tmp_path: Path
) -> None:
    sim = make_sim("test")
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    submitted = [
        *("submit", str(batch["manifest"]), "--template", str(batch["template"])),
        *("--ledger", pg_url, "--name", "named", "--name-pattern", "{name}-{id}"),
    ]
    assert main(submitted) == 0
    out = tmp_path / "worker"
    worker = ["worker", "--ledger", pg_url, "--out", str(out), "--config", str(batch["config"])]
    assert main(worker) == 0
    assert main(["report", str(out), "--ledger", pg_url, "--batch", "named"]) == 0
    files = {r["id"]: r["file"] for r in read_results(out)}
    assert files == {f"row-{i:03d}": f"videos/Name-{i}-row-{i:03d}.mp4" for i in range(3)}
    assert all((out / f).exists() for f in files.values())
