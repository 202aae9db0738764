"""Storyboard rows that ask for AI visuals and avatars (``ai_visual``, ``avatar_id``): their
estimate and what the simulator charges agree (``contract.ai_credits``), ``--max-credits`` caps
them, and what cannot be sent is refused before anything is."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import FAST_CONFIG, read_results

EXACT = {"jitter_frac": 0.0, "video_duration_s": 30.0}
SCRIPT = "Spring is here.\n\nCome and see."
"""Two paragraphs: two scenes, each with its own AI visual."""


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the CLI at a simulator with an API key (the v2 storyboard route)."""

    def point(sim: Any) -> None:
        monkeypatch.setenv("PICTORY_API_BASE_URL", sim.base_url)
        monkeypatch.setenv("PICTORY_API_KEY", "pictai_test_key_1")
        for name in ("PICTORY_CLIENT_ID", "PICTORY_CLIENT_SECRET", "PICTORY_USER_ID"):
            monkeypatch.delenv(name, raising=False)

    return point


def _batch(folder: Path, rows: list[dict[str, str]]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "stories.csv"
    columns = ["id", "text", "voice", "ai_visual", "avatar_id"]
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({"id": f"s{i}", "text": SCRIPT, **row})
    config = folder / "c.toml"
    config.write_text(FAST_CONFIG)
    config.chmod(0o600)
    out = str(folder / "run")
    return ["run", str(manifest), "--flow", "storyboard", "--out", out, "--config", str(config)]


def test_ai_visual_rows_are_estimated_charged_and_capped_alike(
    tmp_path: Path, make_sim: Any, key_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Four rows of two scenes with a pixverse5.5 AI video each (5 s × 1.6 = 8 credits a
    scene): the estimate says 64 credits; ``--max-credits 40`` renders 2 rows (32 ≤ 40), each
    charged the 16 its estimate said; the summary says 32 credits used."""
    sim = make_sim(**EXACT)
    key_env(sim)
    args = _batch(tmp_path, [{"ai_visual": "pixverse5.5"}] * 4)
    assert main([*args, "--max-credits", "40"]) == 1
    captured = capsys.readouterr()
    assert "~64 AI credits (script length)" in captured.err
    assert "the next row would pass --max-credits 40" in captured.out
    assert "2 video(s) rendered: 1.0 video minutes, 32 AI credits used" in captured.out
    assert sim.stats()["renders_started"] == 2
    done = [r for r in read_results(tmp_path / "run") if r["status"] == "done"]
    assert [r["ai_credits"] for r in done] == ["16", "16"]


def test_an_avatar_is_charged_per_30_seconds_and_needs_a_voice(
    tmp_path: Path, make_sim: Any, key_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``avatar_id`` with a voice: 15 credits for a video of up to 30 s, estimated and charged
    alike; without a voice ``validate`` refuses the row, naming the column and what to do."""
    sim = make_sim(**EXACT)
    key_env(sim)
    args = _batch(tmp_path / "ok", [{"voice": "Brian", "avatar_id": "Annie_expressive12_public"}])
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "~15 AI credits (script length)" in captured.err
    assert "1 video(s) rendered: 0.5 video minutes, 15 AI credits used" in captured.out

    refused = _batch(tmp_path / "mute", [{"avatar_id": "Annie_expressive12_public"}])
    assert main(["validate", refused[1], "--flow", "storyboard"]) == 2
    out = capsys.readouterr().out
    assert "field 'avatar_id'" in out and "give the row a voice" in out


def test_an_unknown_model_or_the_v1_route_is_refused_before_anything_is_billed(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """An ``ai_visual`` Pictory does not list fails ``validate`` with the models it does; with
    client credentials (the v1 storyboard route, which publishes no AI visuals) the row fails
    with what to do and nothing is sent for it; ``--direct`` takes the v2 route and renders."""
    sim = make_sim(**EXACT)
    api_env(sim)
    unknown = _batch(tmp_path / "unknown", [{"ai_visual": "dall-e"}])
    assert main(["validate", unknown[1], "--flow", "storyboard"]) == 2
    assert "unknown AI model 'dall-e'" in capsys.readouterr().out

    args = _batch(tmp_path / "v1", [{"ai_visual": "flux-schnell"}])
    assert main(args) == 1
    (row,) = read_results(tmp_path / "v1" / "run")
    assert row["status"] == "failed"
    assert "ai_visual need Pictory's v2 storyboard route" in row["error"]
    assert "POST /v1/video/storyboard" not in sim.stats()["requests"]

    direct = _batch(tmp_path / "direct", [{"ai_visual": "flux-schnell"}])
    assert main([*direct, "--direct"]) == 0
    (row,) = read_results(tmp_path / "direct" / "run")
    assert (row["status"], row["ai_credits"]) == ("done", "1.2")
