"""The one model of the v2 storyboard body (``contract.storyboard_body``, contract §6.3): every
documented rule, every offending field listed, unknown fields stripped; and ``validate`` / the
``run`` pre-flight applying it to storyboard rows before anything is sent."""

from __future__ import annotations

import copy
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.api.responses import error_detail
from orchestrator.cli.main import main
from orchestrator.contract.storyboard_body import check
from orchestrator.input.local_files import LocalFiles
from orchestrator.input.manifest import read_manifest
from orchestrator.run.flows import storyboard_v2

ROOT = Path(__file__).resolve().parents[1]
GOOD: dict[str, Any] = {
    "videoName": "Spring launch",
    "language": "en",
    "voiceOver": {"enabled": True, "aiVoices": [{"speaker": "Jenny", "speed": 100}]},
    "scenes": [
        {
            "story": "Spring is here.",
            "background": {"visualUrl": "https://cdn.example/a.png", "type": "image"},
            "elements": [{"type": "text", "text": "SPRING", "top": "10%", "width": "60%"}],
        }
    ],
}


def _with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    change(body)
    return body


def _scene(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["scenes"][0].update(fields)


def _top(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.update(fields)


def _voice(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["voiceOver"]["aiVoices"][0].update(fields)


# change to GOOD → (the field Pictory's 400 names, a phrase of its errors)
FAULTS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "story of 16,000 chars": (
        _scene(story="x" * 16_000),
        "scenes[0].story",
        "16,000 characters, Pictory allows 15,000",
    ),
    "aspectRatio 2:1": (_top(aspectRatio="2:1"), "aspectRatio", "use 1:1, 16:9, 9:16, 4:5"),
    "videoWidth alone": (_top(videoWidth=1920), "videoHeight", "needed with videoWidth"),
    "videoHeight alone": (_top(videoHeight=1080), "videoWidth", "needed with videoHeight"),
    "brandId and brandName": (_top(brandId="b1", brandName="Acme"), "brandName", "not both"),
    "empty scenes": (_top(scenes=[]), "scenes", "at least 1 scene"),
    "no videoName": (lambda b: b.pop("videoName"), "videoName", "required"),
    "language sv": (_top(language="sv"), "language", "'sv' is not one Pictory takes"),
    "webhook of 501 chars": (_top(webhook="h" * 501), "webhook", "501 characters"),
    "subtitle style id and name": (
        _top(subtitleStyleId="s", subtitleStyleName="Bold"),
        "subtitleStyleName",
        "not both",
    ),
    "avatar without voice": (
        lambda b: b.update(avatar={"avatarId": "a"}, voiceOver={"enabled": False}),
        "avatar",
        "voiceOver.enabled",
    ),
    "autoMusic and musicUrl": (
        _top(backgroundMusic={"autoMusic": True, "musicUrl": "https://m.example/a.mp3"}),
        "backgroundMusic.musicUrl",
        "not both",
    ),
    "11 music clips": (
        _top(backgroundMusic={"clips": [{"start": 0, "end": 1}] * 11}),
        "backgroundMusic.clips",
        "11 clips, Pictory allows at most 10",
    ),
    "speed 250": (_voice(speed=250), "voiceOver.aiVoices[0].speed", "50 to 200"),
    "aiVoices and externalVoice": (
        lambda b: b["voiceOver"].update(externalVoice={"voiceUrl": "https://v.example/a.mp3"}),
        "voiceOver.externalVoice",
        "not both",
    ),
    "stability 60.5%": (
        _voice(premiumVoiceSettings={"stability": "60.5%"}),
        "voiceOver.aiVoices[0].premiumVoiceSettings.stability",
        '"0%" to "100%"',
    ),
    "two content sources": (_scene(blogUrl="https://b.example"), "scenes[0]", "story and blogUrl"),
    "no content source": (
        lambda b: b.update(scenes=[{"createSceneOnNewLine": True}]),
        "scenes[0]",
        "no content",
    ),
    "prompt of 5,001 chars": (
        lambda b: b.update(scenes=[{"storyCoPilot": {"prompt": "p" * 5001, "duration": 30}}]),
        "scenes[0].storyCoPilot.prompt",
        "5,001 characters, Pictory allows 5,000",
    ),
    "co-pilot of 601 s": (
        lambda b: b.update(scenes=[{"storyCoPilot": {"prompt": "p", "duration": 601}}]),
        "scenes[0].storyCoPilot.duration",
        "1 to 600 seconds",
    ),
    "audioUrl without audioLanguage": (
        lambda b: b.update(scenes=[{"audioUrl": "https://a.example/a.mp3"}]),
        "scenes[0].audioLanguage",
        "required",
    ),
    "maxSubtitleLines 5": (_scene(maxSubtitleLines=5), "scenes[0].maxSubtitleLines", "1 to 4"),
    "21 elements": (
        _scene(elements=[{"type": "shape", "name": "circle"}] * 21),
        "scenes[0].elements",
        "21 elements, Pictory allows 1 to 20",
    ),
    "text element of 2,001 chars": (
        _scene(elements=[{"type": "text", "text": "t" * 2001}]),
        "scenes[0].elements[0].text",
        "2,001 characters, Pictory allows 2,000",
    ),
    "top 101%": (
        _scene(elements=[{"type": "shape", "name": "circle", "top": "101%"}]),
        "scenes[0].elements[0].top",
        '"0%" to "100%"',
    ),
}


def test_a_documented_body_passes_unchanged() -> None:
    """A body within every rule comes back as sent, with no problem."""
    assert check(GOOD) == (GOOD, [])


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_documented_rule_names_its_field(fault: str) -> None:
    """Each rule of §6.3 refuses a body that breaks it, naming the field as Pictory does, in
    words a marketer reads."""
    change, name, phrase = FAULTS[fault]
    clean, problems = check(_with(change))
    assert clean is None
    assert [p.name for p in problems] == [name]
    assert phrase in problems[0].text


def test_a_body_with_several_faults_lists_every_one() -> None:
    """Field rules and rules across fields, at every level, are all collected: one entry per
    field, in the order met."""
    body = _with(
        _top(aspectRatio="2:1", videoWidth=1920, brandId="b1", brandName="Acme", language="sv")
    )
    body["voiceOver"]["aiVoices"][0]["speed"] = 10
    body["scenes"][0].update(story="x" * 16_000, blogUrl="https://b.example")
    body["scenes"].append({"audioUrl": "https://a.example/a.mp3", "maxSubtitleLines": 0})
    _, problems = check(body)
    assert [p.name for p in problems] == [
        "aspectRatio",
        "language",
        "voiceOver.aiVoices[0].speed",
        "scenes[0].story",
        "scenes[1].maxSubtitleLines",
        "videoHeight",
        "brandName",
        "scenes[0]",
        "scenes[1].audioLanguage",
    ]


def test_unknown_fields_are_stripped_not_refused() -> None:
    """Unknown top-level and scene fields disappear (as Pictory strips them); nested objects and
    ``webhookInput`` are kept whole."""
    body = _with(lambda b: b.update(colour="red", webhookInput={"row": "a-1", "batch": 7}))
    body["scenes"][0]["sotry"] = "typo"
    body["scenes"][0]["background"]["extra"] = 1
    clean, problems = check(body)
    assert problems == [] and clean is not None
    assert "colour" not in clean and "sotry" not in clean["scenes"][0]
    assert clean["webhookInput"] == {"row": "a-1", "batch": 7}
    assert clean["scenes"][0]["background"]["extra"] == 1


def test_bodies_our_client_sends_pass() -> None:
    """Every storyboard row of the samples, and a template direct render, pass the model."""
    samples = (("storyboard/manifest.csv", "storyboard"), ("mixed/manifest.csv", "template"))
    for name, default_flow in samples:
        path = ROOT / "jobs" / name
        files = LocalFiles.for_manifest(path)
        for row in read_manifest(path).rows:
            if (row.flow or default_flow) == "storyboard":
                body = storyboard_v2.payload(row.variables, path, "row", files)
                assert check(body)[1] == [], (name, row.line)
    direct = {"videoName": "row-1", "templateId": "t-1", "variables": {"first_name": "Ann"}}
    assert check(direct) == (direct, [])


def _manifest(folder: Path, rows: list[list[str]]) -> Path:
    path = folder / "scripts.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "text_file", "video_name", "voice", "language"])
        writer.writerows(rows)
    return path


def _bad_rows(folder: Path) -> Path:
    (folder / "long.txt").write_text("Intro.\n\n" + "x" * 16_000, encoding="utf-8")
    return _manifest(
        folder,
        [
            ["ok", "Fine.", "", "", "", "en"],
            ["long", "", "long.txt", "", "", "en"],
            ["sv", "Hej.", "", "", "", "sv"],
            ["empty", "", "", "", "", "en"],
        ],
    )


def test_validate_names_line_column_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``orchestrator validate`` reports a storyboard row's body faults with its line, the
    column that fills the field and Pictory's rule; exit 2."""
    path = _bad_rows(tmp_path)
    assert main(["validate", str(path), "--flow", "storyboard"]) == 2
    out = capsys.readouterr().out
    assert (
        f"{path}:3: field 'text_file': story (paragraph 2): 16,000 characters, Pictory allows "
        "15,000 (shorten it, or split it with blank lines: each paragraph becomes a scene)"
    ) in out
    assert f"{path}:4: field 'language': 'sv' is not one Pictory takes: use ar, zh" in out
    assert f"{path}:5: field 'text': a storyboard row needs its script" in out
    assert ":2:" not in out and "Traceback" not in out


def test_run_refuses_such_rows_before_anything_is_sent(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ``run`` pre-flight applies the same rules: exit 2, the simulator saw no request."""
    sim = make_sim()
    api_env(sim)
    path = _bad_rows(tmp_path)
    args = ["run", str(path), "--flow", "storyboard", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "nothing was sent" in err and f"{path}:3: field 'text_file': story" in err
    sent = sim.stats()["requests"]
    assert sum(n for route, n in sent.items() if not route.startswith("GET /__sim__")) == 0


def test_the_client_keeps_every_field_of_a_400_in_the_message() -> None:
    """A v2 400 whose message does not name its fields gets them appended (a row's failure then
    says what to fix); a message that already names them is kept as it is."""
    generic = {
        "code": "INVALID_REQUEST_BODY",
        "message": "Validation failed",
        "fields": [
            {"name": "scenes[0].story", "errors": "16,000 characters, Pictory allows 15,000"},
            {"name": "aspectRatio", "errors": ["must be one of 1:1, 16:9", "is a string"]},
        ],
    }
    assert error_detail(generic) == (
        "INVALID_REQUEST_BODY",
        "Validation failed; scenes[0].story: 16,000 characters, Pictory allows 15,000; "
        "aspectRatio: must be one of 1:1, 16:9; is a string",
    )
    _, problems = check({"videoName": "x", "aspectRatio": "2:1", "scenes": [{"story": "a"}]})
    ours: dict[str, Any] = {"code": "INVALID_REQUEST_BODY", "message": "aspectRatio: '2:1'…"}
    ours["fields"] = [{"name": p.name, "errors": p.text} for p in problems]
    assert error_detail(ours) == ("INVALID_REQUEST_BODY", ours["message"])
