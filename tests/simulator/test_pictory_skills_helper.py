"""Pictory's own text-to-video helper against ``orchestrator sim`` with its defaults (issue 27).

Pictory publishes a helper script for API-key accounts (``pictory-text-to-video/scripts/
pictory_api.py`` in ``pictoryai/pictory-claude-skills``, contract §6). Two ways to hold the
simulator to it:

- ``skillkit.SkillsDriver`` is ours: it makes the calls the helper makes, with its headers, and
  reads the answers as it does, against the simulator ``orchestrator sim`` serves with no flags
  (the CLI's own settings and app factory), on virtual time: the helper's 30-second poll
  interval advances a manual clock instead of sleeping. It fetches nothing, so it runs
  everywhere; its payloads (``skillkit.OUR_EXAMPLES``) are our own, one per published example.
- ``test_the_real_helper_runs_unchanged`` runs the real script, taken from the snapshot of the
  repository when one is on this machine, against ``orchestrator sim`` in a subprocess, for each
  payload of the snapshot's ``examples.md`` and each look-up command. Skipped in CI and where
  the snapshot is absent (tests/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from simkit import ManualClock
from skillkit import (
    BLOCKS_DIAGRAM,
    HELPER_INTERVAL_S,
    OUR_EXAMPLES,
    STACKED_DIAGRAM,
    HelperExit,
    SkillsDriver,
)

from orchestrator.simulator import RunningSimulator, SimSettings, running_simulator
from orchestrator.simulator.cli import add_parser, settings_from_args
from orchestrator.simulator.process import SimProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
SKILLS_SNAPSHOT = Path(
    os.environ.get(
        "PICTORY_SKILLS_SNAPSHOT",
        str(REPO_ROOT.parent / ".mirror" / "pictoryai+pictory-claude-skills" / "repo"),
    )
)
HELPER_PATH = "pictory-text-to-video/scripts/pictory_api.py"
EXAMPLES_PATH = "pictory-text-to-video/references/examples.md"


# --- fixtures ---------------------------------------------------------------------------------


def default_sim_settings() -> SimSettings:
    """The settings ``orchestrator sim`` builds with no flags (its own parser and builder)."""
    parser = argparse.ArgumentParser(prog="orchestrator")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return settings_from_args(parser.parse_args(["sim"]))


@pytest.fixture
async def default_sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    """``orchestrator sim``'s defaults, served by the app factory it uses, on a manual clock."""
    async with running_simulator(default_sim_settings(), clock=clock) as sim:
        yield sim


@pytest.fixture
def driver(
    default_sim: RunningSimulator, session: aiohttp.ClientSession, clock: ManualClock
) -> Callable[[str], SkillsDriver]:
    """``driver(key)``: a helper driver with its own ``pictai_`` key (its own account)."""
    return lambda key="pictai_skills_helper": SkillsDriver(
        session, default_sim.base_url, key, clock
    )


# --- tests ------------------------------------------------------------------------------------


def test_no_flag_defaults_are_the_demo_profile_with_legacy_v1_shapes() -> None:
    """``orchestrator sim`` with no flags is the demo profile: nothing is asked for by a flag."""
    settings = default_sim_settings()
    assert settings == SimSettings.for_profile("demo")
    assert settings.new_shapes is False


@pytest.mark.parametrize("name", sorted(OUR_EXAMPLES))
async def test_render_and_wait_completes_each_example(
    name: str, driver: Callable[[str], SkillsDriver], session: aiohttp.ClientSession
) -> None:
    """``render-and-wait`` on a payload like each published example ends ``completed`` with a
    ``videoURL`` that downloads as an MP4, after at least one in-progress heartbeat."""
    helper = driver(f"pictai_example_{name}")
    data = await helper.render_and_wait(OUR_EXAMPLES[name])
    assert data["status"] == "completed"
    assert helper.heartbeats and helper.heartbeats[0].startswith("in-progress")
    async with session.get(data["videoURL"]) as video:
        assert video.status == 200 and video.content_type == "video/mp4"
        assert (await video.content.read(12))[4:8] == b"ftyp"


async def test_poll_ends_on_a_v2_preview_and_on_its_render(
    driver: Callable[[str], SkillsDriver],
) -> None:
    """A v2 preview completes with ``status`` under the defaults (the helper waits for it), and
    ``poll`` on the render of that preview completes too."""
    helper = driver("pictai_poll")
    created = await helper.request("POST", "/v2/video/storyboard", body=STACKED_DIAGRAM)
    preview = await helper.poll(created["data"]["jobId"])
    assert preview["status"] == "completed" and "renderParams" in preview
    rendered = await helper.request("PUT", f"/v2/video/render/{created['data']['jobId']}", body={})
    render = await helper.poll(rendered["data"]["jobId"])
    assert render["status"] == "completed" and render["videoURL"]


async def test_v1_previews_keep_the_legacy_shape_under_the_defaults(
    default_sim: RunningSimulator, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """Pictory's legacy samples still see a finished v1 storyboard preview without ``status``."""
    headers = {"Authorization": "pictai_legacy"}
    story = {"videoName": "legacy", "scenes": [{"text": "One scene.", "voiceOver": True}]}
    base = default_sim.base_url
    async with session.post(f"{base}/v1/video/storyboard", json=story, headers=headers) as resp:
        job_id = (await resp.json())["jobId"]
    clock.advance(HELPER_INTERVAL_S)
    async with session.get(f"{base}/v1/jobs/{job_id}", headers=headers) as resp:
        data = (await resp.json())["data"]
    assert "renderParams" in data and "status" not in data


async def test_poll_exits_3_when_the_job_failed(
    session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    """A failed render makes the helper stop with its exit code 3, naming the error."""
    settings = default_sim_settings().model_copy(update={"fault_job_failed_p": 1.0})
    async with running_simulator(settings, clock=clock) as sim:
        helper = SkillsDriver(session, sim.base_url, "pictai_failing", clock)
        with pytest.raises(HelperExit) as failed:
            await helper.render_and_wait(BLOCKS_DIAGRAM)
    assert failed.value.code == 3 and "_FAILED" in str(failed.value)


async def test_voices_lists_tracks_and_filters_by_language_and_service(
    driver: Callable[[str], SkillsDriver],
) -> None:
    """``voices`` finds every documented field, and ``--language``/``--service`` narrow it."""
    helper = driver("pictai_voices")
    every = await helper.voices()
    assert len(every) > 5 and all(v["id"] and v["name"] and v["engine"] for v in every)
    english = await helper.voices(language="en")
    assert english and all(v["language"].startswith("en") for v in english)
    assert {"Martin", "Joanna"} <= {v["name"] for v in english}
    google_en = await helper.voices(language="en-GB", service="google")
    assert google_en and all(v["service"] == "google" for v in google_en)
    assert await helper.voices(language="xx") == []


async def test_music_searches_by_query_mood_and_purpose(
    driver: Callable[[str], SkillsDriver], session: aiohttp.ClientSession
) -> None:
    """``music`` with ``--query``, ``--mood`` and ``--purpose`` returns matching tracks whose
    ``audioUrl`` the simulator's CDN serves."""
    helper = driver("pictai_music")
    options = await helper.music_options()
    mood, purpose = options["moods"][0], options["purposes"][0]
    by_mood = await helper.music(mood=mood)
    assert by_mood and all(mood in t["moods"] for t in by_mood)
    by_purpose = await helper.music(purpose=purpose)
    assert by_purpose and all(purpose in t["purposes"] for t in by_purpose)
    by_query = await helper.music(query=by_mood[0]["title"].split()[-1])
    assert by_query and all(t["title"] and t["duration"] > 0 for t in by_query)
    assert await helper.music(query="no such tune anywhere") == []
    async with session.get(by_mood[0]["audioUrl"]) as audio:
        assert audio.status == 200 and audio.content_type.startswith("audio/")


async def test_music_options_are_bare_lists_of_strings(
    driver: Callable[[str], SkillsDriver],
) -> None:
    """``music-options`` prints moods, genres and purposes: bare lists of strings."""
    options = await driver("pictai_options").music_options()
    for values in options.values():
        assert isinstance(values, list) and values and all(isinstance(v, str) for v in values)


async def test_search_finds_stock_visuals(driver: Callable[[str], SkillsDriver]) -> None:
    """``search`` reads assetId, mediaType, duration, description, preview jpg and library."""
    found = await driver("pictai_search").search("mountain lake", category="Nature")
    assert found and {r["mediaType"] for r in found} == {"video", "image"}
    assert all(r["assetId"] and r["previewJpg"] and r["library"] for r in found)


# --- the real helper, when its snapshot is on this machine ----------------------------------


def _snapshot_file(path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(SKILLS_SNAPSHOT), "show", f"HEAD:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _published_examples() -> list[str]:
    """The JSON payloads of ``examples.md`` (its fenced ``json`` blocks), as text."""
    text = _snapshot_file(EXAMPLES_PATH)
    blocks = text.split("```json\n")[1:]
    return [block.split("\n```", 1)[0] for block in blocks]


REAL_HELPER_SKIP = pytest.mark.skipif(
    bool(os.environ.get("CI")) or not (SKILLS_SNAPSHOT / "HEAD").exists(),
    reason="runs Pictory's real helper from a local snapshot of pictoryai/pictory-claude-skills "
    "(absent here, or CI); tests/README.md",
)


@pytest.fixture(scope="module")
def sim_process() -> Iterator[str]:
    """``orchestrator sim`` in its own process, its base URL: no flags but a free port and
    compressed time (the real helper sleeps for real; ``--interval 0`` keeps it under the
    demo profile's 20 requests a second, one key per run)."""
    with SimProcess("--time-scale", "0.001") as sim:
        yield sim.base_url


@pytest.mark.slow
@REAL_HELPER_SKIP
def test_the_real_helper_runs_unchanged(sim_process: str, tmp_path: Path) -> None:
    """Pictory's ``pictory_api.py``, unchanged, exits 0 on every published example
    (``render-and-wait``), on ``poll`` of a preview and of a render, and on ``voices``,
    ``music``, ``music-options`` and ``search``."""
    script = tmp_path / "pictory_api.py"
    script.write_text(_snapshot_file(HELPER_PATH))
    examples = _published_examples()
    assert len(examples) >= 5
    runs = 0

    def helper(*args: str, key: str = "") -> subprocess.CompletedProcess[str]:
        nonlocal runs
        runs += 1  # a key of its own, so a rate-limit window of its own, unless one is given
        env = {
            **os.environ,
            "PICTORY_API_BASE_URL": sim_process,
            "PICTORY_API_KEY": key or f"pictai_real_helper_{runs}",
        }
        done = subprocess.run(
            [sys.executable, str(script), *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}"
        return done

    for i, example in enumerate(examples):
        payload = tmp_path / f"example-{i + 1}.json"
        payload.write_text(example)
        done = helper("render-and-wait", str(payload), "--interval", "0")
        assert "VIDEO_URL: " in done.stderr
    key = "pictai_real_helper_poll"
    render_id = helper("render", str(tmp_path / "example-1.json"), key=key).stdout.strip()
    preview_id = _create_preview(sim_process, key, json.loads(examples[0]))
    for job_id in (render_id, preview_id):
        polled = json.loads(helper("poll", job_id, "--interval", "0", key=key).stdout)
        assert polled["status"] == "completed"
    assert json.loads(helper("voices", "--language", "en", "--service", "aws").stdout)
    assert json.loads(helper("music", "--query", "horizon", "--mood", "Epic").stdout)
    assert "## moods" in helper("music-options").stdout
    assert json.loads(helper("search", "ocean waves").stdout)


def _create_preview(base_url: str, key: str, payload: dict[str, Any]) -> str:
    """``POST /v2/video/storyboard`` as the helper's reference describes (the helper itself has
    no preview command): the preview job's id."""
    request = urllib.request.Request(
        base_url + "/v2/video/storyboard",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Authorization": key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(json.loads(resp.read())["data"]["jobId"])
