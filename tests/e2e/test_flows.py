"""Every flow in batch: storyboard and video-edit manifests, and one manifest mixing all three."""

from __future__ import annotations

import csv
import json
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME

from .helpers import FAST_CONFIG, check_invariants, write_batch
from .killing import kill_until_done

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ROOT / "jobs" / "video-edit" / "recordings"


def _config(folder: Path) -> Path:
    config = folder / "c.toml"
    config.write_text(FAST_CONFIG)
    return config


def _storyboard_batch(folder: Path, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "script.txt").write_text("First paragraph.\n\nSecond paragraph.\n")
    manifest = folder / "stories.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "text_file", "video_name", "voice"])
        for i in range(rows):
            if i % 3 == 0:
                w.writerow([f"story-{i}", "", "script.txt", f"Story {i}", ""])
            else:
                w.writerow([f"story-{i}", f"Script {i}.\n\nMore text.", "", f"Story {i}", "Jenny"])
    return manifest


def _video_edit_batch(folder: Path, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "edits.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "video", "language", "highlights"])
        for i in range(rows):
            source = RECORDINGS / f"webinar-{i % 3 + 1}.mp4"
            local = folder / f"rec-{i}.mp4"
            shutil.copyfile(source, local)
            w.writerow([f"edit-{i}", local.name, "en", "30" if i % 2 else ""])
    return manifest


def _flow_args(manifest: Path, flow: str, out: Path, config: Path) -> list[str]:
    return ["run", str(manifest), "--flow", flow, "--out", str(out), "--config", str(config)]


def test_storyboard_batch_renders_every_row(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """Text (inline or from a file) → storyboard preview → render → download, for every row."""
    sim = make_sim()
    api_env(sim)
    manifest = _storyboard_batch(tmp_path, 5)
    out = tmp_path / "run"
    args = _flow_args(manifest, "storyboard", out, _config(tmp_path))
    assert main(args) == 0
    check_invariants(out, sim.stats(), 5)
    stats = sim.stats()
    assert stats["requests"]["POST /v1/video/storyboard"] == 5
    assert "POST /v1/templates" not in stats["requests"]


def test_video_edit_batch_uploads_transcribes_and_downloads_subtitles(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """Local videos are uploaded once each, transcribed, cut to highlights where asked, rendered,
    and downloaded with their subtitle files."""
    sim = make_sim()
    api_env(sim)
    manifest = _video_edit_batch(tmp_path, 4)
    out = tmp_path / "run"
    args = _flow_args(manifest, "video-edit", out, _config(tmp_path))
    assert main(args) == 0
    check_invariants(out, sim.stats(), 4)
    stats = sim.stats()
    assert stats["uploads"]["count"] == 4
    assert stats["requests"]["POST /v2/transcription"] == 4
    assert stats["requests"]["POST /v2/transcription/highlights"] == 2
    for i in range(4):
        for ext in ("srt", "vtt", "txt"):
            assert (out / "videos" / f"edit-{i}.{ext}").stat().st_size > 0
    assert main(args) == 0  # again: nothing uploaded or rendered twice
    assert sim.stats()["uploads"]["count"] == 4
    assert sim.stats()["renders_started"] == 4


def test_manifest_mixing_flows_runs_in_one_batch(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """The sample mixed manifest (template, storyboard and video-edit rows) runs as one batch;
    its template and videos are in sibling folders, which ``--allow-path`` lets it name."""
    sim = make_sim()
    api_env(sim)
    out = tmp_path / "run"
    manifest = ROOT / "jobs" / "mixed" / "manifest.csv"
    args = ["run", str(manifest), "--out", str(out), "--config", str(_config(tmp_path))]
    assert main(args) == 2  # its files are outside jobs/mixed: refused, nothing sent
    assert not [k for k in sim.stats()["requests"] if "/__" not in k]  # no API request
    assert main([*args, "--allow-path", str(ROOT / "jobs")]) == 0
    results = check_invariants(out, sim.stats(), 5)
    assert {r["status"] for r in results} == {"done"}


def test_rows_mixing_flows_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A storyboard row that also fills a video-edit field is refused with its line and field."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,flow,text,video\na,storyboard,Hello,clip.mp4\n")
    assert main(["validate", str(manifest)]) == 2
    out = capsys.readouterr().out
    assert "m.csv:2: field 'video'" in out and "video-edit flow" in out


@pytest.mark.slow
@pytest.mark.parametrize("flow", ["storyboard", "video-edit"])
def test_flow_survives_kills_without_duplicate_render_or_upload(
    flow: str,
    tmp_path: Path,
    standalone_sim: Any,
) -> None:
    """Killed at random moments and run again: every row done or ambiguous, no render twice, and
    an upload repeated only when a kill interrupted it."""
    sim = standalone_sim(
        "--profile",
        "test",
        "--preview-seconds",
        "0.3",
        "--render-seconds",
        "1.0",
        "--max-concurrent-renders",
        "2",
        "--seed",
        "11",
    )
    rows = 8
    manifest = (_storyboard_batch if flow == "storyboard" else _video_edit_batch)(tmp_path, rows)
    batch = write_batch(tmp_path / "cfg", 1)
    args = [
        "run",
        str(manifest),
        "--flow",
        flow,
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(batch["config"]),
    ]
    report = kill_until_done(args, tmp_path / "run", sim.env(), rng=random.Random(99), kills=3)
    assert report.finished, "the batch never completed"
    kills = report.kills
    results = check_invariants(tmp_path / "run", sim.stats(), rows)
    assert {r["status"] for r in results} <= {"done", "ambiguous"}
    assert kills >= 1
    if flow == "video-edit":
        # A kill interrupts every upload in flight (each is sent again), but an upload the ledger
        # recorded is never repeated: one `uploaded` event per row, and no more uploads than the
        # rows plus those a kill could have cut off.
        lines = (tmp_path / "run" / LEDGER_NAME).read_text().splitlines()
        uploaded = Counter(e["row"] for e in map(json.loads, lines) if e["e"] == "uploaded")
        assert set(uploaded.values()) == {1} and len(uploaded) == rows
        assert sim.stats()["uploads"]["count"] <= rows * (kills + 1)
