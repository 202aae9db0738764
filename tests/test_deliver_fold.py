"""How the ledger folds a delivery: a row downloaded for delivery is done only once delivered;
a failed delivery keeps its download; a retry forgets both."""

from __future__ import annotations

from orchestrator.ledger.protocol import LedgerState
from orchestrator.ledger.records import Delivered, Downloaded, Failed, Retry


def _downloaded(deliver: str | None) -> Downloaded:
    return Downloaded(row="a", file="videos/a.mp4", bytes=3, sha256="s", deliver=deliver)


def test_a_row_downloaded_for_delivery_is_done_only_once_delivered() -> None:
    """downloaded + deliver → pending (its video in place); delivered → done, with its link."""
    state = LedgerState()
    state.apply(_downloaded("s3://b/p/"))
    row = state.rows["a"]
    assert (row.status, row.downloaded, row.deliver_to) == ("pending", True, "s3://b/p/")
    state.apply(
        Delivered(
            row="a",
            destination="s3://b/p/",
            key="p/a.mp4",
            url="u",
            bytes=3,
            sha256="s",
            expires=9.0,
        )
    )
    row = state.rows["a"]
    assert (row.status, row.delivered_url, row.delivered_expires) == ("done", "u", 9.0)
    assert row.delivered_sha256 == "s" and row.delivered_key == "p/a.mp4"


def test_without_delivery_a_download_is_done_as_before() -> None:
    state = LedgerState()
    state.apply(_downloaded(None))
    assert state.rows["a"].status == "done" and state.rows["a"].delivered_url is None


def test_a_failed_delivery_keeps_the_download_and_a_retry_forgets_it() -> None:
    """A failure at the deliver stage leaves the video recorded (only the upload is redone);
    a retry (a new render) forgets that the video was in place."""
    state = LedgerState()
    state.apply(_downloaded("s3://b/p/"))
    state.apply(Failed(row="a", stage="deliver", kind="delivery_refused", message="no bucket"))
    row = state.rows["a"]
    assert (row.status, row.downloaded, row.deliver_to) == ("failed", True, "s3://b/p/")
    state.apply(Retry(row="a", reason="values changed"))
    row = state.rows["a"]
    assert (row.status, row.downloaded, row.deliver_to) == ("pending", False, None)
