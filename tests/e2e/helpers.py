"""Building blocks for end-to-end tests: a small batch on disk and a fast config."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestrator.ledger.file import LEDGER_NAME, replay
from orchestrator.report import results_csv

TEMPLATE = {
    "projectName": "e2e",
    "audio": {"selectedVoiceOverTrack": "Adam, male"},
    "scenes": [
        {"sceneId": 1, "sentence": "Hello {{name}}!", "lines": [{"text": "Hello {{ name }}!"}]},
        {"sceneId": 2, "sentence": "Greetings from {{city}}."},
    ],
}

AI_TEMPLATE = {
    **TEMPLATE,
    "scenes": [
        {
            **TEMPLATE["scenes"][0],
            "background": {"type": "image", "aiVisual": {"model": "nanobanana-pro"}},
        },
        {
            **TEMPLATE["scenes"][1],
            "background": {
                "type": "video",
                "aiVisual": {"model": "pixverse5.5", "videoDuration": "5s"},
            },
        },
    ],
}
"""TEMPLATE with an AI image (nanobanana-pro, 14 credits) and a 5 s AI video (pixverse5.5,
1.6 a second): every render of it uses 22 AI credits, as its estimate says (contract.ai_credits)."""

FAST_SETTINGS: dict[str, dict[str, Any]] = {
    "limits": {"max_requests_per_s": 500.0, "max_rows_in_flight": 8},
    "poll": {
        "preview_interval_s": 0.01,
        "render_interval_s": 0.01,
        "jitter_fraction": 0.2,
        "preview_deadline_s": 20.0,
        "render_deadline_s": 20.0,
        "webhook_fallback_interval_s": 0.5,
    },
    "retry": {"max_attempts": 8, "base_delay_s": 0.01, "max_delay_s": 0.2},
}


def config_toml(overrides: dict[str, dict[str, Any]] | None = None) -> str:
    """FAST_SETTINGS with ``overrides`` merged per table, as TOML (each table written once)."""
    tables = {name: dict(values) for name, values in FAST_SETTINGS.items()}
    for name, values in (overrides or {}).items():
        tables.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


FAST_CONFIG = config_toml()


def write_batch(
    folder: Path,
    rows: int,
    *,
    extra_config: str = "",
    config: dict[str, dict[str, Any]] | None = None,
    project: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """A template (``project``, else TEMPLATE), a manifest of ``rows`` rows and a fast config
    under ``folder``; ``config`` overrides FAST_SETTINGS table by table, ``extra_config`` appends
    raw TOML (new tables only)."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "t.pictai"
    template.write_text(json.dumps(TEMPLATE if project is None else project))
    manifest = folder / "m.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city"])
        for i in range(rows):
            writer.writerow([f"row-{i:03d}", f"Name {i}", f"City, {i}"])
    config_file = folder / "c.toml"
    config_file.write_text(config_toml(config) + extra_config)
    config_file.chmod(0o600)
    return {
        "template": template,
        "manifest": manifest,
        "config": config_file,
        "out": folder / "run",
    }


def read_results(run_dir: Path, encoding: str | None = None) -> list[dict[str, str]]:
    """``RUN_DIR/results.csv`` in whichever dialect it was written (``--results-dialect``, or
    the manifest's; ``encoding``: a manifest's ``--encoding``)."""
    return results_csv.read_results(run_dir / "results.csv", encoding)


TERMINAL = {"done", "failed", "ambiguous"}


def check_invariants(run_dir: Path, stats: dict[str, Any], rows: int) -> list[dict[str, str]]:
    """Every row once with a terminal status (a failure names its cause); no render twice unless
    the ledger says why (``justified_rerenders``), and no preview job rendered twice;
    every done file is in place with the bytes and sha256 the server served, and no partial file
    beside it; the ledger replays cleanly and agrees with results.csv."""
    results = read_results(run_dir)
    assert len(results) == rows
    assert len({r["id"] for r in results}) == rows
    state = replay(run_dir / LEDGER_NAME)  # raises on a damaged line
    assert stats["duplicate_renders"] == justified_rerenders(run_dir)
    assert all(n == 1 for n in stats["renders_per_preview"].values())
    served = stats["videos"]
    for r in results:
        assert r["status"] in TERMINAL, r
        assert state.rows[r["id"]].status == r["status"]
        if r["status"] == "failed":
            kind, sep, message = r["error"].partition(": ")
            assert sep and kind and message, r
        if r["status"] == "done":
            final = run_dir / r["file"]
            data = final.read_bytes()
            assert len(data) == int(r["bytes"])
            assert hashlib.sha256(data).hexdigest() == r["sha256"]
            assert served[r["render_job_id"]]["sha256"] == r["sha256"]
            assert served[r["render_job_id"]]["bytes"] == len(data)
            assert not (final.parent / f".{final.name}.part").exists()
    return results


def justified_rerenders(run_dir: Path) -> int:
    """Renders of a row beyond its first, each of which the ledger explains: the row's earlier
    job failed and it was started over (a ``retry`` event since its previous render job)."""
    extra = 0
    seen_job: dict[str, bool] = {}
    restarted: dict[str, bool] = {}
    with (run_dir / LEDGER_NAME).open() as f:
        for line in f:
            event = json.loads(line)
            row = event.get("row")
            if event["e"] == "retry":
                restarted[row] = True
            elif event["e"] == "render_job":
                if seen_job.get(row):
                    assert restarted.get(row), f"{row} rendered again without a recorded reason"
                    extra += 1
                seen_job[row] = True
                restarted[row] = False
    return extra


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


def run_cli(
    args: list[str], env: dict[str, str], timeout_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``orchestrator ARGS`` as a user runs it (a process of its own), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
