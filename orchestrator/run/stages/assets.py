"""What a run makes locally from each downloaded video, off the rows' way: the preview GIF.

The download stage hands each video that lands to ``AssetMaker.video_landed`` and goes on: the
row's slot is given back at once, so making a GIF never holds up the next row's render. The GIFs
are made one at a time in a worker thread of their own (``report.previews``; a 1080p video
takes some tens of milliseconds), in a task group that the run waits for before it writes
``results.csv``. A run stopped first (Ctrl-C) leaves the rest unmade: ``results.csv`` names a
GIF only once its file exists, and the report at the run's end makes the missing ones.
Whatever removes a local video (``--keep-local``) first awaits ``settled``.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc

from orchestrator.report.previews import GifSize, gif_name, preview_gif


class AssetMaker:
    """Makes the preview GIF of each video handed to it, in tasks of ``tg``."""

    def __init__(self, tg: anyio.abc.TaskGroup, run_dir: Path, size: GifSize) -> None:
        self._tg = tg
        self._run_dir = run_dir
        self._size = size
        self._limiter = anyio.CapacityLimiter(1)
        self._pending: dict[str, anyio.Event] = {}

    def video_landed(self, file: str) -> None:
        """``file`` (relative to the run directory) is downloaded: make its GIF, later."""
        self._pending[file] = anyio.Event()
        self._tg.start_soon(self._make, file)

    async def settled(self, file: str) -> None:
        """Wait until ``file``'s GIF is made (or failed): before anything removes the video."""
        event = self._pending.get(file)
        if event is not None:
            await event.wait()

    async def _make(self, file: str) -> None:
        video, gif = self._run_dir / file, self._run_dir / gif_name(file)
        try:
            await anyio.to_thread.run_sync(
                preview_gif, video, gif, self._size, limiter=self._limiter
            )
        finally:
            self._pending.pop(file).set()
