"""What a batch will cost, estimated offline from its rows: video minutes and AI credits.

Pictory bills a render in the account's video minutes (the finished job's ``videoDuration``) and,
for generative features, in AI credits (its ``aiCreditsUsed``; contract §2 step 6, §6.2). Nothing
public says how long a video will be before it is rendered, so each row's length is estimated
from what it sends ([choice]s, written down in docs/cost.md):

- a ``template`` row: its ``.pictai`` project's length. A saved project times each scene: the
  sum of its ``lines[].time`` (seconds per sub-scene, as in Pictory's sample project
  ``templatetovideo/basic/Template.pictai``), else its ``sceneTime``, else its text at the
  speaking rate. Variable values are not counted (a name adds a fraction of a second).
- a ``storyboard`` row: its script at ``WORDS_PER_S`` (Pictory's own guide writes narration at
  about 2.5 words a second), each scene at least ``MIN_SCENE_S``.
- a ``video-edit`` row asking for highlights: their target length (``highlights`` seconds); a
  whole video's length is not known offline (``None``: the caller's assumption stands in).

AI credits ([choice]): a row asks for them only where its payload names a generative feature:
an ``aiVisual`` (an image model ``AI_IMAGE_CREDITS`` each, a video model its per-second rate ×
its ``videoDuration``; rates from Pictory's guide, the dearest when the model is not named) or an
``avatar`` (``AVATAR_CREDITS``, the one published example of an avatar's debit). AI voices count
none here: the quota lists voice-over minutes apart from AI credits. Once rows of a batch have
rendered, what they really used replaces these figures (``run.cost``).

Imports only ``input`` and the base modules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.input.flows import local_path
from orchestrator.input.rows import RowJob
from orchestrator.input.template import Template

WORDS_PER_S = 2.5
"""[choice] Speaking rate of a script without timings (Pictory's text-to-video guide: ~2.5
words a second of narration)."""
MIN_SCENE_S = 2.0
"""[choice] The shortest scene a script or project makes."""
AI_IMAGE_CREDITS = 2.0
"""[choice] One AI image (Pictory's guide: ``seedream3.0`` ≈ 2 credits each)."""
AI_VIDEO_CREDITS_PER_S = {"pixverse5.5": 1.6, "veo3.1": 20.0, "veo3.1_fast": 20.0}
"""[choice] AI video per second of generated video (Pictory's guide names pixverse5.5 ≈ 1.6 and
veo3.1 ≈ 20; veo3.1_fast is unpriced, so it counts as veo3.1); other models count the dearest."""
AI_VIDEO_DEFAULT_S = 8.0
"""[choice] An AI video whose ``videoDuration`` is not given: the longest a model allows."""
AVATAR_CREDITS = 30.0
"""[choice] An AI avatar (the one avatar debit in Pictory's AI-credit usage example)."""
_TAG = re.compile(r"<[^>]*>")
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")


@dataclass(frozen=True)
class RowEstimate:
    """One row's expected ``video_s`` (None: not known offline) and AI ``credits``; ``basis``
    says where the length came from (``template``, ``script``, ``highlights``, ``unknown``)."""

    video_s: float | None
    credits: float = 0.0
    basis: str = "unknown"


@dataclass
class BatchEstimate:
    """What the rows of a batch add up to: ``video_s`` over the rows whose length is known,
    ``unknown`` rows without one, ``credits`` asked for, and the rows by ``basis``."""

    rows: int = 0
    video_s: float = 0.0
    unknown: int = 0
    credits: float = 0.0
    bases: dict[str, int] = field(default_factory=dict)

    def add(self, row: RowEstimate) -> None:
        self.rows += 1
        if row.video_s is None:
            self.unknown += 1
        else:
            self.video_s += row.video_s
        self.credits += row.credits
        self.bases[row.basis] = self.bases.get(row.basis, 0) + 1

    def minutes(self, assumed_minutes: float) -> float:
        """Video minutes, each row of unknown length counted as ``assumed_minutes``."""
        return self.video_s / 60.0 + self.unknown * assumed_minutes


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
            if isinstance(line, dict) and _number(line.get("time"))
        ]
        if timed:
            total += sum(timed)
        elif _number(scene.get("sceneTime")):
            total += float(scene["sceneTime"])
        else:
            text = scene.get("sentence")
            total += speech_s(text if isinstance(text, str) else "")
    return round(total, 3)


def ai_credits_asked(node: Any) -> float:
    """The AI credits a payload (or project) asks for: each ``aiVisual`` and ``avatar`` in it,
    at any depth (see the module docstring)."""
    credits = 0.0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "aiVisual" and isinstance(value, dict):
                credits += _ai_visual_credits(value, str(node.get("type") or ""))
            elif key == "avatar" and isinstance(value, dict) and value:
                credits += AVATAR_CREDITS
            else:
                credits += ai_credits_asked(value)
    elif isinstance(node, list):
        credits += sum(ai_credits_asked(item) for item in node)
    return credits


def _ai_visual_credits(visual: Mapping[str, Any], kind: str) -> float:
    model = str(visual.get("model") or "")
    duration = visual.get("videoDuration")
    is_video = kind == "video" or duration is not None or model in AI_VIDEO_CREDITS_PER_S
    if not is_video:
        return AI_IMAGE_CREDITS
    match = _SECONDS.match(str(duration)) if duration is not None else None
    seconds = float(match.group(1)) if match else AI_VIDEO_DEFAULT_S
    rate = AI_VIDEO_CREDITS_PER_S.get(model, max(AI_VIDEO_CREDITS_PER_S.values()))
    return rate * seconds


class Estimator:
    """Estimates rows one by one; a template is measured once per file content."""

    def __init__(self) -> None:
        self._templates: dict[str, RowEstimate] = {}

    def row(self, job: RowJob) -> RowEstimate:
        if job.template is not None:
            return self._template(job.template)
        fields = job.variables
        if job.flow == "video-edit":
            seconds = _SECONDS.match(fields.get("highlights", ""))
            if seconds:
                return RowEstimate(float(seconds.group(1)), basis="highlights")
            return RowEstimate(None)
        if job.flow != "storyboard":
            return RowEstimate(None)  # a flow of its own (a plug-in): its length is unknown
        script = self._script(fields, job.manifest)
        if script is None:
            return RowEstimate(None)
        paragraphs = [p for p in script.replace("\r\n", "\n").split("\n\n") if p.strip()]
        return RowEstimate(round(sum(speech_s(p) for p in paragraphs), 3), basis="script")

    def _template(self, template: Template) -> RowEstimate:
        known = self._templates.get(template.sha256)
        if known is None:
            try:
                project = json.loads(template.content.decode("utf-8").removeprefix("\ufeff"))
            except ValueError:
                project = {}
            project = project if isinstance(project, dict) else {}
            known = RowEstimate(
                project_length_s(project), ai_credits_asked(project.get("scenes")), "template"
            )
            self._templates[template.sha256] = known
        return known

    @staticmethod
    def _script(fields: Mapping[str, str], manifest: Path | None) -> str | None:
        text = fields.get("text", "").strip()
        if text:
            return text
        name = fields.get("text_file", "").strip()
        if not name or manifest is None:
            return None
        try:
            return local_path(name, manifest).read_text("utf-8")
        except (OSError, ValueError):
            return None


def estimate_rows(rows: Iterable[RowJob], skip: frozenset[str] = frozenset()) -> BatchEstimate:
    """The estimate of ``rows`` (one pass), leaving out the row ids in ``skip`` (done ones)."""
    estimator = Estimator()
    batch = BatchEstimate()
    for job in rows:
        if job.row_id not in skip:
            batch.add(estimator.row(job))
    return batch


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
