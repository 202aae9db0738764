"""A video-edit batch with highlights through the real CLI against the simulator, on Pictory's
documented shapes (pictory-api.md §5.1–5.3): each video is cut to its highlighted sentences (the
MP4 names the segments it kept) and has .srt, .vtt and .txt beside it, listed in the ledger."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME
from orchestrator.simulator import media
from orchestrator.simulator.transcripts import transcript_for

from .helpers import FAST_CONFIG, check_invariants, read_results

RECORDINGS = Path(__file__).resolve().parents[2] / "jobs" / "video-edit" / "recordings"
HIGHLIGHT_S = {"clip-0": 8.0, "clip-1": 12.0, "clip-2": 6.0, "clip-3": None}


def _batch(folder: Path) -> Path:
    manifest = folder / "edits.csv"
    with manifest.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "video", "highlights"])
        for i, (row, seconds) in enumerate(HIGHLIGHT_S.items()):
            shutil.copyfile(RECORDINGS / f"webinar-{i % 3 + 1}.mp4", folder / f"{row}.mp4")
            w.writerow([row, f"{row}.mp4", "" if seconds is None else seconds])
    return manifest


def _run_batch(folder: Path, sim: Any, api_env: Any) -> tuple[Path, list[str]]:
    """Run the batch of ``HIGHLIGHT_S`` to the end; its run dir and the command that ran it."""
    api_env(sim)
    config = folder / "c.toml"
    config.write_text(FAST_CONFIG)
    out = folder / "run"
    args = ["run", str(_batch(folder)), "--flow", "video-edit", "--out", str(out)]
    args += ["--config", str(config)]
    assert main(args) == 0
    return out, args


def _sentences(url: str) -> list[tuple[float, float, float, str]]:
    """Per sentence of the simulator's transcript of ``url``: first word's start, last spoken
    word's end, the pause's end, and the text."""
    found = []
    for sentence in transcript_for(url):
        spoken = [w for w in sentence["words"] if not w.get("is_pause")]
        text = " ".join(w["word"] for w in spoken)
        pause_end = sentence["words"][-1]["end_time"]
        found.append((spoken[0]["start_time"], spoken[-1]["end_time"], pause_end, text))
    return found


def _expected_cut(url: str, seconds: float | None) -> list[tuple[float, float]]:
    sentences = _sentences(url)
    if seconds is None:  # the whole video, cut at sentence starts
        starts = [0.0] + [s[0] for s in sentences[1:]]
        ends = [s[0] for s in sentences[1:]] + [sentences[-1][2]]
        return list(zip(starts, ends, strict=True))
    kept, total = [], 0.0
    for start, end, _, _ in sentences:  # whole sentences, in order, within the budget (§5.1)
        if total + end - start > seconds:
            break
        kept.append((start, end))
        total += end - start
    return kept


@pytest.mark.parametrize("form", ["url", "content", "none"])
def test_video_edit_with_highlights_cuts_each_video_and_writes_subtitles(
    form: str, tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """Every row done; each MP4 holds exactly its highlighted segments (whole video when no
    highlights); .srt/.vtt/.txt beside it from the render (as link or contents) or, when the
    render offers none, from the cut's words on the cut's clock; nothing rendered twice."""
    sim = make_sim(render_subtitle_form=form)
    out, args = _run_batch(tmp_path, sim, api_env)
    results = check_invariants(out, sim.stats(), len(HIGHLIGHT_S))
    assert {r["status"] for r in results} == {"done"}
    stats = sim.stats()
    assert stats["requests"]["POST /v2/transcription/highlights"] == 3
    assert "POST /v2/highlights" not in stats["requests"]
    events = [json.loads(line) for line in (out / LEDGER_NAME).read_text().splitlines()]
    uploaded = {e["row"]: e["url"] for e in events if e["e"] == "uploaded"}
    downloaded = {e["row"]: e for e in events if e["e"] == "downloaded"}
    for row, seconds in HIGHLIGHT_S.items():
        video = (out / "videos" / f"{row}.mp4").read_bytes()
        scenes = json.loads(video[len(media.clip_bytes()) + 8 :])["scenes"]
        assert {s["url"] for s in scenes} == {uploaded[row]}
        expected = _expected_cut(uploaded[row], seconds)
        assert expected and [(s["start"], s["end"]) for s in scenes] == expected
        names = [f"videos/{row}.{ext}" for ext in ("srt", "vtt", "txt")]
        assert sorted(downloaded[row]["extras"]) == sorted(names)
        listed = {r["id"]: r for r in read_results(out)}[row]["extra_files"].split(";")
        assert sorted(listed) == sorted(names)  # results.csv lists them too
        srt = (out / f"videos/{row}.srt").read_text()
        texts = [s[3] for s in _sentences(uploaded[row])][: len(expected)]
        assert re.findall(r"-->[^\n]*\n([^\n]+)", srt) == texts
        assert (out / f"videos/{row}.vtt").read_text().startswith("WEBVTT")
        assert (out / f"videos/{row}.txt").read_text() == "\n".join(texts) + "\n"
        if seconds is not None:  # a highlights cut's subtitles run on the cut's clock
            total = sum(e - s for s, e in expected)
            stamps = re.findall(r"(\d\d):(\d\d):(\d\d),(\d\d\d)", srt)
            assert stamps[0] == ("00", "00", "00", "000")
            h, m, s, ms = map(int, stamps[-1])
            assert abs(h * 3600 + m * 60 + s + ms / 1000 - total) < 0.01
    assert main(args) == 0  # again: nothing rendered twice
    assert sim.stats()["renders_started"] == len(HIGHLIGHT_S)


def test_highlights_that_keep_nothing_fail_the_row_before_any_render(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """Highlights shorter than every sentence mark no word: the row fails naming why, and no
    render (which would bill for an empty video) is sent."""
    sim = make_sim()
    api_env(sim)
    config = tmp_path / "c.toml"
    config.write_text(FAST_CONFIG)
    shutil.copyfile(RECORDINGS / "webinar-1.mp4", tmp_path / "a.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,video,highlights\nshort,a.mp4,0.1\n")
    out = tmp_path / "run"
    args = ["run", str(manifest), "--flow", "video-edit", "--out", str(out)]
    assert main([*args, "--config", str(config)]) == 1
    results = check_invariants(out, sim.stats(), 1)
    assert results[0]["status"] == "failed"
    assert "marked no highlighted words" in results[0]["error"]
    assert sim.stats()["renders_started"] == 0


def test_a_cleaned_transcription_is_made_again_not_failed(
    tmp_path: Path, make_sim: Any, api_env: Any
) -> None:
    """The run died right after a row's transcription job was recorded; meanwhile Pictory
    cleaned that job. The rerun sees ``cleaned`` (job lost), asks for a new transcription (it
    bills nothing) and finishes the row, instead of failing it for good."""
    sim = make_sim()
    out, args = _run_batch(tmp_path, sim, api_env)
    ledger = out / LEDGER_NAME
    events = [json.loads(line) for line in ledger.read_text().splitlines()]
    row = "clip-3"  # no highlights: one transcription job
    job = next(e["job"] for e in events if e["e"] == "aux_job" and e["row"] == row)
    cut = next(i for i, e in enumerate(events) if e["e"] == "aux_job" and e["row"] == row)
    kept = events[: cut + 1] + [
        e for e in events[cut + 1 :] if e.get("row") not in (row, None) and e["e"] != "run"
    ]
    ledger.write_text("".join(json.dumps(e) + "\n" for e in kept))
    (out / "videos" / f"{row}.mp4").unlink()
    transcriptions = sim.stats()["requests"]["POST /v2/transcription"]
    sim.clean_job(job)

    assert main(args) == 0
    assert sim.stats()["requests"]["POST /v2/transcription"] == transcriptions + 1
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    retry = [e for e in lines if e["e"] == "retry" and e["row"] == row]
    assert len(retry) == 1 and retry[0]["reason"].startswith("transcription job_lost")
    assert (out / "videos" / f"{row}.mp4").exists()
