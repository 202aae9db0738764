"""Private by default (issue 32): a run directory is 0700 and every file in it 0600 (the
ledger, the log, results, the report, videos, posters, the webhook secret, the locks), whatever
the umask; a run directory made looser before is not changed behind its owner's back, but named
with the command that fixes it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.files import loose_modes, make_private_dir

from .helpers import run_args, write_batch


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask there is (000), put back after the test."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def _modes(run_dir: Path) -> dict[str, str]:
    """Every path under ``run_dir`` (and itself) whose mode is not the private one."""
    wrong: dict[str, str] = {}
    for path in [run_dir, *run_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            wrong[str(path.relative_to(run_dir.parent))] = f"{mode:o}"
    return wrong


def test_a_run_under_umask_000_writes_only_private_paths(
    tmp_path: Path, open_umask: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under umask 000 a batch (webhooks on, posters on), its resume and its ``report`` leave
    the run directory 0700 and every file in it 0600; the files the report names are there."""
    batch = write_batch(tmp_path, 3, config={"webhook": {"enabled": True}})
    assert main(run_args(batch, "--simulate", "test")) == 0
    assert main(run_args(batch, "--simulate", "test")) == 0  # a session more: locks, log again
    assert main(["report", str(batch["out"])]) == 0
    out = batch["out"]
    names = {p.name for p in out.rglob("*")}
    for name in ("ledger.jsonl", "log.jsonl", "results.csv", "report.html", "webhook.secret"):
        assert name in names, name
    assert list(out.glob("videos/*.mp4")) and list(out.rglob("*.jpg")), "videos and posters"
    assert _modes(out) == {}
    assert "can be read by other users" not in capsys.readouterr().err


def test_private_dirs_are_made_0700_with_their_parents(tmp_path: Path, open_umask: None) -> None:
    """``make_private_dir`` makes the folder and its missing parents 0700 under umask 000 and
    leaves a folder that exists as it was."""
    (tmp_path / "kept").mkdir(mode=0o755)
    make_private_dir(tmp_path / "kept" / "a" / "b")
    assert stat.S_IMODE((tmp_path / "kept").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "kept" / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "kept" / "a" / "b").stat().st_mode) == 0o700


def test_a_looser_run_dir_is_named_with_the_fix_not_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run directory another user can read (made 0755 by an earlier version) gets one warning
    line with the ``chmod`` that fixes it, and its mode is left as it was."""
    batch = write_batch(tmp_path, 2)
    batch["out"].mkdir(mode=0o755)
    batch["out"].chmod(0o755)
    assert main(run_args(batch, "--simulate", "test")) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "can be read by other users" in line]
    assert len(lines) == 1, err
    assert f"chmod -R go= {batch['out']}" in lines[0]
    assert stat.S_IMODE(batch["out"].stat().st_mode) == 0o755
    batch["out"].chmod(0o700)
    assert loose_modes(batch["out"]) is None
