"""The ledger: durable appends, group commit, replay, torn tails, damage, and the run-dir lock."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from orchestrator.errors import DamagedRecord, NewerRecord, RunDirError
from orchestrator.ledger.codec import decode, encode
from orchestrator.ledger.file import LEDGER_NAME, FileLedger, replay
from orchestrator.ledger.records import (
    EVENT_TYPES,
    LEDGER_FORMAT,
    Event,
    Failed,
    PreviewJob,
    RenderIntent,
    RenderJob,
    RenderRefused,
    Retry,
    RowAdmitted,
    RunStarted,
)


def _event(record: dict[str, object]) -> Event:
    event = decode(record)
    assert event is not None
    return event


async def test_appended_events_replay_into_row_state(tmp_path: Path) -> None:
    """Every event type folds into the row's state the way resume needs it."""
    ledger = FileLedger.open(tmp_path)
    for event in (
        {"e": "row", "row": "a", "line": 2, "output": "a.mp4"},
        {"e": "preview_job", "row": "a", "job": "p1"},
        {"e": "preview_ready", "row": "a", "job": "p1"},
        {"e": "render_intent", "row": "a", "preview_job": "p1"},
        {"e": "render_job", "row": "a", "job": "r1"},
        {"e": "render_ready", "row": "a", "job": "r1", "video_url": "http://x/v.mp4"},
        {"e": "downloaded", "row": "a", "file": "videos/a.mp4", "bytes": 10, "sha256": "ab"},
    ):
        await ledger.append(_event(event))
    ledger.close()
    state = replay(tmp_path / LEDGER_NAME).rows["a"]
    assert (state.status, state.render_job, state.file, state.bytes) == (
        "done",
        "r1",
        "videos/a.mp4",
        10,
    )
    assert state.attempts == 1


async def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    """Many tasks appending at once need far fewer fsyncs than events, and all land on disk."""
    ledger = FileLedger.open(tmp_path)
    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(ledger.append, RowAdmitted(row=f"r{i}", line=i))
    fsyncs = ledger.fsyncs
    ledger.close()
    lines = (tmp_path / LEDGER_NAME).read_text().splitlines()
    assert len(lines) == 200
    assert fsyncs < 200


async def test_torn_last_line_is_dropped_and_truncated(tmp_path: Path) -> None:
    """A crash mid-write leaves a partial last line: replay ignores it, the next append is clean."""
    path = tmp_path / LEDGER_NAME
    path.write_text('{"e":"row","row":"a","line":1}\n{"e":"preview_job","row":"a","jo')
    ledger = FileLedger.open(tmp_path)
    assert ledger.state.rows["a"].preview_job is None
    await ledger.append(PreviewJob(row="a", job="p9"))
    ledger.close()
    assert [json.loads(line)["e"] for line in path.read_text().splitlines()] == [
        "row",
        "preview_job",
    ]
    assert replay(path).rows["a"].preview_job == "p9"


def test_garbage_in_the_middle_names_the_line(tmp_path: Path) -> None:
    """A damaged line that is not the last is refused with its line number, not guessed around."""
    path = tmp_path / LEDGER_NAME
    path.write_text('{"e":"row","row":"a"}\nnot json at all\n{"e":"row","row":"b"}\n')
    with pytest.raises(RunDirError, match=r"ledger.jsonl:2: this line is not a ledger event"):
        replay(path)


def test_second_open_of_a_locked_run_dir_is_refused(tmp_path: Path) -> None:
    """Two runs on one run dir at once: the second is refused, saying the dir is in use."""
    first = FileLedger.open(tmp_path)
    try:
        with pytest.raises(RunDirError, match="in use by another run"):
            FileLedger.open(tmp_path)
    finally:
        first.close()
    FileLedger.open(tmp_path).close()  # free again once the first closes


async def test_render_refused_clears_the_intent(tmp_path: Path) -> None:
    """A render request answered with an error started no job: the intent no longer blocks it."""
    ledger = FileLedger.open(tmp_path)
    await ledger.append(RenderIntent(row="a", preview_job="p"))
    assert ledger.state.rows["a"].render_intent
    await ledger.append(RenderRefused(row="a", kind="transient", message="x"))
    ledger.close()
    assert not replay(tmp_path / LEDGER_NAME).rows["a"].render_intent


async def test_retry_event_forgets_earlier_jobs(tmp_path: Path) -> None:
    """After a failed job, a retry event restarts the row from the preview."""
    ledger = FileLedger.open(tmp_path)
    await ledger.append(PreviewJob(row="a", job="p"))
    await ledger.append(RenderIntent(row="a", preview_job="p"))
    await ledger.append(RenderJob(row="a", job="r"))
    await ledger.append(
        Failed(row="a", stage="render", kind="job_failed", message="boom", permanent=True)
    )
    await ledger.append(Retry(row="a", reason="job failed"))
    ledger.close()
    state = replay(tmp_path / LEDGER_NAME).rows["a"]
    assert (state.status, state.preview_job, state.render_job, state.render_intent) == (
        "pending",
        None,
        None,
        False,
    )


def test_every_event_kind_survives_its_stored_form() -> None:
    """encode → JSON → decode gives the same event back, for every kind; a kind this version
    does not know is refused (a newer version's ledger), never skipped."""
    samples: dict[str, dict[str, object]] = {
        "run": {
            "format": LEDGER_FORMAT,
            "session": 2,
            "manifest": "/m.csv",
            "config": {"limits": {"rps": 5}},
        },
        "template": {"sha256": "ab", "template_id": "t1"},
        "row": {"row": "a", "line": 2, "output": "a.mp4"},
        "uploaded": {"row": "a", "url": "https://cdn/x.mp4", "bytes": 10},
        "aux_job": {"row": "a", "stage": "transcription", "job": "t"},
        "preview_job": {"row": "a", "job": "p"},
        "preview_ready": {"row": "a", "job": "p"},
        "render_intent": {"row": "a", "preview_job": "p", "vars": "d", "values": {"n": "Ann"}},
        "render_refused": {"row": "a", "kind": "transient", "message": "503"},
        "render_job": {"row": "a", "job": "r"},
        "render_ready": {"row": "a", "job": "r", "video_url": "https://v", "duration_s": 3},
        "downloaded": {"row": "a", "file": "v/a.mp4", "bytes": 1, "sha256": "s", "extras": []},
        "failed": {"row": "a", "stage": "render", "kind": "k", "message": "m", "permanent": True},
        "ambiguous": {"row": "a", "stage": "render", "message": "m"},
        "retry": {"row": "a", "reason": "r", "output": "a-v2.mp4"},
        "canary": {"size": 2, "rows": ["a", "b"]},
        "approved": {"rows": 2},
        "retry_failed": {},
        "ended": {"how": "halted", "reason": "spend cap: 1 renders sent"},
        "cleaned": {"row": "a", "jobs": ["r", "p"]},
        "local_removed": {"row": "a", "files": ["videos/a.mp4"]},
        "forgotten": {"row": "a", "date": "2026-12-07"},
        "delivered": {
            "row": "a",
            "destination": "s3://b/p/",
            "key": "p/a.mp4",
            "url": "https://s3/b/p/a.mp4",
            "bytes": 1,
            "sha256": "s",
            "expires": 1800000000.5,
        },
        "choices": {
            "canary": 3,
            "halt_after": "5%",
            "max_renders": 10,
            "max_minutes": 90.5,
            "max_credits": 500.0,
            "window": "22:00-06:00",
            "time_zone": "America/New_York",
            "at_window_end": "stop",
            "check_quota": True,
            "rerender_changed": True,
            "notify": "env:SLACK_URL",
        },
    }
    assert set(samples) == set(EVENT_TYPES)
    for kind, fields in samples.items():
        record = {"e": kind, "ts": 1.5, **fields}
        event = _event(json.loads(json.dumps(record)))
        assert type(event) is EVENT_TYPES[kind]
        assert encode(event) == record
    with pytest.raises(NewerRecord, match="'from_the_future' is unknown"):
        decode({"e": "from_the_future", "row": "a"})


def test_a_field_of_the_wrong_type_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_NAME
    path.write_text('{"e":"row","row":"a"}\n{"e":"render_job","row":"a","job":7}\n')
    with pytest.raises(RunDirError, match=r":2: field 'job' of this 'render_job' event"):
        replay(path)


def test_a_new_run_record_carries_the_format_and_an_old_one_reads_as_format_1() -> None:
    """Every run record written now says ``format``; one written before formats were numbered
    (no ``format``) is format 1. A format that is not a positive number is damage."""
    assert LEDGER_FORMAT == 3
    assert encode(RunStarted(session=1))["format"] == LEDGER_FORMAT
    old = decode({"e": "run", "ts": 1.0, "session": 1, "manifest": "/m.csv"})
    assert isinstance(old, RunStarted) and old.format == 1
    for bad in (0, -1, "2", True):
        with pytest.raises(DamagedRecord):
            decode({"e": "run", "format": bad})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            {"e": "from_the_future", "ts": 2.0, "row": "a"},
            ":3: event kind 'from_the_future' is unknown to this orchestrator, which reads "
            "ledger formats up to 3 (this ledger declares format 2): a newer orchestrator wrote "
            "it, or it was edited by hand; upgrade orchestrator",
        ),
        (
            {"e": "run", "ts": 2.0, "format": 99, "session": 2},
            ":3: this ledger was written by a newer orchestrator (format 99); this one reads up "
            "to format 3: upgrade orchestrator",
        ),
    ],
)
def test_a_newer_orchestrators_line_is_refused_by_name(
    tmp_path: Path, line: dict[str, object], expected: str
) -> None:
    """A kind this version does not know, or a run record of a newer format, stops the replay
    naming the file, the line, both formats and what to do; never skipped."""
    path = tmp_path / LEDGER_NAME
    records = [{"e": "run", "ts": 1.0, "format": 2}, {"e": "row", "row": "a"}, line]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(RunDirError) as caught:
        replay(path)
    assert str(caught.value) == f"{path}{expected}"


def test_a_torn_last_line_of_an_unknown_kind_is_still_just_dropped(tmp_path: Path) -> None:
    """A torn last line is never decoded, whatever it holds: the event was never acknowledged."""
    path = tmp_path / LEDGER_NAME
    path.write_text('{"e":"row","row":"a"}\n{"e":"from_the_future","row":"a"}')
    state = replay(path)
    assert state.rows.get("a") is not None
    assert path.read_bytes().endswith(b'"row":"a"}')  # replay reads; only an open truncates


def test_a_format_1_ledger_with_an_unknown_kind_says_so(tmp_path: Path) -> None:
    """The formats in the message are the ledger's own: a ledger of the previous releases
    (run records without ``format``) declares format 1."""
    path = tmp_path / LEDGER_NAME
    path.write_text('{"e":"run","session":1}\n{"e":"made_up","row":"a"}\n')
    with pytest.raises(RunDirError, match=r":2: .*'made_up'.*declares format 1\)"):
        replay(path)


async def test_a_ledger_replaced_by_another_file_stops_every_write(tmp_path: Path) -> None:
    """Someone put another file under ``ledger.jsonl`` while this run held it: the owner writes
    nothing more (so it can send no render) and says why; the other file is left alone."""
    ledger = FileLedger.open(tmp_path)
    try:
        await ledger.append(RowAdmitted(row="a", line=2))
        (tmp_path / "ledger.jsonl").unlink()
        (tmp_path / "ledger.jsonl").write_text("")  # another run's fresh ledger
        with pytest.raises(RunDirError, match="was replaced by another file"):
            await ledger.append(RowAdmitted(row="b", line=3))
        with pytest.raises(RunDirError):  # and every later write alike
            await ledger.append(RowAdmitted(row="c", line=4))
    finally:
        ledger.close()
    assert (tmp_path / "ledger.jsonl").read_text() == ""
