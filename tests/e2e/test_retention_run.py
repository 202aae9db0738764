"""Retention at Pictory and disk space, through the real CLI against the simulator (issue 32):
``[pictory] clean_after_download`` cleans each row's render and preview job once after its
download, a run killed before cleaning cleans on the next run, and a batch that cannot fit on
the disk of ``--out`` is refused before anything is sent (a real, tiny tmpfs)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME, replay

from .helpers import check_invariants, run_args, write_batch
from .test_disk_faults import _namespaces_work

CLEAN = "[pictory]\nclean_after_download = true\n"
ROUTE = "DELETE /v1/jobs/{id}/clean"


def _jobs(run_dir: Path) -> dict[str, list[str]]:
    """Each row's render and preview job, from the ledger."""
    state = replay(run_dir / LEDGER_NAME)
    return {s.row: [j for j in (s.render_job, s.preview_job) if j] for s in state.rows.values()}


def test_clean_after_download_cleans_each_job_once_after_its_download(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 4, extra_config=CLEAN)
    assert main(run_args(batch)) == 0
    stats = sim.stats()
    check_invariants(batch["out"], stats, 4)  # every video downloaded and verified first
    jobs = _jobs(batch["out"])
    every_job = [j for row_jobs in jobs.values() for j in row_jobs]
    assert len(every_job) == 8
    assert stats["cleans"] == {job: 1 for job in every_job}
    assert stats["requests"][ROUTE] == 8
    state = replay(batch["out"] / LEDGER_NAME)
    assert all(sorted(s.cleaned_jobs or []) == sorted(jobs[s.row]) for s in state.rows.values())
    credentials = {"client_id": "test-client", "client_secret": "s"}
    token = sim.api("POST", "/v1/oauth2/token", credentials)["access_token"]
    render = jobs["row-000"][0]
    assert sim.api("GET", f"/v1/jobs/{render}", token=token)["data"]["status"] == "cleaned"

    assert main(run_args(batch)) == 0  # a rerun has nothing left to clean
    assert sim.stats()["requests"][ROUTE] == 8


def test_without_the_setting_nothing_is_cleaned(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch)) == 0
    assert ROUTE not in sim.stats()["requests"]


def test_a_run_killed_before_cleaning_cleans_on_the_next_run(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """The ledger a kill leaves after the rows' ``downloaded`` records and before their
    ``cleaned`` ones (those and the session's end taken out; some DELETEs may have been sent
    already, which is why cleaning must be idempotent): the next run takes up the done rows
    whose jobs were not recorded cleaned, cleans them, and renders nothing again."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path, 4, extra_config=CLEAN)
    assert main(run_args(batch)) == 0
    ledger = batch["out"] / LEDGER_NAME
    lines = ledger.read_text().splitlines(keepends=True)
    kept = [x for x in lines if json.loads(x)["e"] not in ("cleaned", "ended")]
    ledger.write_text("".join(kept))
    before = sim.stats()
    assert len(before["cleans"]) == 8  # the first run had cleaned them all before the "kill"
    state = replay(ledger)
    assert all(s.status == "done" and not s.cleaned_jobs for s in state.rows.values())

    assert main(run_args(batch)) == 0
    after = sim.stats()
    assert after["renders_started"] == before["renders_started"]
    assert after["requests"][ROUTE] == before["requests"][ROUTE] + 8
    assert all(n == 2 for n in after["cleans"].values())  # idempotent: asked again, no harm
    state = replay(ledger)
    assert all(s.cleaned_jobs for s in state.rows.values())


@pytest.mark.slow
@pytest.mark.skipif(not _namespaces_work(), reason="needs unshare and a private tmpfs mount")
def test_a_batch_that_cannot_fit_on_the_disk_is_refused_before_anything_is_sent(
    tmp_path: Path, make_sim: Any
) -> None:
    """A 2 MB file system for 40 videos of a few MB each: exit 4 with both figures and what
    to do, in one line, and not one request sent to render."""
    sim = make_sim()
    batch = write_batch(tmp_path / "in", 40)
    mount = tmp_path / "disk"
    mount.mkdir()
    out = mount / "run"
    python = shlex.quote(sys.executable)
    command = " ".join(shlex.quote(a) for a in run_args({**batch, "out": out}))
    script = f"""
        mount -t tmpfs -o size=2m tmpfs {mount}
        {python} -m orchestrator {command} > {tmp_path}/out1 2> {tmp_path}/err1
        echo $? > {tmp_path}/rc1
    """
    env = {**sim.env(), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    err = (tmp_path / "err1").read_text()
    assert (tmp_path / "rc1").read_text().strip() == "4", err
    assert "Traceback" not in err
    line = next(x for x in err.splitlines() if "not enough space" in x)
    assert re.search(r"the batch needs about [\d.]+ MB for 40 video\(s\) \([\d.]+ MB each", line)
    assert "template length" in line  # the template's own length, at the documented bitrate
    assert "MB is free" in line and "choose another --out" in line
    assert sim.stats()["renders_started"] == 0
    assert not any(r.startswith("POST") for r in sim.stats()["requests"])


def test_keep_local_removes_local_copies_only_after_a_verified_delivery(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--keep-local posters`` with ``--deliver file://``: each video leaves the run directory
    once its delivery is recorded with the download's sha256 (its poster stays, the delivered
    copy is whole); ``none`` takes the poster too; without a delivery nothing is removed."""
    sim = make_sim()
    api_env(sim)
    batch = write_batch(tmp_path / "kept", 2)
    assert main(run_args(batch, "--keep-local", "none")) == 0
    assert "--keep-local none: every local copy is kept" in capsys.readouterr().err
    out = batch["out"]
    assert sorted(p.name for p in (out / "videos").glob("*.mp4")) == ["row-000.mp4", "row-001.mp4"]

    batch = write_batch(tmp_path / "posters", 3)
    dest = tmp_path / "dest"
    deliver = ["--deliver", dest.as_uri() + "/", "--keep-local", "posters"]
    assert main(run_args(batch, *deliver)) == 0
    out = batch["out"]
    state = replay(out / LEDGER_NAME)
    for s in state.rows.values():
        assert s.status == "done" and s.delivered_sha256 == s.sha256
        assert s.local_removed == [s.file]
        assert not (out / str(s.file)).exists()
        assert (out / "thumbs" / f"{s.row}.jpg").exists()
        delivered = dest / Path(str(s.file)).name
        assert hashlib.sha256(delivered.read_bytes()).hexdigest() == s.sha256
    assert main(run_args(batch, *deliver)) == 0  # a rerun finds nothing left to do
    assert sim.stats()["renders_started"] == 5

    batch = write_batch(tmp_path / "none", 1)
    assert main(run_args(batch, "--deliver", dest.as_uri() + "/", "--keep-local", "none")) == 0
    assert not list((batch["out"] / "videos").glob("*.mp4"))
    assert not list((batch["out"] / "thumbs").glob("*.jpg"))
