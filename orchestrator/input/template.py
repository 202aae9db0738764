"""Load a ``.pictai`` template: the raw bytes we upload, their hash, and the variables they name.

A ``.pictai`` file is a Pictory project saved from the web app: a JSON object whose ``scenes`` list
holds the text. Pictory turns every ``{{ name }}`` in the project's text into a variable (spaces
inside the braces are allowed; the name is stripped). We find them the same way: every string
value in the JSON, at any depth, is scanned; object keys are not (Pictory never shows them).

What counts as a variable name: a word character first, then word characters, spaces, ``-`` or
``.`` (``first_name``, ``Company Name``). Anything else between braces is a *warning*, not an
error, because the project still renders; it just will not substitute that placeholder:

- ``{{ }}``: an empty placeholder;
- ``{{name`` without ``}}`` (or a stray ``}}``): an unclosed placeholder;
- ``{{<b>name</b>}}``: markup inside the braces (formatting applied in the editor);
- ``{{Name}}`` and ``{{name}}`` in one project: Pictory upper-cases names, so they are one variable.

Errors (missing, unreadable, not UTF-8, not JSON, not a project) raise :class:`TemplateError`
naming the file, the line when we know it, and how to fix it. A template without variables loads
fine (``variables`` is empty): the same video is rendered for every row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import TemplateError

MAX_TEMPLATE_BYTES = 64 * 1024 * 1024
"""A saved Pictory project is tens of kilobytes; anything this large is the wrong file."""

_WELL_FORMED = re.compile(r"\{\{([^{}]*)\}\}")
_ANY_BRACED = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_VALID_NAME = re.compile(r"\w[\w .-]*")
_FIX_IN_EDITOR = (
    "retype the placeholder as {{ name }} in the Pictory editor and save the project again"
)


@dataclass(frozen=True)
class PlaceholderWarning:
    """A placeholder Pictory will not substitute, and its JSON path (``scenes[0].sentence``)."""

    json_path: str
    message: str

    def __str__(self) -> str:
        return f"{self.json_path}: {self.message}"


@dataclass(frozen=True)
class Template:
    """A loaded ``.pictai`` project: ``content`` is uploaded byte for byte; ``sha256`` names it."""

    path: Path
    content: bytes
    sha256: str
    variables: frozenset[str]
    warnings: tuple[PlaceholderWarning, ...] = ()

    @property
    def name(self) -> str:
        """The file name, for messages."""
        return self.path.name


def load_template(path: Path) -> Template:
    """Read, check and scan a ``.pictai`` file. Raises :class:`TemplateError` with a fix."""
    content = _read_bytes(path)
    text = _decode(path, content)
    project = _parse(path, text)
    if not isinstance(project, dict):
        raise TemplateError(
            f"the top level is a JSON {_json_type(project)}, but a Pictory project is an object",
            file=path,
            line=1,
            hint="export the project again from Pictory (Download > Project file)",
        )
    scenes = project.get("scenes")
    if not isinstance(scenes, list) or not scenes:
        found = "missing" if scenes is None else f"a {_json_type(scenes)}"
        if isinstance(scenes, list):
            found = "an empty list"
        raise TemplateError(
            f"a Pictory project needs a non-empty 'scenes' list; here it is {found}",
            file=path,
            field="scenes",
            hint="is this really a .pictai project file? Export it again from the Pictory web app",
        )
    names, warnings = _scan(project)
    warnings.extend(_case_clashes(names))
    if text.startswith("\ufeff"):
        warnings.append(
            PlaceholderWarning(
                "$", "the file starts with a UTF-8 byte-order mark; Pictory may reject it"
            )
        )
    return Template(
        path=path,
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        variables=frozenset(names),
        warnings=tuple(warnings),
    )


def unresolved_placeholders(value: str) -> list[str]:
    """Every ``{{...}}`` in ``value``: a manifest value holding one would show it literally."""
    if "{{" not in value:
        return []
    return _ANY_BRACED.findall(value)


def _read_bytes(path: Path) -> bytes:
    hint = "check the path; a relative 'template' column is resolved against the manifest's folder"
    try:
        size_bytes = path.stat().st_size
        if path.is_dir():
            raise TemplateError("is a folder, not a .pictai file", file=path, hint=hint)
        if size_bytes > MAX_TEMPLATE_BYTES:
            raise TemplateError(
                f"is {size_bytes} bytes; a Pictory project is far smaller "
                f"(limit {MAX_TEMPLATE_BYTES} bytes)",
                file=path,
                hint="point at the .pictai project file, not a video or archive",
            )
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise TemplateError("template file not found", file=path, hint=hint) from exc
    except PermissionError as exc:
        raise TemplateError(
            "template file cannot be read (permission denied)",
            file=path,
            hint="check the file's permissions",
        ) from exc
    except OSError as exc:
        raise TemplateError(f"template file cannot be read: {exc.strerror}", file=path) from exc


def _decode(path: Path, content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        column = exc.start - (content.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TemplateError(
            f"byte 0x{content[exc.start]:02x} at column {column} is not UTF-8",
            file=path,
            line=line,
            hint="a .pictai file is UTF-8 JSON; export it again from Pictory instead of editing "
            "it in a tool that changes the encoding",
        ) from exc


def _parse(path: Path, text: str) -> Any:
    try:
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise TemplateError(
            f"not valid JSON: {exc.msg} at column {exc.colno}",
            file=path,
            line=exc.lineno,
            hint="a .pictai file is a JSON project saved from Pictory; re-export it, or fix the "
            "JSON by hand (a missing comma or quote)",
        ) from exc


def _walk_strings(node: Any, json_path: str) -> Iterator[tuple[str, str]]:
    """Yield ``(json_path, text)`` for every string value under ``node``."""
    if isinstance(node, str):
        yield json_path, node
    elif isinstance(node, dict):
        for key, child in node.items():
            yield from _walk_strings(child, f"{json_path}.{key}" if json_path else str(key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _walk_strings(child, f"{json_path}[{index}]")


def _scan(project: dict[str, Any]) -> tuple[set[str], list[PlaceholderWarning]]:
    """Variable names, and one warning per distinct bad placeholder (at its first JSON path)."""
    names: set[str] = set()
    found: dict[str, list[str]] = {}  # warning message -> JSON paths where it occurs
    for json_path, text in _walk_strings(project, ""):
        if "{{" not in text and "}}" not in text:
            continue
        for match in _WELL_FORMED.finditer(text):
            name = match.group(1).strip()
            if _VALID_NAME.fullmatch(name):
                names.add(name)
            elif not name:
                found.setdefault(f"empty placeholder {match.group(0)!r}", []).append(json_path)
            else:
                message = (
                    f"placeholder {match.group(0)!r} is not a plain name (markup or symbols "
                    "inside the braces), so Pictory will show it as text"
                )
                found.setdefault(message, []).append(json_path)
        rest = _WELL_FORMED.sub("", text)
        if "{{" in rest or "}}" in rest:
            snippet = rest[max(0, rest.find("{{" if "{{" in rest else "}}") - 10) :][:40]
            message = f"unbalanced braces near {snippet!r}: '{{{{' and '}}}}' must pair up"
            found.setdefault(message, []).append(json_path)
    warnings = [
        PlaceholderWarning(paths[0], f"{message}{_elsewhere(len(paths) - 1)}; {_FIX_IN_EDITOR}")
        for message, paths in found.items()
    ]
    return names, warnings


def _elsewhere(count: int) -> str:
    return f" (and in {count} more place{'s' if count > 1 else ''})" if count else ""


def _case_clashes(names: set[str]) -> list[PlaceholderWarning]:
    by_upper: dict[str, list[str]] = {}
    for name in names:
        by_upper.setdefault(name.upper(), []).append(name)
    return [
        PlaceholderWarning(
            "$",
            f"placeholders {', '.join(repr(n) for n in sorted(group))} differ only in case; "
            f"Pictory upper-cases names, so they are one variable {upper!r}",
        )
        for upper, group in sorted(by_upper.items())
        if len(group) > 1
    ]


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
