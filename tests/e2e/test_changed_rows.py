"""An edited manifest line after its video was made: by default the row keeps its video, the run
warns once with the line, and results.csv pairs that video with the values it was made from
(checked against the variables the simulator embeds in each MP4); ``--rerender-changed`` renders
the new values under a new file name and leaves the delivered video alone."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import read_results, run_args, write_batch


def _rewrite_name(manifest: Path, row_id: str, name: str) -> None:
    with manifest.open(newline="") as f:
        rows = list(csv.reader(f))
    for row in rows:
        if row[0] == row_id:
            row[1] = name
    with manifest.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def _by_id(run_dir: Path) -> dict[str, dict[str, str]]:
    return {r["id"]: r for r in read_results(run_dir)}


def test_an_edited_row_keeps_its_video_until_rerender_changed(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    out = batch["out"]
    assert main(run_args(batch)) == 0
    first = _by_id(out)["row-001"]
    old_video = (out / first["file"]).read_bytes()
    assert b'"name":"Name 1"' in old_video
    capsys.readouterr()

    _rewrite_name(batch["manifest"], "row-001", "Benjamin")
    validate = ["validate", str(batch["manifest"]), "--template", str(batch["template"])]
    assert main([*validate, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.count("changed since its video was made") == 1
    assert f"{batch['manifest']}:3: row row-001 changed since its video was made" in said
    assert main(run_args(batch)) == 0
    err = capsys.readouterr().err
    assert err.count("CHANGED") == 1
    assert "CHANGED   row-001 (line 3): values differ from those its video was made from" in err
    kept = _by_id(out)["row-001"]
    assert kept["name"] == "Name 1" and kept["file"] == first["file"]
    assert kept["sha256"] == first["sha256"] and kept["retry"] == "rerender-changed"
    assert sim.stats()["renders_started"] == 3

    assert main(run_args(batch, "--rerender-changed")) == 0
    fresh = _by_id(out)["row-001"]
    assert fresh["file"].endswith("row-001.v2.mp4") and fresh["name"] == "Benjamin"
    assert b'"name":"Benjamin"' in (out / fresh["file"]).read_bytes()
    assert (out / first["file"]).read_bytes() == old_video  # the delivered video is untouched
    assert sim.stats()["renders_started"] == 4
    capsys.readouterr()

    assert main(run_args(batch)) == 0
    assert "CHANGED" not in capsys.readouterr().err
    assert sim.stats()["renders_started"] == 4
