"""The one model of the body of ``POST /v2/video/storyboard`` and ``…/storyboard/render``.

Source: contract §6.3 (``../shared/pictory-api.md``), which records Pictory's own reference page
``pictory-text-to-video/references/request-schema.md`` in ``pictoryai/pictory-claude-skills``
(cited below as ``rs:LINE``). Pictory validates the body and answers a violation with 400
``{"code": "INVALID_REQUEST_BODY", "message", "fields": [{"name", "errors"}]}`` (§5.9, §6.3);
the simulator answers exactly that from ``check``, and ``validate`` runs the same ``check`` on
the body a manifest row would send, so a row that would be refused is refused before anything
leaves.

``check(body)`` returns the body with unknown fields stripped (Pictory strips them, rs:4, rs:43)
and *every* problem found, one ``FieldProblem`` per field, named as Pictory names it
(``scenes[0].story``, ``voiceOver.aiVoices[1].speed``) with messages a marketer reads
("15,342 characters, Pictory allows 15,000").

Two kinds of rule: the field rules live on the pydantic models (a length, a range, a list of
values); the rules across fields (one content source per scene, width with height, exclusive
pairs) and the list lengths are in ``_cross_field_rules``, which reads the raw body, so a body
with several faults reports all of them (a model's own validators would stop at its first
failing field, and a list's length would be checked only once its items passed).
[choice] The service's messages are unpublished: ours are our own words. ``fields[].errors`` is
one string (Pictory's example, S2 api-endpoints.md), several errors of a field joined by "; ".

[choice] What is stripped: unknown fields of the top level and of each scene, whose fields
rs:10-31 and rs:52-76, rs:159-161 list whole. The nested objects (``background``, ``voiceOver``,
``elements[]``, fonts, logo, avatar...) are kept whole, their checked fields checked: the page
lists their fields by example, and stripping a field it forgot would change the video.
[choice] ``videoName`` is required on both routes: rs:10 documents the render body, and the
docs' "Create Storyboard Preview" page marks it required on the preview too.
[choice] ``autoMusic`` and ``musicUrl`` exclude each other when ``autoMusic`` is true (rs:304
"autoMusic and musicUrl are exclusive"; ``autoMusic: false`` beside a URL asks for nothing twice).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

MAX_STORY_CHARS = 15_000  # rs:53 "max 15,000 chars"
MAX_TEXT_ELEMENT_CHARS = 2_000  # rs:178 "required, max 2000 chars"
MAX_PROMPT_CHARS = 5_000  # rs:84 "required, max 5000"
MAX_WEBHOOK_CHARS = 500  # rs:16 "max 500 chars"
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:5")  # rs:13
LANGUAGES = (  # rs:378 "Script language"
    *("ar", "zh", "nl", "en", "fr", "de", "hi", "id", "it", "ja"),
    *("ko", "mr", "pl", "pt", "ru", "es", "ta", "tr", "ur", "vi"),
)
CONTENT_SOURCES = ("story", "storyCoPilot", "blogUrl", "pptUrl", "audioUrl", "videoUrl")  # rs:47
BACKGROUND_VISUALS = ("visualUrl", "color", "aiVisual", "searchFilter")  # rs:95-96
VISUAL_PREFERENCES = ("prefer-stock", "prefer-user-library", "stock-only", "user-library-only")


@dataclass(frozen=True)
class FieldProblem:
    """One field the body gets wrong, as Pictory's 400 names it: ``{"name", "errors"}``."""

    name: str
    errors: tuple[str, ...]

    @property
    def text(self) -> str:
        """The errors as one string, as Pictory's ``fields[].errors`` carries them [S2]."""
        return "; ".join(self.errors)

    def __str__(self) -> str:
        return f"{self.name}: {self.text}"


def _refuse(message: str) -> PydanticCustomError:
    return PydanticCustomError("contract", message)


def _max_chars(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > limit:
            raise _refuse(f"{len(value):,} characters, Pictory allows {limit:,}")
        return value

    return check


def _between(low: float, high: float, unit: str = "") -> Callable[[float], float]:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise _refuse(f"{value:g}{unit}, Pictory allows {low:g} to {high:g}{unit}")
        return value

    return check


def _one_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise _refuse(f"{value!r} is not one Pictory takes: use {', '.join(allowed)}")
        return value

    return check


_PERCENT = re.compile(r"(\d{1,3})%")


def _percent(value: str) -> str:
    """rs:330 "Percentages: strings "0%" to "100%" (integers only, no decimals)"."""
    found = _PERCENT.fullmatch(value)
    if found is None or int(found.group(1)) > 100:
        raise _refuse(f'{value!r} is not a percentage Pictory takes: a whole "0%" to "100%"')
    return value


Percent = Annotated[str, AfterValidator(_percent)]


class _Kept(BaseModel):
    """A nested object: its checked fields checked, every other field kept as sent."""

    model_config = ConfigDict(extra="allow")


class FontStyle(_Kept):  # rs:233-258, used by subtitleStyle and text elements' style
    shadowWidth: Percent | None = None
    paragraphWidth: Percent | None = None


class PremiumVoiceSettings(_Kept):  # rs:276-280
    stability: Percent | None = None
    similarityBoost: Percent | None = None
    style: Percent | None = None


class AiVoice(_Kept):  # rs:272-281
    speed: Annotated[int, AfterValidator(_between(50, 200))] | None = None  # rs:274 "50-200"
    premiumVoiceSettings: PremiumVoiceSettings | None = None


class VoiceOver(_Kept):  # rs:269-284
    enabled: bool | None = None
    aiVoices: list[AiVoice] | None = None


class BackgroundMusic(_Kept):  # rs:300-307
    autoMusic: bool | None = None
    musicUrl: str | None = None
    clips: list[Any] | None = None  # rs:306 "max 10": _count_rules


class StoryCoPilot(_Kept):  # rs:82-90
    prompt: Annotated[str, AfterValidator(_max_chars(MAX_PROMPT_CHARS))]  # rs:84
    duration: Annotated[int, AfterValidator(_between(1, 600, " seconds"))] | None = None  # rs:86


class Element(_Kept):  # rs:163-231
    text: Annotated[str, AfterValidator(_max_chars(MAX_TEXT_ELEMENT_CHARS))] | None = None
    style: FontStyle | None = None
    top: Percent | None = None  # rs:169-170
    left: Percent | None = None
    width: Percent | None = None  # rs:171


class Placed(_Kept):  # rs:318-324 logo and avatar
    width: Percent | None = None
    borderRadius: Percent | None = None


class Scene(BaseModel):  # rs:51-76, rs:79-91, rs:159-161; unknown fields stripped (rs:43)
    model_config = ConfigDict(extra="ignore")

    story: Annotated[str, AfterValidator(_max_chars(MAX_STORY_CHARS))] | None = None  # rs:53
    storyCoPilot: StoryCoPilot | None = None
    blogUrl: Any = None
    pptUrl: Any = None
    audioUrl: Any = None
    videoUrl: Any = None
    audioLanguage: Any = None  # rs:75
    transcript: Any = None
    mediaRepurposeSettings: Any = None
    caption: Any = None  # rs:74
    isSSMLStory: Any = None
    createSceneOnNewLine: Any = None
    createSceneOnEndOfSentence: Any = None
    maxSubtitleLines: Annotated[int, AfterValidator(_between(1, 4))] | None = None  # rs:57
    highlightKeywords: Any = None
    hideSubtitles: Any = None
    minimumDuration: Any = None
    endPauseDuration: Any = None
    sceneTransition: Any = None
    subtitleStyle: FontStyle | None = None
    background: dict[str, Any] | None = None  # rs:93-141, kept whole
    backgroundBrolls: Any = None  # rs:159-161
    backgroundCorpus: Any = None
    voiceOver: VoiceOver | None = None  # rs:67, scene-level override
    backgroundMusic: Any = None  # rs:68 "{enabled}" only
    avatar: Placed | None = None  # rs:323
    elements: list[Element] | None = None  # rs:69, rs:165 "1-20 per scene": _count_rules


class StoryboardBody(BaseModel):  # rs:8-31; unknown fields stripped (rs:4, rs:43)
    model_config = ConfigDict(extra="ignore")

    videoName: Any = None  # rs:10; required: _cross_field_rules
    videoWidth: int | None = None  # rs:11
    videoHeight: int | None = None
    aspectRatio: Annotated[str, AfterValidator(_one_of(ASPECT_RATIOS))] | None = None  # rs:13
    language: Annotated[str, AfterValidator(_one_of(LANGUAGES))] | None = None  # rs:14, rs:378
    saveProject: Any = None
    webhook: Annotated[str, AfterValidator(_max_chars(MAX_WEBHOOK_CHARS))] | None = None
    webhookInput: dict[str, Any] | None = None  # rs:17, any JSON object (§6.3)
    backgroundMusic: BackgroundMusic | None = None
    voiceOver: VoiceOver | None = None
    logo: Placed | None = None
    avatar: Placed | None = None
    subtitleStyle: FontStyle | None = None
    scenes: list[Scene] | None = None  # rs:23; at least one: _cross_field_rules
    templateId: Any = None  # rs:27
    variables: dict[str, Any] | None = None
    smartLayoutName: Any = None  # rs:28
    smartLayoutId: Any = None
    brandId: Any = None
    brandName: Any = None
    subtitleStyleId: Any = None  # rs:41
    subtitleStyleName: Any = None
    visualLibraryId: Any = None  # rs:29-30
    visualSelectionPreference: (
        Annotated[str, AfterValidator(_one_of(VISUAL_PREFERENCES))] | None
    ) = None
    destinations: Any = None  # rs:30-31
    awsConnectionId: Any = None
    vimeoConnectionId: Any = None
    projectMetadata: Any = None
    storyboardVersion: Any = None  # rs:33


_TYPE_WORDS = {
    "string": "should be text",
    "int": "should be a whole number",
    "float": "should be a number",
    "bool": "should be true or false",
    "dict": "should be an object {…}",
    "model": "should be an object {…}",
    "list": "should be a list […]",
}


def _message(error: Mapping[str, Any]) -> str:
    kind: str = error["type"]
    if kind == "contract":
        return str(error["msg"])
    if kind == "missing":
        return "required"
    for prefix, words in _TYPE_WORDS.items():
        if kind.startswith(prefix):
            return words
    return str(error["msg"])


def field_name(location: tuple[str | int, ...]) -> str:
    """``("scenes", 0, "story")`` → ``scenes[0].story``."""
    name = ""
    for part in location:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name


_EMPTY: tuple[Any, ...] = (None, "", [], {})


def _has(obj: Mapping[str, Any], key: str) -> bool:
    """``key`` is sent with a value (an empty string, list or object counts as not sent)."""
    return key in obj and obj[key] not in _EMPTY


def _count(value: Any, low: int, high: int, noun: str, name: str) -> Iterator[tuple[str, str]]:
    """A list's length, read off the raw body so its items are checked too (a model's validator
    on the list would run only once every item passed)."""
    if isinstance(value, list) and not low <= len(value) <= high:
        allowed = f"at most {high}" if low == 0 else f"{low} to {high}"
        yield name, f"{len(value)} {noun}, Pictory allows {allowed}"


def _exclusive(
    obj: Mapping[str, Any], first: str, second: str, where: str = ""
) -> Iterator[tuple[str, str]]:
    if _has(obj, first) and _has(obj, second):
        yield f"{where}{second}", f"send {first} or {second}, not both"


def _voice_rules(voice_over: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(voice_over, dict):  # rs:77, rs:286 (globally and per scene)
        yield from _exclusive(voice_over, "aiVoices", "externalVoice", f"{where}voiceOver.")


_NO_CONTENT = (
    "no content: give the scene a story (or storyCoPilot, blogUrl, pptUrl, audioUrl, videoUrl), "
    "or a background with a visualUrl, color, aiVisual or searchFilter"
)


def _scene_rules(scene: Any, where: str) -> Iterator[tuple[str, str]]:
    if not isinstance(scene, dict):
        return
    sources = [f for f in CONTENT_SOURCES if f in scene and scene[f] not in _EMPTY]
    background = scene.get("background")
    visual = isinstance(background, dict) and any(_has(background, f) for f in BACKGROUND_VISUALS)
    if len(sources) > 1:  # rs:47-49 "exactly one content source"
        yield where, f"a scene takes one content source, not {' and '.join(sources)}"
    elif not sources and not visual:  # rs:47-49 "or a background with a visual/color"
        yield where, _NO_CONTENT
    audio = "audioUrl" in sources or "videoUrl" in sources
    if audio and not _has(scene, "audioLanguage"):  # rs:75
        yield f"{where}.audioLanguage", "required with audioUrl or videoUrl, e.g. en-US"
    elements = scene.get("elements")
    yield from _count(elements, 1, 20, "elements", f"{where}.elements")  # rs:69, rs:165
    for i, element in enumerate(elements if isinstance(elements, list) else ()):
        is_text = isinstance(element, dict) and element.get("type") == "text"
        if is_text and not _has(element, "text"):  # rs:178 "required"
            yield f"{where}.elements[{i}].text", "required for a text element"
    voice = scene.get("voiceOver")
    yield from _voice_rules(voice, f"{where}.")


def _cross_field_rules(body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The rules across fields, read off the raw body (see the module docstring)."""
    if not isinstance(body.get("videoName"), str) or not body["videoName"].strip():
        yield "videoName", "required: the name of the video"  # rs:10, §5.9
    for first, second in (("videoWidth", "videoHeight"), ("videoHeight", "videoWidth")):
        if _has(body, first) and not _has(body, second):  # rs:11, rs:39
            yield second, f"needed with {first} (or leave both out and send aspectRatio)"
    yield from _exclusive(body, "brandId", "brandName")  # rs:28, rs:40
    yield from _exclusive(body, "subtitleStyleId", "subtitleStyleName")  # rs:41
    voice = body.get("voiceOver")
    yield from _voice_rules(voice, "")
    music = body.get("backgroundMusic")
    if isinstance(music, dict):
        if music.get("autoMusic") is True and _has(music, "musicUrl"):
            yield "backgroundMusic.musicUrl", "send autoMusic or musicUrl, not both"  # rs:304
        clips = music.get("clips")
        yield from _count(clips, 0, 10, "clips", "backgroundMusic.clips")  # rs:306 "max 10"
    if _has(body, "avatar") and not (
        isinstance(voice, dict) and voice.get("enabled") is True
    ):  # rs:21, rs:42
        yield "avatar", "an avatar needs the voice-over on: set voiceOver.enabled to true"
    scenes = body.get("scenes")
    if not _has(body, "templateId") and (scenes is None or scenes == []):
        yield "scenes", "no scenes: Pictory needs at least 1 scene (or a templateId)"  # rs:23
    for i, scene in enumerate(scenes if isinstance(scenes, list) else ()):
        yield from _scene_rules(scene, f"scenes[{i}]")


def check(body: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[FieldProblem]]:
    """``(clean_body, problems)``: the body with unknown fields stripped and no problems, or
    ``None`` and every field Pictory would refuse, in the order met (one entry per field)."""
    found: dict[str, list[str]] = {}
    clean: dict[str, Any] | None = None
    try:
        model = StoryboardBody.model_validate(body)
        clean = model.model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        for error in exc.errors():
            found.setdefault(field_name(error["loc"]), []).append(_message(error))
    for name, message in _cross_field_rules(body):
        messages = found.setdefault(name, [])
        if message not in messages:
            messages.append(message)
    problems = [FieldProblem(name, tuple(messages)) for name, messages in found.items()]
    return (clean if not problems else None), problems


def summary(problems: list[FieldProblem]) -> str:
    """One line for the 400's ``message``: how many fields, and each with its errors."""
    fields = "field" if len(problems) == 1 else "fields"
    listed = "; ".join(str(p) for p in problems)
    return f"the request body breaks Pictory's rules in {len(problems)} {fields}: {listed}"
