"""Disk faults end a run cleanly (docs/failures.md, "Disk faults"): a full disk stops admitting
rows, prints one line naming the path and what to do, exits 4, leaves nothing half-written, and
the rerun (once there is space) finishes with no render twice. A log that cannot be written
falls back to stderr instead of ending the run; ``report`` on a read-only run directory says so
in one line and writes elsewhere with ``--out``.

The full disk is real: a 400 KB tmpfs mounted in a private mount namespace (``unshare``), grown
for the rerun. Where namespaces are not allowed the test is skipped; the unit tests below it
cover the same paths with ``/dev/full``."""

from __future__ import annotations

import errno
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import StorageError
from orchestrator.events import JsonlLogSink
from orchestrator.files import write_text_atomically
from orchestrator.ledger.file import RESERVE_NAME, FileLedger
from orchestrator.ledger.records import RowAdmitted
from tests.e2e.helpers import check_invariants, read_results, run_args, run_cli, write_batch


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && echo ok"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() == "ok"


@pytest.mark.slow
@pytest.mark.skipif(not _namespaces_work(), reason="needs unshare and a private tmpfs mount")
def test_a_full_disk_stops_the_run_cleanly_and_the_rerun_finishes(
    tmp_path: Path, standalone_sim: Any
) -> None:
    sim = standalone_sim("--profile", "test")
    # the check before the run would refuse 40 videos on 400 KB: this is about a disk filling up
    batch = write_batch(tmp_path / "in", 40, config={"run": {"check_disk_space": False}})
    mount = tmp_path / "disk"
    mount.mkdir()
    out = mount / "run"
    saved = tmp_path / "saved"
    python = shlex.quote(sys.executable)
    command = " ".join(shlex.quote(a) for a in run_args({**batch, "out": out}))
    script = f"""
        mount -t tmpfs -o size=400k tmpfs {mount}
        {python} -m orchestrator {command} > {tmp_path}/out1 2> {tmp_path}/err1
        echo $? > {tmp_path}/rc1
        mount -o remount,size=64m {mount}
        {python} -m orchestrator {command} > {tmp_path}/out2 2> {tmp_path}/err2
        echo $? > {tmp_path}/rc2
        cp -a {out} {saved}
    """
    env = {**sim.env(), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    err1 = (tmp_path / "err1").read_text()
    out1 = (tmp_path / "out1").read_text()
    assert (tmp_path / "rc1").read_text().strip() == "4", err1 + out1
    assert "Traceback" not in err1
    assert "no space left on the device" in out1 + err1
    assert "then run the same command again: nothing is lost" in out1 + err1
    err2 = (tmp_path / "err2").read_text()
    assert (tmp_path / "rc2").read_text().strip() == "0", err2
    stats = sim.stats()
    assert stats["duplicate_renders"] == 0
    results = check_invariants(saved, stats, 40)
    assert {r["status"] for r in results} == {"done"}
    leftovers = [p.name for p in (saved / "videos").iterdir() if p.name.endswith(".part")]
    assert leftovers == []


@pytest.mark.slow
@pytest.mark.skipif(not _namespaces_work(), reason="needs unshare and a read-only bind mount")
def test_report_on_a_read_only_run_directory_says_so_and_writes_elsewhere(
    tmp_path: Path, standalone_sim: Any
) -> None:
    sim = standalone_sim("--profile", "test")
    batch = write_batch(tmp_path, 3)
    run = run_cli(run_args(batch), sim.env())
    assert run.returncode == 0, run.stderr
    out = batch["out"]
    elsewhere = tmp_path / "shared-report"
    orchestrator = f"{shlex.quote(sys.executable)} -m orchestrator"
    script = f"""
        mount --bind {out} {out} && mount -o remount,ro,bind {out}
        {orchestrator} report {out} > {tmp_path}/o1 2> {tmp_path}/e1
        echo $? > {tmp_path}/r1
        {orchestrator} status {out} > {tmp_path}/o2 2> {tmp_path}/e2
        echo $? > {tmp_path}/r2
        {orchestrator} report {out} --out {elsewhere} > {tmp_path}/o3 2> {tmp_path}/e3
        echo $? > {tmp_path}/r3
    """
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    e1 = (tmp_path / "e1").read_text()
    assert (tmp_path / "r1").read_text().strip() == "2", e1
    assert "Traceback" not in e1 and len(e1.strip().splitlines()) == 1
    assert "cannot write results.csv and report.html there" in e1 and "--out DIR" in e1
    assert (tmp_path / "r2").read_text().strip() == "0", (tmp_path / "e2").read_text()
    assert re.search(r"done +3", (tmp_path / "o2").read_text())
    assert (tmp_path / "r3").read_text().strip() == "0", (tmp_path / "e3").read_text()
    assert (elsewhere / "results.csv").exists() and (elsewhere / "report.html").exists()
    data = (elsewhere / "report-data.js").read_text()
    assert "../run/videos/" in data  # the page links the videos where they are
    assert [r["status"] for r in read_results(elsewhere)] == ["done"] * 3


class _SteppedClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def wall_s(self) -> float:
        return 1_800_000_000.0 + self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_the_log_falls_back_to_stderr_instead_of_ending_the_run(tmp_path: Path) -> None:
    """``/dev/full`` answers every write with ENOSPC: the log says so once and goes on in the
    fallback stream, progress events left out."""
    fallback = io.StringIO()
    clock = _SteppedClock()
    sink = JsonlLogSink(Path("/dev/full"), [], clock=clock, fallback=fallback)
    sink.emit("run_started", rows=3)
    clock.t += 5.0  # the next event flushes the buffer: ENOSPC
    sink.emit("rate", rps=1.0)
    sink.emit("row_failed", row="r1", message="x")
    sink.close()
    lines = fallback.getvalue().splitlines()
    assert "cannot write the log (No space left on device)" in lines[0]
    assert '"event": "row_failed"' in fallback.getvalue()
    assert '"event": "rate"' not in fallback.getvalue()


def test_an_atomic_write_on_a_full_disk_is_a_storage_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = __import__("os").fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("orchestrator.files.os.fsync", full)
    with pytest.raises(StorageError) as caught:
        write_text_atomically(tmp_path / "results.csv", "id\n")
    monkeypatch.setattr("orchestrator.files.os.fsync", real_fsync)
    assert caught.value.path == str(tmp_path / "results.csv")
    assert "no space left on the device" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


async def test_the_ledger_writes_into_its_reserve_then_stops_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first ENOSPC frees the reserve and the write goes through (a row in flight records
    its render job); the ledger then stops offering rows, with the disk fault."""
    from orchestrator.input.rows import manifest_rows
    from tests.e2e.helpers import write_batch as _batch

    batch = _batch(tmp_path / "in", 3)
    rows = manifest_rows(batch["manifest"], batch["template"])
    ledger = FileLedger.open(tmp_path / "run", rows)
    assert (tmp_path / "run" / RESERVE_NAME).stat().st_size > 0
    real = FileLedger._write_all
    failures = iter([True])

    def fill_once(self: FileLedger, data: bytes) -> None:
        if next(failures, False):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, data)

    monkeypatch.setattr(FileLedger, "_write_all", fill_once)
    try:
        await ledger.append(RowAdmitted(row="row-000", line=2))
        assert not (tmp_path / "run" / RESERVE_NAME).exists()
        assert ledger.state.rows["row-000"].attempts == 1
        with pytest.raises(StorageError):
            async for _ in ledger.rows_to_work_on():
                pass
    finally:
        ledger.close()
    assert b'"row-000"' in (tmp_path / "run" / "ledger.jsonl").read_bytes()


@pytest.mark.slow
def test_a_log_that_cannot_be_written_does_not_end_the_run(
    tmp_path: Path, standalone_sim: Any
) -> None:
    """The reported fault: a write error on ``log.jsonl`` alone ended the run. Here every write
    to it fails (it leads to ``/dev/full``): the run says so once and renders every row."""
    sim = standalone_sim("--profile", "test")
    batch = write_batch(tmp_path, 8)
    batch["out"].mkdir()
    (batch["out"] / "log.jsonl").symlink_to("/dev/full")
    run = run_cli(run_args(batch), sim.env())
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.count("cannot write the log (No space left on device)") == 1
    results = check_invariants(batch["out"], sim.stats(), 8)
    assert {r["status"] for r in results} == {"done"}
