"""How long a video of a saved Pictory project or a script will be: the one reading the cost
estimate counts with (``input.estimate``) and the simulator renders by (a template's render
lasts as long as its scenes), so the two cannot disagree.

A saved project times each scene: the sum of its ``lines[].time`` (seconds per sub-scene, as in
Pictory's sample project ``templatetovideo/basic/Template.pictai``), else its ``sceneTime``, else
its text at the speaking rate. A script without timings is read at ``WORDS_PER_S``, each scene
at least ``MIN_SCENE_S`` ([choice]s, docs/cost.md).

Imports nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

WORDS_PER_S = 2.5
"""[choice] Speaking rate of a script without timings (Pictory's text-to-video guide: ~2.5
words a second of narration)."""
MIN_SCENE_S = 2.0
"""[choice] The shortest scene a script or project makes."""
_TAG = re.compile(r"<[^>]*>")


def words(text: str) -> int:
    return len(_TAG.sub(" ", text).split())


def speech_s(text: str) -> float:
    """How long ``text`` takes to say at ``WORDS_PER_S`` (at least ``MIN_SCENE_S``)."""
    return max(MIN_SCENE_S, words(text) / WORDS_PER_S)


def project_length_s(project: Mapping[str, Any]) -> float | None:
    """A saved Pictory project's length (see the module docstring); None without scenes."""
    scenes = project.get("scenes")
    if not isinstance(scenes, list) or not scenes:
        return None
    total = 0.0
    for scene in scenes:
        if not isinstance(scene, dict):
            continue
        lines = scene.get("lines")
        timed = [
            float(line["time"])
            for line in (lines if isinstance(lines, list) else [])
            if isinstance(line, dict) and positive(line.get("time"))
        ]
        if timed:
            total += sum(timed)
        elif positive(scene.get("sceneTime")):
            total += float(scene["sceneTime"])
        else:
            text = scene.get("sentence")
            total += speech_s(text if isinstance(text, str) else "")
    return round(total, 3)


def positive(value: Any) -> bool:
    """A positive number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
