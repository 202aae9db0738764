"""A new row whose video name is already taken in the run's ``videos/`` (``run.taken_names``): by
a video a done row made, or by a file put there by hand. ``run`` refuses it before anything is
sent, naming the line, the name and its owner, and the file is left byte for byte;
``validate --out RUN_DIR`` lists the same; a resume never collides with its own rows."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.errors import ExitCode

from .helpers import read_results, run_args, write_batch

PATTERN = "{name}"


def _rewrite(manifest: Path, rows: list[list[str]]) -> None:
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "city"])
        writer.writerows(rows)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.mp4")}


def test_a_new_row_named_like_a_done_rows_video_is_refused_before_anything_is_sent(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A done batch; its manifest loses row-001 and gains row-new, whose ``--name`` makes
    row-001's file: run and validate --out refuse it (line, name, owner, what to do), exit 2,
    nothing rendered, every video unchanged; renamed, the new row renders."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 3)
    out, manifest = batch["out"], batch["manifest"]
    assert main(run_args(batch, "--name", PATTERN)) == 0
    before = _digests(out / "videos")
    assert sorted(before) == ["Name-0.mp4", "Name-1.mp4", "Name-2.mp4"]
    renders = sim.stats()["renders_started"]
    capsys.readouterr()

    _rewrite(manifest, [["row-000", "Name 0", "A"], ["row-new", "name 1", "B"]])
    assert main(run_args(batch)) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"{manifest}:3: field 'output': the video file 'name-1.mp4' is the video of row " in err
    assert "'row-001', line 3; this new row would overwrite it" in err
    assert f"change --name '{PATTERN}' so this row makes a name of its own" in err
    assert "orchestrator forget row-001" in err and "Traceback" not in err
    assert sim.stats()["renders_started"] == renders
    assert _digests(out / "videos") == before

    validate = ["validate", str(manifest), "--template", str(batch["template"])]
    assert main([*validate, "--out", str(out)]) == ExitCode.USAGE
    said = capsys.readouterr()
    assert "the video file 'name-1.mp4' is the video of row 'row-001'" in said.out
    assert "1 problem(s)" in said.err
    assert main(validate) == ExitCode.OK  # without the run directory nothing is taken

    _rewrite(manifest, [["row-000", "Name 0", "A"], ["row-new", "Name 9", "B"]])
    assert main(run_args(batch)) == ExitCode.OK
    after = _digests(out / "videos")
    assert {name: after[name] for name in before} == before
    assert sorted(after) == [*sorted(before), "Name-9.mp4"]
    assert sim.stats()["renders_started"] == renders + 1


def test_a_file_put_in_videos_by_hand_is_never_overwritten(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch's videos/ gains a file no row made; a new row whose name is that file (case
    aside) is refused, saying to move the file away; nothing is sent or written over."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--name", PATTERN)) == 0
    videos = batch["out"] / "videos"
    (videos / "Extra.mp4").write_bytes(b"mine")
    renders = sim.stats()["renders_started"]
    capsys.readouterr()
    rows = [["row-000", "Name 0", "A"], ["row-001", "Name 1", "B"], ["row-new", "EXTRA", "C"]]
    _rewrite(batch["manifest"], rows)
    assert main(run_args(batch)) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert ":4: field 'output': the video file 'EXTRA.mp4' is a file already in" in err
    assert "that no row of this batch made" in err and "move or rename that file" in err
    assert sim.stats()["renders_started"] == renders
    assert (videos / "Extra.mp4").read_bytes() == b"mine"


def test_a_resume_keeps_its_own_names(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows that made their videos never collide with them: a rerun of the same manifest, and a
    rerun after a done row's values changed (it keeps its recorded name), pass the check."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--name", PATTERN)) == 0
    assert main(run_args(batch)) == 0
    _rewrite(batch["manifest"], [["row-000", "Name 1", "A"], ["row-001", "Name 0", "B"]])
    assert main(run_args(batch)) == 0  # the two done rows swap values; each keeps its file
    assert {r["file"] for r in read_results(batch["out"])} == {
        "videos/Name-0.mp4",
        "videos/Name-1.mp4",
    }
    assert sim.stats()["renders_started"] == 2
