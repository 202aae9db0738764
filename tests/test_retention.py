"""Retention and disk (issue 32, items 3 and 4), without the network: the free-space check
before a run (on a settable free-space seam), the ``--keep-local`` rules, and ``orchestrator
purge`` on run directories (old ones removed, fresh, live and killed ones kept)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from memory_transport import MemoryTransport, memory_client, reply

from orchestrator.cli.main import main
from orchestrator.config import Config
from orchestrator.errors import ApiError, StorageError, UserError
from orchestrator.events import ListSink
from orchestrator.ledger.file import LEDGER_NAME, LOCK_NAME
from orchestrator.ledger.locks import try_exclusive
from orchestrator.ledger.row_state import RowState
from orchestrator.run import disk
from orchestrator.run.options import RunOptions
from orchestrator.run.stages import tidy

DAY_S = 86_400.0
MB = 1_000_000


def _done(row: str, size: int, **fields: object) -> RowState:
    state = RowState(row=row, status="done", bytes=size, sha256="ab" * 32)
    state.file = f"videos/{row}.mp4"
    for name, value in fields.items():
        setattr(state, name, value)
    return state


# ---- disk: the estimate and the refusal ------------------------------------------------------


def test_a_batch_that_cannot_fit_is_refused_with_both_figures(tmp_path: Path) -> None:
    """No row downloaded yet: the estimate is the assumed minutes at the documented bitrate;
    too little free space is a StorageError (exit 4) naming the need, the space and what to do."""
    with pytest.raises(StorageError) as caught:
        disk.check_space(
            tmp_path,
            100,
            [],
            ListSink(),
            assumed_video_minutes=1.0,
            free_bytes=lambda _: 500 * MB,
        )
    text = str(caught.value)
    assert "the batch needs about 1.5 GB for 100 video(s)" in text  # 100 × (15 MB + poster)
    assert "500.0 MB is free" in text
    assert "choose another --out" in text and "\n" not in text


def test_check_disk_space_false_only_warns(tmp_path: Path) -> None:
    """``[run] check_disk_space = false``: the same shortfall is a warning and the run goes on."""
    sink = ListSink()
    found = disk.check_space(
        tmp_path,
        100,
        [],
        sink,
        assumed_video_minutes=1.0,
        refuse=False,
        free_bytes=lambda _: 500 * MB,
    )
    assert found is not None and found.needed_bytes > found.free_bytes
    assert "disk_close" in sink.kinds()


def test_the_estimate_comes_from_rows_already_downloaded(tmp_path: Path) -> None:
    """Earlier rows of the batch give the size; done rows are not counted again; a disk that
    will be nearly full is a warning, not a refusal."""
    sink = ListSink()
    states = [_done(f"r{i}", 40 * MB) for i in range(10)]
    estimate = disk.check_space(
        tmp_path,
        30,
        states,
        sink,
        assumed_video_minutes=1.0,
        posters=False,
        free_bytes=lambda _: 900 * MB,
    )
    assert estimate is not None
    assert estimate.rows == 20 and estimate.bytes_per_row == 40 * MB
    assert "already downloaded" in estimate.basis
    close = [fields for kind, fields in sink.events if kind == "disk_close"]
    assert close and "800.0 MB" in str(close[0]["message"])


def test_nothing_left_to_download_needs_no_space(tmp_path: Path) -> None:
    """A finished batch is never refused, whatever the disk."""
    states = [_done("a", MB), _done("b", MB)]
    found = disk.check_space(
        tmp_path, 2, states, ListSink(), assumed_video_minutes=1.0, free_bytes=lambda _: 0
    )
    assert found is None


# ---- keep-local ----------------------------------------------------------------------------


def test_keep_local_never_removes_before_a_verified_delivery() -> None:
    """Without a delivery, or with one whose checksum differs from the download's, nothing is
    removed; with a matching one, ``posters`` and ``none`` take their step once."""
    plain = _done("a", MB)
    assert not tidy.outstanding(plain, clean=False, keep_local="none", delivers=False)
    assert not tidy.outstanding(plain, clean=False, keep_local="none", delivers=True)
    other = _done("a", MB, delivered_sha256="cd" * 32)
    assert tidy.delivered_sha256(other) == "cd" * 32
    assert not tidy.outstanding(other, clean=False, keep_local="none", delivers=True)
    same = _done("a", MB, delivered_sha256="ab" * 32)
    assert tidy.outstanding(same, clean=False, keep_local="posters", delivers=True)
    assert not tidy.outstanding(same, clean=False, keep_local="all", delivers=True)
    same.local_removed = ["videos/a.mp4"]
    assert not tidy.outstanding(same, clean=False, keep_local="posters", delivers=True)


def test_keep_local_posters_keeps_the_poster_and_none_removes_it() -> None:
    state = _done("a", MB, extras=["videos/a.srt"])
    assert tidy.local_copies(state, "all") == []
    assert tidy.local_copies(state, "posters") == ["videos/a.mp4", "videos/a.srt"]
    none = ["videos/a.mp4", "videos/a.srt", "thumbs/a.jpg", "thumbs/a.gif"]
    assert tidy.local_copies(state, "none") == none


def test_keep_local_is_checked_and_reaches_the_config() -> None:
    """``--keep-local`` (RunOptions) sets ``[run] keep_local``; an unknown value is one line."""
    config = RunOptions(keep_local="posters").configured(Config())
    assert config.run.keep_local == "posters"
    with pytest.raises(UserError, match="--keep-local some: choose one of all, posters, none"):
        RunOptions(keep_local="some").configured(Config())  # type: ignore[arg-type]


def test_clean_after_download_waits_for_delivery_and_cleans_each_job_once() -> None:
    """The jobs to clean are the render's and the preview's, minus those cleaned already."""
    state = _done("a", MB, render_job="R", preview_job="P")
    assert tidy.jobs_to_clean(state) == ["R", "P"]
    assert tidy.outstanding(state, clean=True, keep_local="all", delivers=False)
    assert not tidy.outstanding(state, clean=True, keep_local="all", delivers=True)
    state.cleaned_jobs = ["R", "P"]
    assert not tidy.outstanding(state, clean=True, keep_local="all", delivers=False)


# ---- the client's clean -----------------------------------------------------------------------

CLEAN = "/v1/jobs/j1/clean"
TOKEN = {"access_token": "t", "expires_in": 3600, "token_type": "Bearer"}


async def test_clean_job_sends_the_documented_delete_and_takes_a_gone_job_as_cleaned() -> None:
    """``{"success":true}`` (§5.4) and a 404 (a job cleaned or expired already) are both done;
    ``"success": false`` is an error the tidy step reports without failing the row."""
    api = MemoryTransport()
    api.on("POST", "/v1/oauth2/token", reply(TOKEN))
    api.on(
        "DELETE",
        CLEAN,
        reply({"success": True}),
        reply({"success": False, "error_code": "JOB_NOT_FOUND"}, 404),
        reply({"success": False}),
    )
    async with memory_client(api) as client:
        await client.clean_job("j1")
        await client.clean_job("j1")
        with pytest.raises(ApiError, match="answered success: false"):
            await client.clean_job("j1")
    assert len(api.requests("DELETE", CLEAN)) == 3


# ---- purge ----------------------------------------------------------------------------------


def _run_dir(root: Path, name: str, *, ended_days_ago: float | None, mp4_bytes: int = 0) -> Path:
    """A run directory as a run leaves it: a ledger (its last session ended that many days ago,
    or, with None, killed: no ``ended`` record) and a video."""
    folder = root / name
    (folder / "videos").mkdir(parents=True)
    ts = time.time() - (ended_days_ago or 0) * DAY_S
    records = [{"e": "run", "ts": ts - 60, "format": 2, "session": 1}]
    records.append({"e": "row", "ts": ts - 30, "row": "r1", "line": 2, "output": "r1.mp4"})
    if ended_days_ago is not None:
        records.append({"e": "ended", "ts": ts, "how": "finished"})
    (folder / LEDGER_NAME).write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "videos" / "r1.mp4").write_bytes(b"\0" * mp4_bytes)
    return folder


def test_purge_removes_old_run_dirs_and_keeps_fresh_live_killed_and_foreign_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    old = _run_dir(root, "old", ended_days_ago=40, mp4_bytes=300_000)
    nested = _run_dir(root / "clients" / "acme", "older", ended_days_ago=90)
    fresh = _run_dir(root, "fresh", ended_days_ago=2)
    killed = _run_dir(root, "killed", ended_days_ago=None)
    live = _run_dir(root, "live", ended_days_ago=60)
    foreign = root / "not-ours"
    foreign.mkdir()
    (foreign / LEDGER_NAME).write_text('{"something": "else"}\n')
    lock = os.open(live / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert try_exclusive(lock)  # a live run holds it
        assert main(["purge", "--older-than", "30", str(root)]) == 0
    finally:
        os.close(lock)
    out = capsys.readouterr().out
    assert not old.exists() and not nested.exists()
    assert fresh.exists() and killed.exists() and live.exists() and foreign.exists()
    assert f"removed   {old} (" in out and "ended 40 days ago" in out
    assert f"kept      {live}: a run holds it" in out
    assert f"kept      {killed}: its last run did not end" in out
    assert f"kept      {foreign}: not a ledger of ours" in out
    assert f"kept      {fresh}: ended less than 30 days ago" in out
    assert "purge: 2 run directories or batch(es) removed, " in out
    assert "kB freed" in out or "MB freed" in out


def test_purge_dry_run_lists_and_removes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _run_dir(tmp_path, "old", ended_days_ago=40, mp4_bytes=200_000)
    assert main(["purge", "--older-than", "30", "--dry-run", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert old.exists() and (old / "videos" / "r1.mp4").exists()
    assert f"would remove {old}" in out
    assert "would be removed" in out and "nothing removed" in out


def test_purge_without_roots_or_ledger_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "--older-than", "30"]) == 2
    err = capsys.readouterr().err
    assert "give the folders that hold run directories (ROOT...) or --ledger URL" in err
    assert "Traceback" not in err
