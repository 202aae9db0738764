"""What a batch will cost, estimated offline from its rows: video minutes and AI credits.

Pictory bills a render in the account's video minutes (the finished job's ``videoDuration``) and,
for generative features, in AI credits (its ``aiCreditsUsed``; contract §2 step 6, §6.2). Nothing
public says how long a video will be before it is rendered, so each row's length is estimated
from what it sends ([choice]s, written down in docs/cost.md):

- a ``template`` row: its ``.pictai`` project's length (``contract.video_length``, the reading
  the simulator renders by). Variable values are not counted (a name adds a fraction of a second).
- a ``storyboard`` row: its script at ``WORDS_PER_S`` (Pictory's own guide writes narration at
  about 2.5 words a second), each scene at least ``MIN_SCENE_S``.
- a ``video-edit`` row asking for highlights: their target length (``highlights`` seconds); a
  whole video's length is not known offline (``None``: the caller's assumption stands in).

AI credits: a row asks for them only where its payload names a generative feature (an
``aiVisual``, an ``avatar``), priced by ``contract.ai_credits``, the same list the simulator charges
by (Pictory's published rates: an image per model, a video per second, an avatar per 30 s of
video). A render without one uses none (Pictory's guide: "if AI visuals were used,
``aiCreditsUsed``"). Once rows of a batch have rendered, what they really used replaces these
figures (``run.cost``).

Imports only ``input`` and the base modules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.contract import ai_credits
from orchestrator.contract.video_length import (
    project_length_s,
    speech_s,
)
from orchestrator.input.flows import local_path
from orchestrator.input.rows import RowJob
from orchestrator.input.template import Template

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


def ai_credits_asked(node: Any, video_s: float | None = None) -> float:
    """The AI credits a payload (or a project's scenes) asks for, for a video of ``video_s``
    (an avatar is priced by the video's length; unknown: one 30 s block)."""
    return ai_credits.credits(ai_credits.asks(node), video_s or 0.0)


def _storyboard_credits(fields: Mapping[str, str], scenes: int, video_s: float) -> float:
    """A storyboard row's AI credits: its ``ai_visual`` once per scene (paragraph), its
    ``avatar_id`` for the whole video (as ``run.flows.storyboard_v2`` sends them)."""
    model = fields.get("ai_visual", "").strip()
    body: dict[str, Any] = {
        "scenes": [{"background": ai_credits.background(model)} for _ in range(scenes)]
        if model
        else []
    }
    if fields.get("avatar_id", "").strip():
        body["avatar"] = {"avatarId": fields["avatar_id"].strip()}
    return ai_credits_asked(body, video_s)


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
        video_s = round(sum(speech_s(p) for p in paragraphs), 3)
        return RowEstimate(video_s, _storyboard_credits(fields, len(paragraphs), video_s), "script")

    def _template(self, template: Template) -> RowEstimate:
        known = self._templates.get(template.sha256)
        if known is None:
            try:
                project = json.loads(template.content.decode("utf-8").removeprefix("\ufeff"))
            except ValueError:
                project = {}
            project = project if isinstance(project, dict) else {}
            length_s = project_length_s(project)
            asked = ai_credits_asked({"scenes": project.get("scenes")}, length_s)
            known = RowEstimate(length_s, asked, "template")
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
