"""Stock media: ``GET /v1/media/search`` results (contract §5.8) and the files they point at.

A search answers [doc][sample N ``story-board-with-visual-search``]::

    {"success": true, "data": {"page": 1, "searchResults": [{"assetId", "id", "keyword",
     "mediaType", "duration", "mediaDescription", "preview": {"jpg", "url"},
     "thumbnail": {"jpg", "url"}, "searchLibrary"}]}}

[choice]s (nothing public says): ``success: true`` (the doc example has none); results are a pure
function of the keyword, category and page, so the same search always finds the same assets;
``RESULTS_PER_PAGE`` per page, ``VIDEOS_PER_PAGE`` of them videos from ``story_blocks`` and the
rest images from ``getty``; ``MAX_PAGES`` pages, then an empty list. Result URLs point at
``/__stock__/{library}/{name}`` on the simulator, which serves the packaged clip for ``.mp4``
names and a small PNG for ``.jpg`` names (no auth, like a CDN).
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from orchestrator.simulator import media
from orchestrator.simulator.answers import dumps, invalid_body
from orchestrator.simulator.core import Simulator

STOCK_PREFIX = "/__stock__"
RESULTS_PER_PAGE = 8
VIDEOS_PER_PAGE = 6
MAX_PAGES = 3
VIDEO_LIBRARY = "story_blocks"
IMAGE_LIBRARY = "getty"
STOCK_VIDEO_DURATION_S = 15


def stock_url(sim: Simulator, seed: str, library: str = VIDEO_LIBRARY) -> str:
    """A stock video's URL for a scene without a background of its own ([choice])."""
    digest = hashlib.sha256(seed.encode()).hexdigest()[:12]
    return f"{sim.public_url}{STOCK_PREFIX}/{library}/{digest}_P480.mp4"


def music_url(sim: Simulator) -> str:
    """[choice] The background track a storyboard with ``autoBackgroundMusic`` gets."""
    return f"{sim.public_url}{STOCK_PREFIX}/music/soul-lifting.m4a"


def _result(sim: Simulator, keyword: str, asset_id: int, index: int) -> dict[str, Any]:
    video = index < VIDEOS_PER_PAGE
    library = VIDEO_LIBRARY if video else IMAGE_LIBRARY
    base = f"{sim.public_url}{STOCK_PREFIX}/{library}/{asset_id}"
    jpg = f"{base}_thumb.jpg"
    item: dict[str, Any] = {
        "assetId": asset_id,
        "id": asset_id,
        "keyword": keyword,
        "mediaType": "video" if video else "image",
        "mediaDescription": f"{keyword.capitalize()}, stock {'clip' if video else 'photo'} "
        f"{index + 1}",
        "preview": {"jpg": jpg, "url": f"{base}_P480.mp4" if video else f"{base}_preview.jpg"},
        "thumbnail": {"jpg": jpg, "url": jpg},
        "searchLibrary": library,
    }
    if video:
        item["duration"] = STOCK_VIDEO_DURATION_S
    return item


def search(sim: Simulator, query: dict[str, str]) -> dict[str, Any]:
    """The ``data`` of a search; 400 without a ``keyword``."""
    keyword = query.get("keyword", "").strip()
    if not keyword:
        raise invalid_body("query parameter 'keyword' is required, e.g. ?keyword=business")
    raw_page = query.get("page", "1")
    if not raw_page.isdigit() or int(raw_page) < 1:
        raise invalid_body("query parameter 'page' must be a whole number from 1")
    page = int(raw_page)
    results = []
    if page <= MAX_PAGES:
        seed = f"{keyword.lower()}\0{query.get('category', '')}\0{page}"
        digest = hashlib.sha256(seed.encode()).digest()
        for i in range(RESULTS_PER_PAGE):
            asset_id = 10_000_000 + int.from_bytes(digest[i * 3 : i * 3 + 3], "big")
            results.append(_result(sim, keyword, asset_id, i))
    return {"page": page, "searchResults": results}


def stock_file(library: str, name: str) -> tuple[bytes, str] | None:
    """``(body, content_type)`` of a stock file, or None."""
    if quote(library, safe="") != library:
        return None
    if name.endswith(".mp4"):
        return media.video_bytes(media.free_box(dumps({"stock": f"{library}/{name}"}))), "video/mp4"
    if name.endswith(".m4a"):
        return media.clip_bytes(), "audio/mp4"
    if name.endswith(".jpg"):
        return media.thumbnail_png(), "image/png"
    return None
