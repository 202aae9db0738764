"""The stage after download: the video to its ``--deliver`` destination, once (docs/delivery.md).

A row downloaded while delivery is on is recorded with ``downloaded`` + ``deliver`` (the
destination's URL) and is not done until ``delivered``. So a crash between the download and
the upload leaves it pending with its video in place: the next run runs only this stage for it
(``pipeline``), uploads once, and never renders or downloads again. An upload is verified
(``storage``) and retried on transient errors with the run's transfer policy; a refusal (no
such bucket, access denied) fails the row's delivery, not permanently: fix the destination and
run again, only the upload is redone.

Where a row goes: the destination this run was given, else the one its ``downloaded`` record
names (a resume that was not told ``--deliver`` again still delivers what was meant to go).
The object's key is the destination's prefix + the row's output name (``row.output_name``).
"""

from __future__ import annotations

from orchestrator.api.retry import call_with_retry
from orchestrator.errors import DeliveryRefusedError
from orchestrator.ledger.records import Delivered
from orchestrator.run.stages.base import RowJob, Services
from orchestrator.storage.objects import Stored


async def deliver(row: RowJob, svc: Services) -> None:
    """Upload the row's video to its destination and record ``delivered``."""
    state = svc.state(row)
    if state.delivered_sha256 is not None or not state.downloaded or state.file is None:
        return  # delivered already, or nothing to deliver
    destination = await svc.destinations.get(state.deliver_to)
    if destination is None:
        return
    path = svc.videos_dir.parent / state.file
    if not path.exists():
        raise DeliveryRefusedError(
            f"{path}: the downloaded video is gone, so it cannot be delivered; put it back "
            "there and run again"
        )
    key = state.file.removeprefix(f"{svc.videos_dir.name}/")  # the row's output name
    started_s = svc.clock.now()

    sha256 = state.sha256

    async def attempt() -> Stored:
        return await destination.put(path, key, sha256=sha256)

    async with svc.download_slots:
        stored = await call_with_retry(
            attempt, policy=svc.transfer_policy, clock=svc.clock, rng=svc.rng
        )
    await svc.ledger.append(
        Delivered(
            row=row.row_id,
            destination=destination.url,
            key=stored.key,
            url=stored.url,
            bytes=stored.bytes,
            sha256=stored.sha256,
            expires=stored.expires,
        )
    )
    svc.sink.emit(
        "row_delivered",
        row=row.row_id,
        key=stored.key,
        bytes=stored.bytes,
        deliver_s=round(svc.clock.now() - started_s, 3),
    )
