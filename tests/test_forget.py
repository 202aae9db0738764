"""Forgetting rows (``ledger.forget``, ``ledger.erase``, ``run.forget``): what a forgotten row's
records keep, how its state folds, that no run works on it again, and that the ledger rewrite
is all or nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.api.retry import lost_with_simulator, resume_action
from orchestrator.input.rows import RowJob
from orchestrator.ledger import erase
from orchestrator.ledger.codec import encode
from orchestrator.ledger.file import LEDGER_NAME, replay
from orchestrator.ledger.forget import redact
from orchestrator.ledger.protocol import BatchSnapshot, LedgerState
from orchestrator.ledger.records import (
    Ambiguous,
    Downloaded,
    Forgotten,
    PreviewJob,
    RenderIntent,
    RenderReady,
    RowAdmitted,
)
from orchestrator.run.traces import _stem, relative_key

MARK = "[forgotten 2026-12-07]"


def test_redact_keeps_identities_digests_and_billing_and_erases_every_text() -> None:
    """A render intent keeps its row, job, digest; its values become the marker (keys kept). A
    finished render keeps seconds and credits; its links become the marker."""
    intent = RenderIntent(row="r1", preview_job="p1", vars="abcd", values={"name": "Ann"})
    assert redact(intent, MARK) == RenderIntent(
        row="r1", preview_job="p1", vars="abcd", values={"name": MARK}
    )
    ready = RenderReady(
        row="r1", job="j1", video_url="https://cdn/x.mp4", duration_s=3.0, credits=2.0,
        subtitles={"srtFile": "https://cdn/x.srt"},
    )  # fmt: skip
    done = redact(ready, MARK)
    assert (done.job, done.duration_s, done.credits) == ("j1", 3.0, 2.0)
    assert done.video_url == MARK and done.subtitles == {"srtFile": MARK}
    file = redact(Downloaded(row="r1", file="videos/ann.mp4", bytes=5, sha256="ff"), MARK)
    assert (file.file, file.bytes, file.sha256) == (MARK, 5, "ff")


def _state(*events: object) -> LedgerState:
    state = LedgerState()
    for event in events:
        state.apply(event)  # type: ignore[arg-type]
    return state


@pytest.mark.parametrize(
    ("before", "status"),
    [
        ((RowAdmitted(row="r1"),), "failed"),
        ((RowAdmitted(row="r1"), Ambiguous(row="r1", message="lost")), "failed"),
        ((Downloaded(row="r1", file="videos/a.mp4", bytes=1, sha256="f"),), "done"),
    ],
)
def test_a_forgotten_row_is_never_worked_again_whatever_its_status(
    before: tuple[object, ...], status: str
) -> None:
    """Forgetting keeps a done row done and makes a row that was not done failed (kind
    ``forgotten``); ``resume_action`` skips it even with --retry-failed or
    --rerender-ambiguous, and it never starts over after an embedded simulator's loss."""
    state = _state(*before, PreviewJob(row="r1", job="p"), Forgotten(row="r1", date="2026-12-07"))
    row = state.rows["r1"]
    assert (row.status, row.forgotten, row.file) == (status, "2026-12-07", None)
    for retry_failed in (False, True):
        for rerender_ambiguous in (False, True):
            action = resume_action(
                row, retry_failed=retry_failed, rerender_ambiguous=rerender_ambiguous
            )
            assert action == "skip"
    assert not lost_with_simulator(row)
    assert state.forgotten == {"r1"}


def test_the_read_side_shows_a_forgotten_row_as_its_marker() -> None:
    """``BatchSnapshot.rows`` shows a forgotten row's values and extra columns as the marker,
    though the manifest still holds them; other rows as they are."""
    state = _state(Forgotten(row="r1", date="2026-12-07"))

    def rows() -> object:
        yield RowJob("r1", 2, {"name": "Ann"}, None, "ann.mp4", extras={"email": "a@x"})
        yield RowJob("r2", 3, {"name": "Bob"}, None, "bob.mp4")

    listed = list(BatchSnapshot(rows=rows, state=state).rows())  # type: ignore[arg-type]
    assert listed[0].variables == {"name": MARK} and listed[0].extras == {"email": MARK}
    assert listed[1].variables == {"name": "Bob"}


def _ledger(tmp_path: Path) -> Path:
    path = tmp_path / LEDGER_NAME
    lines = [
        RowAdmitted(row="r1", line=2, output="ann.mp4"),
        RenderIntent(row="r1", vars="d1", values={"name": "Ann Planted"}),
        RowAdmitted(row="r2", line=3, output="bob.mp4"),
        RenderIntent(row="r2", vars="d2", values={"name": "Bob Kept"}),
    ]
    import json

    path.write_text("".join(json.dumps(encode(e)) + "\n" for e in lines), encoding="utf-8")
    return path


def test_the_ledger_rewrite_redacts_one_row_and_keeps_the_rest_byte_for_byte(
    tmp_path: Path,
) -> None:
    """``erase.rewrite`` redacts r1's records, adds its ``forgotten`` record, and leaves r2's
    lines exactly as they were; the replay knows r1 as forgotten."""
    path = _ledger(tmp_path)
    before = path.read_bytes().splitlines()
    assert erase.rewrite(path, {"r1": "2026-12-07"}, ["r1"], 1.0) == 2
    after = path.read_bytes().splitlines()
    assert b"Ann Planted" not in path.read_bytes() and b"ann.mp4" not in path.read_bytes()
    assert after[2:4] == before[2:4] and len(after) == 5
    assert replay(path).rows["r1"].forgotten == "2026-12-07"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_crash_before_the_rename_leaves_the_ledger_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is the one moment rows become forgotten: a failure before it leaves the
    ledger byte for byte as it was and no copy of it behind."""
    path = _ledger(tmp_path)
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        erase.rewrite(path, {"r1": "2026-12-07"}, ["r1"], 1.0)
    assert path.read_bytes() == before
    assert erase.stale_copies(tmp_path) == []


def test_files_of_a_row_are_told_by_their_video_stem() -> None:
    """A row's video, subtitles, poster, GIF, partial download and temporary poster share its
    stem; another video whose name only starts alike does not."""
    for name in ("ann.mp4", "ann.srt", "ann.jpg", "ann.gif", ".ann.mp4.part", ".ann.jpg.tmp"):
        assert _stem(name) == "ann", name
    assert _stem("ann.smith.mp4") == "ann.smith"


def test_a_delivered_key_is_made_relative_to_its_destination() -> None:
    """``delete`` takes a key relative to the destination: a recorded key with the prefix or
    the folder in front loses it, a relative one is kept."""
    assert relative_key("s3://bucket/out/", "out/ann.mp4") == "ann.mp4"
    assert relative_key("s3://bucket/out/", "ann.mp4") == "ann.mp4"
    assert relative_key("file:///srv/share/", "/srv/share/ann.mp4") == "ann.mp4"
    assert relative_key("file:///srv/share/", "ann.mp4") == "ann.mp4"


def test_a_rows_traces_name_every_job_it_had_at_pictory_less_the_cleaned_ones() -> None:
    """Every job id a row's records name is to be cleaned by ``forget``, a retried row's earlier
    preview and render too, in order, once each; a job a ``cleaned`` record names is not; a
    lost answer (``ambiguous``) is counted, so ``forget`` can say a job may exist unnamed."""
    from orchestrator.ledger.records import AuxJob, JobsCleaned, RenderJob, Retry
    from orchestrator.run.traces import RowTraces

    found = RowTraces("r1")
    for event in (
        AuxJob(row="r1", stage="transcription", job="t1"),
        PreviewJob(row="r1", job="p1"),
        RenderIntent(row="r1", preview_job="p1"),
        RenderJob(row="r1", job="v1"),
        Retry(row="r1"),
        PreviewJob(row="r1", job="p2"),
        RenderIntent(row="r1", preview_job="p2"),
        Ambiguous(row="r1", stage="render"),
        JobsCleaned(row="r1", jobs=["v1"]),
    ):
        found.saw(event)
    assert found.to_clean == ["t1", "p1", "p2"]
    assert found.lost == 1
