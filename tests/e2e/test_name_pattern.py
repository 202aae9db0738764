"""``--name PATTERN`` end to end against the simulator: the videos (and their posters) are named
from each row's columns on disk and in results.csv; the pattern is recorded with the batch, so a
rerun without it, or after an edit, keeps every video's name, and another pattern is refused; a
changed row's new version (``--rerender-changed``) takes the pattern's name plus ``.v2``; a
colliding pattern is refused before anything is sent, naming both lines."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import read_results, run_args, write_batch

PATTERN = "{name}-{id}"


def _set_name(manifest: Path, row_id: str, name: str) -> None:
    with manifest.open(newline="") as f:
        rows = list(csv.reader(f))
    for row in rows:
        if row[0] == row_id:
            row[1] = name
    with manifest.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def _files(run_dir: Path) -> dict[str, str]:
    return {r["id"]: r["file"] for r in read_results(run_dir)}


def test_videos_are_named_by_the_pattern_and_keep_their_names(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    out = batch["out"]
    assert main(run_args(batch, "--name", PATTERN)) == 0
    named = {f"row-{i:03d}": f"videos/Name-{i}-row-{i:03d}.mp4" for i in range(3)}
    assert _files(out) == named
    assert sorted(p.name for p in (out / "videos").glob("*.mp4")) == sorted(
        Path(f).name for f in named.values()
    )
    assert (out / "thumbs" / "Name-1-row-001.jpg").exists()  # posters follow the video's name
    capsys.readouterr()

    _set_name(batch["manifest"], "row-001", "Zoë")
    assert main(run_args(batch)) == 0  # the recorded pattern; the done row keeps its name
    assert _files(out) == named
    assert sim.stats()["renders_started"] == 3

    assert main(run_args(batch, "--name", "{id}")) == 2
    err = capsys.readouterr().err
    assert f"names its videos with --name '{PATTERN}'" in err and "Traceback" not in err
    validate = ["validate", str(batch["manifest"]), "--template", str(batch["template"])]
    assert main([*validate, "--out", str(out), "--name", "{id}"]) == 2  # validate reads it too
    assert f"names its videos with --name '{PATTERN}'" in capsys.readouterr().err

    old = (out / named["row-001"]).read_bytes()
    assert main(run_args(batch, "--rerender-changed")) == 0
    fresh = _files(out)
    assert fresh["row-001"] == "videos/Zoe-row-001.v2.mp4"
    assert (out / named["row-001"]).read_bytes() == old  # the delivered video is untouched
    assert (out / "thumbs" / "Zoe-row-001.v2.jpg").exists()
    assert sim.stats()["renders_started"] == 4


def test_a_colliding_pattern_sends_nothing(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run`` checks the names like ``validate``: two rows making one name stop it before any
    request, naming both lines; nothing is left behind."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    _set_name(batch["manifest"], "row-002", "name 0")
    assert main(run_args(batch, "--name", "{name}")) == 2
    err = capsys.readouterr().err
    assert "line 2 and line 4 both make the video file 'name-0.mp4'" in err
    assert sim.stats()["renders_started"] == 0
    assert not batch["out"].exists()


def test_the_config_names_a_new_batch(tmp_path: Path, make_sim: Any, api_env: Any) -> None:
    """``[run] name_pattern`` names the videos of a batch begun without ``--name``."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2, config={"run": {"name_pattern": "hello-{name}"}})
    assert main(run_args(batch)) == 0
    assert _files(batch["out"]) == {
        "row-000": "videos/hello-Name-0.mp4",
        "row-001": "videos/hello-Name-1.mp4",
    }
