"""Row states by identity, in a footprint that stays flat however many rows the ledger holds.

A 100,000-row batch must not need 100,000 ``RowState`` objects in memory (about 1 KB each with
their job ids, URLs and hashes). ``RowStore`` keeps in memory only the rows something may hold a
reference to; the rest are pickled into a private temporary SQLite database, which SQLite keeps
within its small page cache and deletes when the store is closed. It is a cache of the ledger,
never a second source of truth: it is rebuilt by every replay and nothing reads it after a crash.

Which rows are in memory ("live"):

* ``take(key)`` makes a row live (creating it when new, loading it when stored). The ledger folds
  every event through ``take``, and the pipeline reads its row through it, so a row being worked
  on is always the one live object, and every event applies to it.
* ``release(key)``: the row's task has ended, nothing holds it any more; it may leave memory.
* ``spill_excess()``: replays hold no references, so past ``SPILL_AT`` live rows they all go.

``get(key)`` reads without making anything live: it returns the live object when there is one,
otherwise a detached copy loaded from disk (changing that copy changes nothing; change a row by
appending a ledger event).

A row that ``get`` looked for and did not find is usually taken next (the run admits a row it
has never seen, and the ledger folds its first event): that key is remembered as absent
(``ABSENT_KEPT`` at most) so ``take`` makes it without asking the database a second time.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

RowStatus = Literal["pending", "done", "failed", "ambiguous"]


@dataclass(slots=True)
class RowState:
    """Everything the ledger knows about one row."""

    row: str
    line: int | None = None
    output: str | None = None
    flow: str | None = None
    attempts: int = 0
    source_url: str | None = None
    aux_jobs: dict[str, str] | None = None
    preview_job: str | None = None
    preview_ready: bool = False
    render_intent: bool = False
    rendered_vars: str | None = None
    """Digest of the values the latest render was made from (``identity.variables_digest``)."""
    rendered_values: dict[str, str] | None = None
    """Those values themselves: results.csv shows them beside a video kept after an edit."""
    render_job: str | None = None
    video_url: str | None = None
    duration_s: float | None = None
    thumbnail: str | None = None
    share_url: str | None = None
    credits: float | None = None
    """What the finished render told beside its video (``records.RenderReady``)."""
    subtitles: dict[str, str] | None = None
    file: str | None = None
    extras: list[str] | None = None
    """Files written beside the video (a video-edit row's ``.srt``, ``.vtt``, ``.txt``)."""
    bytes: int | None = None
    sha256: str | None = None
    downloaded: bool = False
    """The video of the current attempt is in place (``records.Downloaded``); a row waiting for
    its delivery (``deliver_to``) or whose delivery failed runs only the stages after it."""
    deliver_to: str | None = None
    """Where the video is to be delivered (``--deliver``): the row is done once ``delivered``."""
    delivered_url: str | None = None
    delivered_key: str | None = None
    delivered_expires: float | None = None
    delivered_sha256: str | None = None
    """The delivered object (``records.Delivered``): its link, key, link expiry and the sha256
    the store verified."""
    status: RowStatus = "pending"
    fail_stage: str | None = None
    fail_kind: str | None = None
    fail_message: str | None = None
    fail_permanent: bool = False
    fail_code: str | None = None
    fail_api_message: str | None = None
    """Pictory's ``error_code`` and ``error_message`` of the latest failure, verbatim."""
    failed_at: float | None = None
    """When the latest failure was recorded (``--retry-failed`` retries failures older than its
    own record, once)."""
    output_override: str | None = None
    """The file name of a re-render after the row's values changed (``NAME.v2.mp4``...); kept
    across restarts so a resumed re-render never writes over the delivered video."""
    cleaned_jobs: list[str] | None = None
    """The jobs cleaned at Pictory after the download (``records.JobsCleaned``)."""
    local_removed: list[str] | None = None
    """Local copies removed after a verified delivery (``records.LocalRemoved``)."""

    forgotten: str | None = None
    """The day (``YYYY-MM-DD``) ``orchestrator forget`` erased the row's values
    (``records.Forgotten``): it is never rendered again, and a restart keeps this."""

    def made_from_other_values(self, variables: Mapping[str, str]) -> bool:
        """Whether a render was sent for this row with values other than ``variables`` (its
        manifest line was edited since)."""
        from orchestrator.input.identity import variables_digest  # keeps replays free of pydantic

        return self.rendered_vars is not None and self.rendered_vars != variables_digest(variables)

    def restart(self) -> None:
        """Forget the jobs of an earlier attempt (after a ``retry`` event)."""
        self.aux_jobs = None
        self.preview_job = None
        self.preview_ready = False
        self.render_intent = False
        self.rendered_vars = None
        self.rendered_values = None
        self.render_job = None
        self.video_url = None
        self.thumbnail = self.share_url = self.credits = None
        self.subtitles = None
        self.downloaded = False
        self.deliver_to = None
        self.cleaned_jobs = self.local_removed = None
        self.status = "pending"
        self.fail_stage = self.fail_kind = self.fail_message = None
        self.fail_code = self.fail_api_message = None
        self.fail_permanent = False
        self.failed_at = None


SPILL_AT = 2048
"""Live rows a replay may build up before it moves them all to disk."""
WRITE_BATCH = 256
"""Released rows are written to disk in batches of this many (one transaction each)."""
ABSENT_KEPT = 4096
"""Keys ``get`` found nowhere, remembered until taken; past this many they are forgotten."""


class RowStore:
    """A mapping of row identity → ``RowState``; see the module docstring."""

    def __init__(self) -> None:
        self._live: dict[str, RowState] = {}
        self._released: dict[str, RowState] = {}
        self._absent: set[str] = set()
        """Keys found nowhere since; only ``take`` (which makes them live) stores a row."""
        self._db: sqlite3.Connection | None = None

    # ---- making rows live and letting them go ---------------------------------------------

    def take(self, key: str) -> RowState:
        """The row's one live state object: created if new, brought back from disk if stored."""
        state = self._live.get(key)
        if state is None:
            if key in self._absent:
                self._absent.discard(key)
                state = RowState(row=key)
            else:
                state = self._released.pop(key, None) or self._load(key) or RowState(row=key)
            self._live[key] = state
        return state

    def release(self, key: str) -> None:
        """Nothing holds this row any more (its task ended): it may leave memory."""
        state = self._live.pop(key, None)
        if state is None:
            return
        self._released[key] = state
        if len(self._released) >= WRITE_BATCH:
            self._write_released()

    def spill_excess(self) -> None:
        """For replays, which hold no row references: past ``SPILL_AT`` live rows, store all."""
        if len(self._live) >= SPILL_AT:
            self._released.update(self._live)
            self._live.clear()
            self._write_released()

    # ---- reading ------------------------------------------------------------------------------

    def get(self, key: str) -> RowState | None:
        """The live state, else a detached copy from disk, else None (a row never seen)."""
        if key in self._absent:
            return None
        found = self._live.get(key) or self._released.get(key) or self._load(key)
        if found is None and self._db is not None:
            if len(self._absent) >= ABSENT_KEPT:
                self._absent.clear()
            self._absent.add(key)
        return found

    def __getitem__(self, key: str) -> RowState:
        state = self.get(key)
        if state is None:
            raise KeyError(key)
        return state

    @property
    def in_memory(self) -> int:
        """Row states held in memory (live, or released and not yet written)."""
        return len(self._live) + len(self._released)

    def values(self) -> Iterator[RowState]:
        """Every row once (live ones as themselves, stored ones as detached copies)."""
        self._write_released()
        yield from list(self._live.values())
        if self._db is None:
            return
        for key, blob in self._db.execute("SELECT key, state FROM rows"):
            if key not in self._live:
                yield _decode(blob)

    def statuses(self) -> Iterator[RowStatus]:
        """Every row's status once, as ``values`` would give them, read without decoding the
        stored rows (the metrics count rows by state at each scrape)."""
        self._write_released()
        for state in list(self._live.values()):
            yield state.status
        if self._db is None:
            return
        for key, status in self._db.execute("SELECT key, status FROM rows"):
            if key not in self._live:
                yield status

    def __len__(self) -> int:
        self._write_released()
        if self._db is None:
            return len(self._live)
        (stored,) = self._db.execute("SELECT count(*) FROM rows").fetchone()
        also_stored = sum(1 for key in self._live if self._stored(key))
        return int(stored) + len(self._live) - also_stored

    def close(self) -> None:
        """Drop the disk copy (SQLite deletes a private temporary database on close)."""
        if self._db is not None:
            self._db.close()  # kept: reading a closed store raises instead of answering "unknown"

    # ---- the disk side ------------------------------------------------------------------------

    def _write_released(self) -> None:
        if not self._released:
            return
        db = self._open()
        rows = [
            (key, st.status, pickle.dumps(st, pickle.HIGHEST_PROTOCOL))
            for key, st in self._released.items()
        ]
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO rows (key, status, state) VALUES (?, ?, ?)", rows)
        db.execute("COMMIT")
        self._released.clear()

    def _load(self, key: str) -> RowState | None:
        if self._db is None:
            return None
        found = self._db.execute("SELECT state FROM rows WHERE key = ?", (key,)).fetchone()
        return None if found is None else _decode(found[0])

    def _stored(self, key: str) -> bool:
        assert self._db is not None
        return self._db.execute("SELECT 1 FROM rows WHERE key = ?", (key,)).fetchone() is not None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            # "" = a private temporary database, deleted on close. One connection, used only by
            # the thread that happens to call (the event loop's, or a replay's worker thread).
            db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute(
                "CREATE TABLE rows (key TEXT PRIMARY KEY, status TEXT, state BLOB) WITHOUT ROWID"
            )
            self._db = db
        return self._db


def _decode(blob: bytes) -> RowState:
    state = pickle.loads(blob)  # our own bytes, written by this process
    assert isinstance(state, RowState)
    return state
