"""API-key accounts through the real CLI (contract §5.6): with ``PICTORY_API_KEY`` every video is
created on the v2 routes, with client credentials on the v1 routes, against a simulator that
refuses a key on the v1 video routes (``strict_credential_routes``), with no duplicate render."""

from __future__ import annotations

import csv
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import FAST_CONFIG, check_invariants, read_results, run_args, write_batch

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ROOT / "jobs" / "video-edit" / "recordings"
API_KEY = "pictai_e2e_0123456789"
ROWS = 4
V1_VIDEO_ROUTES = {
    "POST /v1/video/from-template",
    "POST /v1/video/storyboard",
    "PUT /v1/video/render/{id}",
    "POST /v1/video/render",
}
V2_VIDEO_ROUTES = {
    "POST /v2/video/storyboard",
    "POST /v2/video/storyboard/render",
    "PUT /v2/video/render/{id}",
    "POST /v2/video/render",
}


def _key_env(monkeypatch: pytest.MonkeyPatch, sim: Any) -> None:
    """Point the CLI at ``sim`` with an API key only, as a user of a key account would."""
    monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
    monkeypatch.setenv("PICTORY_API_KEY", API_KEY)
    for name in ("PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET", "PICTORY_USER_ID"):
        monkeypatch.delenv(name, raising=False)


def _storyboard_args(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "stories.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "video_name", "voice", "style"])
        for i in range(ROWS):
            voice, style = ("Jenny", "Bold") if i % 2 else ("", "")
            w.writerow([f"story-{i}", f"Script {i}. Two sentences.\n\nMore.", "", voice, style])
    config = folder / "c.toml"
    config.write_text(FAST_CONFIG)
    out = str(folder / "run")
    return ["run", str(manifest), "--flow", "storyboard", "--out", out, "--config", str(config)]


def _video_routes(stats: dict[str, Any]) -> set[str]:
    return set(stats["requests"]) & (V1_VIDEO_ROUTES | V2_VIDEO_ROUTES)


def test_template_batch_with_an_api_key_uses_v2_routes_only(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key account, strict simulator: every template row previews on POST /v2/video/storyboard
    and renders on PUT /v2/video/render/{id}, once each; no token request, no v1 video route."""
    sim = make_sim(strict_credential_routes=True)
    _key_env(monkeypatch, sim)
    batch = write_batch(tmp_path, ROWS)
    assert main(run_args(batch)) == 0
    stats = sim.stats()
    results = check_invariants(batch["out"], stats, ROWS)
    assert {r["status"] for r in results} == {"done"}
    assert _video_routes(stats) == {"POST /v2/video/storyboard", "PUT /v2/video/render/{id}"}
    assert stats["requests"]["POST /v2/video/storyboard"] == ROWS
    assert stats["requests"]["PUT /v2/video/render/{id}"] == ROWS
    assert "POST /v1/oauth2/token" not in stats["requests"]
    assert stats["requests"]["POST /v1/templates"] == 1
    assert stats["renders_started"] == ROWS and stats["duplicate_renders"] == 0
    assert main(run_args(batch)) == 0  # again: everything done, nothing rendered twice
    assert sim.stats()["renders_started"] == ROWS


def test_a_key_refused_in_passing_costs_retries_not_the_run(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A simulator that answers the account's valid key 401 on one request in ten, in passing
    (``fault_key_refused_p``): the key was answered before, so the refused calls are sent
    again (a 401 started no job) and the run goes on: every row done, nothing rendered twice,
    exit 0. (A key refused before any answer stops the run: ``e2e/test_credentials.py``.)"""
    sim = make_sim(fault_key_refused_p=0.1, seed=2)
    _key_env(monkeypatch, sim)
    batch = write_batch(tmp_path, ROWS * 3)
    assert main(run_args(batch)) == 0
    stats = sim.stats()
    assert stats["faults"].get("key_refused", 0) > 0, "the fault never fired"
    results = check_invariants(batch["out"], stats, ROWS * 3)
    assert {r["status"] for r in results} == {"done"}
    assert stats["duplicate_renders"] == 0


def test_storyboard_batch_with_an_api_key_uses_v2_routes_only(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key account, strict simulator: storyboard rows go through the v2 storyboard route and
    the v2 render, every row done, no duplicate render."""
    sim = make_sim(strict_credential_routes=True)
    _key_env(monkeypatch, sim)
    args = _storyboard_args(tmp_path)
    assert main(args) == 0
    stats = sim.stats()
    results = check_invariants(tmp_path / "run", stats, ROWS)
    assert {r["status"] for r in results} == {"done"}
    assert _video_routes(stats) == {"POST /v2/video/storyboard", "PUT /v2/video/render/{id}"}
    assert stats["requests"]["POST /v2/video/storyboard"] == ROWS
    assert stats["duplicate_renders"] == 0


@pytest.mark.parametrize("flow", ["template", "storyboard"])
def test_client_credentials_keep_the_v1_routes(
    flow: str, tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """Client credentials against the same strict simulator: the v1 routes, nothing on v2."""
    sim = make_sim(strict_credential_routes=True)
    api_env(sim)
    if flow == "template":
        batch = write_batch(tmp_path, ROWS)
        args, out = run_args(batch), batch["out"]
        created = "POST /v1/video/from-template"
    else:
        args, out = _storyboard_args(tmp_path), tmp_path / "run"
        created = "POST /v1/video/storyboard"
    assert main(args) == 0
    stats = sim.stats()
    results = check_invariants(out, stats, ROWS)
    assert {r["status"] for r in results} == {"done"}
    assert _video_routes(stats) == {created, "PUT /v1/video/render/{id}"}
    assert stats["requests"][created] == ROWS


def test_strict_simulator_refuses_a_key_on_v1_so_the_proof_has_teeth(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strict simulator does refuse a key on v1 (401): the tests above would fail if the
    client sent a key's videos to v1."""
    sim = make_sim(strict_credential_routes=True)
    request = urllib.request.Request(
        sim.base_url + "/v1/video/from-template",
        data=b'{"templateId": "t", "variables": {}}',
        headers={"Authorization": API_KEY, "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 401
    info.value.close()


def test_video_edit_batch_with_an_api_key_renders_on_v2(
    tmp_path: Path, make_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key account, strict simulator: video-edit rows render their renderParams body on
    POST /v2/video/render (transcription is v2 for both kinds), no v1 video route."""
    sim = make_sim(strict_credential_routes=True)
    _key_env(monkeypatch, sim)
    manifest = tmp_path / "edits.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "video", "language", "highlights"])
        for i in range(2):
            local = tmp_path / f"rec-{i}.mp4"
            shutil.copyfile(RECORDINGS / f"webinar-{i + 1}.mp4", local)
            w.writerow([f"edit-{i}", local.name, "en", ""])
    config = tmp_path / "c.toml"
    config.write_text(FAST_CONFIG)
    out = tmp_path / "run"
    args = ["run", str(manifest), "--flow", "video-edit", "--out", str(out)]
    assert main([*args, "--config", str(config)]) == 0
    stats = sim.stats()
    check_invariants(out, stats, 2)
    assert _video_routes(stats) == {"POST /v2/video/render"}
    assert stats["requests"]["POST /v2/video/render"] == 2


def test_simulate_switch_runs_with_an_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--simulate honours PICTORY_API_KEY (the key comes first in ``load_credentials``): a key
    account's batch runs against the embedded simulator, every row done."""
    for name in ("PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET", "PICTORY_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PICTORY_API_KEY", API_KEY)
    batch = write_batch(tmp_path, 2)
    assert main(run_args(batch, "--simulate=test")) == 0
    assert {r["status"] for r in read_results(batch["out"])} == {"done"}
