"""Building blocks for end-to-end tests: a small batch on disk and a fast config."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

TEMPLATE = {
    "projectName": "e2e",
    "audio": {"selectedVoiceOverTrack": "Adam, male"},
    "scenes": [
        {"sceneId": 1, "sentence": "Hello {{name}}!", "lines": [{"text": "Hello {{ name }}!"}]},
        {"sceneId": 2, "sentence": "Greetings from {{city}}."},
    ],
}

FAST_CONFIG = """
[limits]
max_requests_per_s = 500.0
max_rows_in_flight = 8
[poll]
preview_interval_s = 0.01
render_interval_s = 0.01
jitter_fraction = 0.2
preview_deadline_s = 20.0
render_deadline_s = 20.0
webhook_fallback_interval_s = 0.5
[retry]
max_attempts = 8
base_delay_s = 0.01
max_delay_s = 0.2
"""


def write_batch(folder: Path, rows: int, *, extra_config: str = "") -> dict[str, Path]:
    """A template, a manifest of ``rows`` rows and a fast config under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "t.pictai"
    template.write_text(json.dumps(TEMPLATE))
    manifest = folder / "m.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city"])
        for i in range(rows):
            writer.writerow([f"row-{i:03d}", f"Name {i}", f"City, {i}"])
    config = folder / "c.toml"
    config.write_text(FAST_CONFIG + extra_config)
    config.chmod(0o600)
    return {"template": template, "manifest": manifest, "config": config, "out": folder / "run"}


def read_results(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "results.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def check_invariants(run_dir: Path, stats: dict[str, Any], rows: int) -> list[dict[str, str]]:
    """Every row once with a terminal status; no duplicate render; done files match the server."""
    results = read_results(run_dir)
    assert len(results) == rows
    assert len({r["id"] for r in results}) == rows
    assert stats["duplicate_renders"] == 0
    served = stats["videos"]
    for r in results:
        if r["status"] == "done":
            data = (run_dir / r["file"]).read_bytes()
            assert len(data) == int(r["bytes"])
            assert hashlib.sha256(data).hexdigest() == r["sha256"]
            assert served[r["render_job_id"]]["sha256"] == r["sha256"]
    assert not list((run_dir / "videos").glob(".*.part")) or any(
        r["status"] != "done" for r in results
    )
    return results


def run_args(batch: dict[str, Path], *extra: str) -> list[str]:
    return [
        "run",
        str(batch["manifest"]),
        "--template",
        str(batch["template"]),
        "--out",
        str(batch["out"]),
        "--config",
        str(batch["config"]),
        *extra,
    ]
