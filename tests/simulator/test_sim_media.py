"""The served videos: small, playable, distinct per job, and as the stats say."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from simkit import Api, MakeSim, ManualClock

from orchestrator.simulator import media

MAX_CLIP_BYTES = 100 * 1024


def test_base_clip_is_a_small_faststart_mp4() -> None:
    """The packaged clip is well under 100 KB with ``moov`` before ``mdat``."""
    clip = media.clip_bytes()
    assert len(clip) < MAX_CLIP_BYTES
    assert clip[4:8] == b"ftyp"
    assert clip.index(b"moov") < clip.index(b"mdat")


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
def test_job_video_with_its_box_is_playable(tmp_path: Path) -> None:
    """Clip + ``free`` box still probes as one H.264 video of about a second."""
    box = media.free_box(json.dumps({"job_id": "x", "variables": {"name": "Zoë"}}))
    path = tmp_path / "job.mp4"
    path.write_bytes(media.video_bytes(box))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path],
        capture_output=True,
        check=True,
        text=True,
    )
    info = json.loads(probe.stdout)
    assert probe.stderr == ""
    assert {s["codec_name"] for s in info["streams"]} >= {"h264"}
    assert 0.5 < float(info["format"]["duration"]) < 2.0


def test_digest_matches_the_bytes() -> None:
    """``video_digest`` (from the clip's hash state) equals hashing the whole video."""
    box = media.free_box('{"job_id":"y"}')
    data = media.video_bytes(box)
    digest = media.video_digest(box)
    assert digest.size == len(data)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=x-y", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    """Single byte ranges are honoured; anything else serves the whole body."""
    assert media.parse_range(header, 100) == expected


def test_parse_range_past_the_end_is_not_satisfiable() -> None:
    with pytest.raises(media.RangeNotSatisfiable):
        media.parse_range("bytes=100-", 100)


async def test_each_job_gets_distinct_bytes_matching_stats(
    make_sim: MakeSim, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Two renders serve different MP4s, each exactly as ``stats()["videos"]`` records."""
    sim = await make_sim(clock=clock)
    api = Api(session, sim)
    template_id = (await api.upload())["templateId"]
    previews = [await api.preview(template_id, {"customer_name": n}) for n in ("Ada", "Bob")]
    clock.advance(5)
    renders = [await api.render(p) for p in previews]
    assert sim.stats()["videos"] == {}, "nothing is finished yet"
    clock.advance(5)
    served = {}
    for render_id in renders:
        url = (await api.job(render_id)).body["data"]["videoURL"]
        async with session.get(url) as resp:
            served[render_id] = await resp.read()
    first, second = served.values()
    assert first != second
    assert b'"customer_name":"Ada"' in first and render_ids_in(first) == [renders[0]]
    videos = sim.stats()["videos"]
    for render_id, data in served.items():
        assert videos[render_id] == {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }


def render_ids_in(video: bytes) -> list[str]:
    """The job id carried by the trailing ``free`` box."""
    box_start = len(media.clip_bytes())
    assert video[box_start + 4 : box_start + 8] == b"free"
    payload = json.loads(video[box_start + 8 :])
    return [payload["job_id"]]
