"""A manifest names only files in its own folder (or one ``--allow-path`` adds): ``/etc/passwd``,
``../x`` and a symlink out of the folder are refused by ``validate`` and ``run`` with file, line
and field, and nothing is uploaded; a file of the wrong type is refused too."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import FAST_CONFIG

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "jobs" / "video-edit" / "recordings" / "webinar-1.mp4"


def _video_manifest(folder: Path, videos: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "edits.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "video"])
        for i, video in enumerate(videos):
            w.writerow([f"edit-{i}", video])
    return manifest


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "elsewhere" / "secret.mp4"
    secret.parent.mkdir()
    shutil.copy(CLIP, secret)
    return secret


def test_paths_out_of_the_manifests_folder_are_refused_with_their_location(
    tmp_path: Path, outside: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "link.mp4").symlink_to(outside)
    (folder / "notes.mp4.txt").write_text("not a video")
    manifest = _video_manifest(
        folder, ["/etc/passwd", "../elsewhere/secret.mp4", "link.mp4", "notes.mp4.txt"]
    )
    assert main(["validate", str(manifest), "--flow", "video-edit"]) == 2
    said = capsys.readouterr().out
    assert f"{manifest}:2: field 'video': '/etc/passwd' is outside the manifest's folder" in said
    assert f"{manifest}:3: field 'video': '../elsewhere/secret.mp4' is outside" in said
    assert f"{manifest}:4: field 'video': 'link.mp4' is a symlink out of" in said
    assert f"{manifest}:5: field 'video': 'notes.mp4.txt' is not a video or audio file" in said
    assert "--allow-path DIR" in said

    sim = make_sim()
    api_env(sim)
    out = tmp_path / "run"
    assert main(["run", str(manifest), "--flow", "video-edit", "--out", str(out)]) == 2
    stats = sim.stats()
    assert stats["uploads"]["count"] == 0
    assert not [k for k in stats["requests"] if "/__" not in k]


def test_allow_path_lets_the_manifest_name_files_there(
    tmp_path: Path, outside: Path, make_sim: Any, api_env: Any
) -> None:
    """``--allow-path`` adds a folder; the run uploads the file from there and is recorded, so a
    resume reads the manifest the same way."""
    sim = make_sim()
    api_env(sim)
    manifest = _video_manifest(tmp_path / "batch", [str(outside)])
    out = tmp_path / "run"
    allow = ["--allow-path", str(outside.parent)]
    config = tmp_path / "fast.toml"
    config.write_text(FAST_CONFIG)
    args = [
        "run",
        str(manifest),
        "--flow",
        "video-edit",
        "--out",
        str(out),
        "--config",
        str(config),
    ]
    assert main([*args, *allow, "--max-renders", "1"]) == 0
    assert sim.stats()["uploads"]["count"] == 1
    assert main(["resume", str(out), "--config", str(config)]) == 0  # recorded --allow-path


def test_a_template_column_out_of_the_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    manifest = folder / "m.csv"
    manifest.write_text(f"id,template,name\nr1,{ROOT / 'jobs/welcome/welcome.pictai'},Ann\n")
    assert main(["validate", str(manifest)]) == 2
    assert f"{manifest}:2: field 'template'" in capsys.readouterr().out
