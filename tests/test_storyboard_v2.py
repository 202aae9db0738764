"""The v2 storyboard body of a storyboard row (``storyboard_v2``, contract §5.6, §5.9)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.input.local_files import LocalFiles
from orchestrator.run.flows import storyboard_v2


def _files(folder: Path) -> LocalFiles:
    return LocalFiles.for_manifest(folder / "m.csv")


def test_row_becomes_v2_scenes_with_story_voice_and_style(tmp_path: Path) -> None:
    """One ``story`` scene per paragraph, split at sentence ends; the voice as a top-level
    ``voiceOver.aiVoices`` speaker; ``style`` as ``subtitleStyleName``; no v1 keys."""
    fields = {
        "text": "First one. Second.\r\n\r\nNext paragraph.",
        "voice": "Jenny",
        "style": "Bold",
        "language": "de",
        "video_name": "",
    }
    body = storyboard_v2.payload(fields, tmp_path / "m.csv", "row-7", _files(tmp_path))
    assert body == {
        "videoName": "row-7",
        "language": "de",
        "voiceOver": {"enabled": True, "aiVoices": [{"speaker": "Jenny", "speed": 100}]},
        "scenes": [
            {
                "story": "First one. Second.",
                "createSceneOnNewLine": False,
                "createSceneOnEndOfSentence": True,
            },
            {
                "story": "Next paragraph.",
                "createSceneOnNewLine": False,
                "createSceneOnEndOfSentence": True,
            },
        ],
        "subtitleStyleName": "Bold",
    }


def test_script_from_a_file_without_voice_is_silent(tmp_path: Path) -> None:
    """``text_file`` is read beside the manifest; no ``voice`` sends ``voiceOver.enabled`` false
    and the default language."""
    (tmp_path / "s.txt").write_text("Only paragraph.\n", encoding="utf-8")
    fields = {"text_file": "s.txt", "video_name": "Named"}
    body = storyboard_v2.payload(fields, tmp_path / "m.csv", "row-1", _files(tmp_path))
    assert body["videoName"] == "Named" and body["language"] == "en"
    assert body["voiceOver"] == {"enabled": False}
    assert [s["story"] for s in body["scenes"]] == ["Only paragraph."]
    assert "subtitleStyleName" not in body
