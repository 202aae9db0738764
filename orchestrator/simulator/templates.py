"""Templates: a ``.pictai`` project turned into the bare template object of section 2.

Every ``{{ name }}`` (spaces allowed inside the braces) found in any string of the project,
recursively, becomes a variable ``name`` whose placeholder is ``NAME``. Only a small summary of
the project is kept (name, language, audio, one short record per scene, the AI generations its
scenes ask for: ``contract.ai_credits``), never its raw bytes.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.contract import ai_credits
from orchestrator.contract.video_length import project_length_s
from orchestrator.simulator.answers import ApiProblem, invalid_body

VARIABLE_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_TAG_RE = re.compile(r"<[^>]*>")


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value, depth first, iteratively (no recursion limit)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def find_variables(value: Any) -> dict[str, str]:
    """``{name: NAME}`` for every ``{{ name }}`` in ``value``'s strings, in order of appearance."""
    found: dict[str, str] = {}
    for text in _strings(value):
        if "{{" not in text:
            continue
        for match in VARIABLE_RE.finditer(text):
            name = match.group(1)
            if name and name not in found:
                found[name] = name.upper()
    return found


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with each ``{{ name }}`` replaced by its value (unknown names left as they are)."""
    if "{{" not in text:
        return text
    return VARIABLE_RE.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


def _plain(text: str) -> str:
    return html.unescape(_TAG_RE.sub("", text)).strip()


def summarize_scene(scene: Mapping[str, Any], index: int) -> dict[str, Any]:
    """One scene as the template answer shows it: sceneId, subtitles, backgroundVisual."""
    if isinstance(scene.get("subtitles"), list):
        subtitles = [
            {"text": str(s.get("text", ""))} for s in scene["subtitles"] if isinstance(s, dict)
        ]
    else:
        lines = scene.get("lines")
        texts = (
            [str(line.get("text", "")) for line in lines if isinstance(line, dict)]
            if isinstance(lines, list)
            else []
        )
        if not texts:
            source = scene.get("sentence", scene.get("text", ""))
            texts = [_plain(str(source))] if source else []
        subtitles = [{"text": t} for t in texts]
    visual = scene.get("backgroundVisual")
    if not isinstance(visual, dict):
        url = str(scene.get("image") or scene.get("visualUrl") or "")
        kind = (
            "video" if url.split("?", 1)[0].lower().endswith((".mp4", ".mov", ".webm")) else "image"
        )
        visual = {"visualUrl": url, "type": kind}
    return {
        "sceneId": scene.get("sceneId", index + 1),
        "subtitles": subtitles,
        "backgroundVisual": visual,
    }


@dataclass(slots=True)
class Template:
    """What the simulator keeps of an uploaded project."""

    template_id: str
    account: str
    name: str
    language: str
    audio: dict[str, Any]
    scenes: list[dict[str, Any]]
    outer_variables: dict[str, str]
    variables: dict[str, str]
    published: bool = True
    deprecated: bool = False
    ai_asks: tuple[ai_credits.Ask, ...] = ()
    """The AI images, videos and avatars its scenes ask for, charged on each render of it."""
    length_s: float | None = None
    """How long its scenes are timed to last (``contract.video_length``); None: no scenes."""

    def answer(self, *, spelling: str = "depricated") -> dict[str, Any]:
        """The bare template object; ``spelling``: the deprecation flag's key
        (``deprecation_key``)."""
        return {
            "templateId": self.template_id,
            "name": self.name,
            "language": self.language,
            "published": self.published,
            spelling: self.deprecated,
            "audio": self.audio,
            "scenes": self.scenes,
            "variables": self.variables,
        }

    def list_item(self) -> dict[str, Any]:
        return {
            "templateId": self.template_id,
            "name": self.name,
            "language": self.language,
            "published": self.published,
            "deprecated": self.deprecated,
        }

    def replace_scenes(self, raw_scenes: list[Any]) -> None:
        """``PUT /v1/templates/{id}``: new scenes, and the variables they declare."""
        scenes = [s for s in raw_scenes if isinstance(s, dict)]
        if len(scenes) != len(raw_scenes):
            raise invalid_body("field 'scenes' must be a list of objects")
        self.scenes = [summarize_scene(s, i) for i, s in enumerate(scenes)]
        self.variables = {**self.outer_variables, **find_variables(self.scenes)}
        self.ai_asks = ai_credits.asks({"scenes": scenes})
        self.length_s = project_length_s({"scenes": scenes})

    def texts(self, variables: Mapping[str, str]) -> list[str]:
        """Every subtitle line with the variables filled in."""
        return [line for scene in self.scenes for line in self.texts_of(scene, variables)]

    @staticmethod
    def texts_of(scene: Mapping[str, Any], variables: Mapping[str, str]) -> list[str]:
        """One scene's subtitle lines with the variables filled in."""
        return [substitute(str(sub.get("text", "")), variables) for sub in scene["subtitles"]]


def deprecation_key(setting: str, *, created: bool) -> str:
    """The key a template answer spells its deprecation flag with, under the
    ``template_spelling`` setting: ``documented`` follows each page (``deprecated`` in the
    create-template answer, ``created``; ``depricated`` in the get-template one, whose page notes
    the API's spelling); otherwise the setting's spelling."""
    if setting == "documented":
        return "deprecated" if created else "depricated"
    return setting


def parse_project(raw: bytes) -> dict[str, Any]:
    """The JSON project inside a ``.pictai`` upload, or a 400 that says what is wrong."""
    try:
        project = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiProblem(
            400,
            "INVALID_JSON",
            f"the body must be the raw bytes of a .pictai project (a JSON document): {exc}",
        ) from None
    if not isinstance(project, dict):
        raise invalid_body("a .pictai project is a JSON object")
    if not isinstance(project.get("scenes"), list) or not project["scenes"]:
        raise invalid_body("the project has no 'scenes' list; is this a .pictai file?")
    return project


def template_from_project(project: dict[str, Any], *, template_id: str, account: str) -> Template:
    """Build the kept summary of an uploaded project."""
    raw_scenes = [s for s in project["scenes"] if isinstance(s, dict)]
    scenes = [summarize_scene(s, i) for i, s in enumerate(raw_scenes)]
    outer = {k: v for k, v in project.items() if k != "scenes"}
    outer_variables = find_variables(outer)
    audio = project.get("audio")
    return Template(
        template_id=template_id,
        account=account,
        name=str(project.get("projectName") or project.get("title") or project.get("name") or ""),
        language=str(project.get("scriptLanguage") or project.get("language") or "en"),
        audio=audio if isinstance(audio, dict) else {},
        scenes=scenes,
        outer_variables=outer_variables,
        variables={**outer_variables, **find_variables(raw_scenes)},
        ai_asks=ai_credits.asks({"scenes": raw_scenes}),
        length_s=project_length_s({"scenes": raw_scenes}),
    )


class TemplateStore:
    """Templates by id, each owned by one account."""

    def __init__(self, new_id: Callable[[], str]) -> None:
        self._new_id = new_id
        self._by_id: dict[str, Template] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, raw: bytes, account: str) -> Template:
        template = template_from_project(
            parse_project(raw), template_id=self._new_id(), account=account
        )
        self._by_id[template.template_id] = template
        return template

    def get(self, template_id: str, account: str) -> Template:
        """The account's template, 404 if unknown, 403 if another account's."""
        template = self._by_id.get(template_id)
        if template is None:
            raise ApiProblem(404, "TEMPLATE_NOT_FOUND", f"no template with id {template_id!r}")
        if template.account != account:
            raise ApiProblem(
                403, "FORBIDDEN", f"template {template_id!r} belongs to another account"
            )
        return template

    def owned_by(self, account: str) -> list[Template]:
        return [t for t in self._by_id.values() if t.account == account]

    def delete(self, template_id: str, account: str) -> Template:
        template = self.get(template_id, account)
        del self._by_id[template_id]
        return template
