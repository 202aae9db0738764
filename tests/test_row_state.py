"""RowStore: rows leave memory when released (or past a bound in replays) and come back intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrator.ledger import row_state
from orchestrator.ledger.file import LEDGER_NAME, FileLedger, replay
from orchestrator.ledger.records import Downloaded, Failed, RenderJob, Retry, RowAdmitted
from orchestrator.ledger.row_state import RowStore


def _done(store: RowStore, key: str) -> None:
    state = store.take(key)
    state.status = "done"
    state.render_job = f"job-{key}"


def test_a_released_row_leaves_memory_and_comes_back_intact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(row_state, "WRITE_BATCH", 2)
    store = RowStore()
    for key in ("a", "b", "c"):
        _done(store, key)
        store.release(key)
    assert store.in_memory == 1  # a and b were written to disk, c waits for its batch
    assert store["a"].render_job == "job-a"
    assert store.get("c") is not None
    assert store.get("nope") is None
    assert store.get("b") is not None
    assert len(store) == 3
    assert sorted(s.row for s in store.values()) == ["a", "b", "c"]


def test_statuses_are_those_of_values_without_decoding_stored_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``statuses()`` (the metrics' rows by state) gives every row's status once, as ``values``
    does: stored rows from their own column, a stored row taken again as it is now."""
    monkeypatch.setattr(row_state, "WRITE_BATCH", 2)
    store = RowStore()
    for key in ("a", "b", "c", "d"):
        _done(store, key)
        store.release(key)  # all stored
    store.take("e")  # pending, live only
    store.take("a").status = "failed"  # live again, and changed since it was stored
    monkeypatch.setattr(row_state, "_decode", lambda blob: pytest.fail("decoded a row"))
    assert sorted(store.statuses()) == ["done", "done", "done", "failed", "pending"]
    monkeypatch.undo()
    assert sorted(store.statuses()) == sorted(s.status for s in store.values())


def test_a_row_get_found_nowhere_is_taken_without_asking_the_database_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new row costs one database lookup (the run's ``get``), not two (``get`` then ``take``);
    once taken and stored, it is found again."""
    monkeypatch.setattr(row_state, "WRITE_BATCH", 1)
    store = RowStore()
    _done(store, "a")
    store.release("a")  # the database now exists
    lookups: list[str] = []
    load = store._load
    monkeypatch.setattr(store, "_load", lambda key: lookups.append(key) or load(key))
    assert store.get("new") is None
    fresh = store.take("new")
    assert lookups == ["new"]
    assert fresh.status == "pending"
    fresh.status = "done"
    store.release("new")
    assert store.get("new") is not None and store.get("new").status == "done"  # type: ignore[union-attr]


def test_get_of_a_stored_row_is_a_detached_copy_and_take_makes_it_live() -> None:
    store = RowStore()
    _done(store, "a")
    store.release("a")
    assert len(store) == 1  # counting writes the released row to disk first
    copy = store.get("a")
    assert copy is not None
    copy.status = "failed"
    assert store["a"].status == "done"  # changing a copy changes nothing
    live = store.take("a")
    live.status = "failed"
    assert store.get("a") is live
    assert len(store) == 1  # live and stored at once still counts once
    assert [s.status for s in store.values()] == ["failed"]
    store.release("a")
    assert store["a"].status == "failed"  # the later state replaced the stored one
    store.close()


async def test_replay_past_the_bound_keeps_few_rows_live_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(row_state, "SPILL_AT", 5)
    ledger = FileLedger.open(tmp_path)
    for i in range(12):
        await ledger.append(RowAdmitted(row=f"r{i}", line=i + 2, output=f"r{i}.mp4"))
        await ledger.append(RenderJob(row=f"r{i}", job=f"j{i}"))
    await ledger.append(Failed(row="r3", stage="render", kind="job_failed"))
    await ledger.append(Retry(row="r3", reason="again"))
    ledger.close()
    state = replay(tmp_path / LEDGER_NAME)
    assert state.rows.in_memory < 5
    assert len(state.rows) == 12
    assert state.rows["r11"].render_job == "j11"
    r3 = state.rows["r3"]
    assert (r3.status, r3.render_job, r3.attempts) == ("pending", None, 1)


async def test_a_run_releases_each_finished_row(tmp_path: Path) -> None:
    """The ledger's own state object after appends and a release still answers for the row."""
    ledger = FileLedger.open(tmp_path)
    await ledger.append(RowAdmitted(row="a", line=2, output="a.mp4"))
    await ledger.append(Downloaded(row="a", file="a.mp4", bytes=3, sha256="x"))
    ledger.state.rows.release("a")
    assert ledger.state.rows["a"].status == "done"
    await ledger.append(Retry(row="a", reason="test"))  # brings it back live
    assert ledger.state.rows.get("a") is ledger.state.row("a")
    assert ledger.state.rows["a"].status == "pending"
    ledger.close()


def test_a_closed_store_refuses_to_answer_rather_than_forget() -> None:
    store = RowStore()
    _done(store, "a")
    store.release("a")
    assert len(store) == 1
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.get("a")
