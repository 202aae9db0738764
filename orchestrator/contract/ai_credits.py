"""What a render costs in AI credits, as Pictory publishes it: the one price list the simulator
charges by and the estimate counts with, so the two cannot disagree.

Pictory charges AI credits only for generative features, never for a render as such:

- "if AI visuals were used, ``aiCreditsUsed``" (pictoryai/pictory-claude-skills ``SKILL.md``,
  step 5); "Credits are charged per image and per video-second (rate depends on the model)"
  (``references/request-schema.md``); stock visuals are free (``SKILL.md`` step 1);
- the quota page: AI credits are "consumed by generative AI features such as AI avatars,
  text-to-image, and AI video generation" [doc "Get Current Quota"]; ElevenLabs voice-over
  minutes are a quota of their own;
- per image [doc "Generate Image"]: ``seedream3.0`` 2 (the default model), ``flux-schnell`` 0.6,
  ``nanobanana`` 4, ``nanobanana-pro`` 14; per second of video [doc "Generate Video"]:
  ``veo3.1`` 20, ``veo3.1_fast`` 10, ``pixverse5.5`` 1.6 (the default model), durations
  ``4s``/``6s``/``8s`` (veo) and ``5s``/``8s``/``10s`` (pixverse), "defaults to the first
  supported duration";
- an avatar: "15 AI credits per 30 seconds of video" [doc guides/video-with-avatar]; the usage
  page's example debits 30 for one ("AI Avatar"), and 0.6 for one image ("Text-to-Image").

What asks for a generation (request-schema.md): an ``aiVisual`` object beside a ``type``
(``"image"`` | ``"video"``) on a scene's ``background`` or on an element; one top-level
``avatar`` with an ``avatarId`` (per-scene ``avatar`` objects only place it).

[choice]s where nothing public says: an ``aiVisual`` of ``type`` video (or naming a video model,
or a ``videoDuration``) is a video, else an image; an unnamed or unknown model is priced as its
kind's default model (``seedream3.0``, ``pixverse5.5``); a video's ``videoDuration`` that is not
one of its model's is read as seconds when it is a number, else the model's first duration; an
avatar is charged per started 30 s of the whole video; an AI visual in a ``.pictai`` project's
scenes costs the same as in a storyboard body (the project's form for it is unpublished). The
usage ``source`` of an AI video ("Text-to-Video") is unpublished too.

Imports nothing of ours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

IMAGE_CREDITS = {"seedream3.0": 2.0, "flux-schnell": 0.6, "nanobanana": 4.0, "nanobanana-pro": 14.0}
"""AI credits per image, by model [doc "Generate Image"]."""
DEFAULT_IMAGE_MODEL = "seedream3.0"
VIDEO_CREDITS_PER_S = {"veo3.1": 20.0, "veo3.1_fast": 10.0, "pixverse5.5": 1.6}
"""AI credits per second of generated video, by model [doc "Generate Video"]."""
VIDEO_DURATIONS_S = {
    "veo3.1": (4.0, 6.0, 8.0),
    "veo3.1_fast": (4.0, 6.0, 8.0),
    "pixverse5.5": (5.0, 8.0, 10.0),
}
"""The clip lengths each video model makes, the first being the default [doc "Generate Video"]."""
DEFAULT_VIDEO_MODEL = "pixverse5.5"
AVATAR_CREDITS_PER_BLOCK = 15.0
AVATAR_BLOCK_S = 30.0
"""An avatar costs ``AVATAR_CREDITS_PER_BLOCK`` per ``AVATAR_BLOCK_S`` of video [doc]."""

MODELS = (*IMAGE_CREDITS, *VIDEO_CREDITS_PER_S)
"""Every AI model a scene's ``aiVisual`` may name, images first."""

IMAGE, VIDEO, AVATAR = "Text-to-Image", "Text-to-Video", "AI Avatar"
"""The ``source`` of each generation's debit in ``GET /v1/aicredits/usage`` (the doc example's
for images and avatars; [choice] for videos)."""
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")


@dataclass(frozen=True, slots=True)
class Ask:
    """One generation a request asks for: its usage ``source`` and its ``credits`` (for an
    avatar: per ``AVATAR_BLOCK_S`` of video, see ``charges``)."""

    source: str
    credits: float


def asks(body: Any) -> tuple[Ask, ...]:
    """Every generation a v2 storyboard body (or a project) asks for (module docstring)."""
    found = list(_visual_asks(body))
    avatar = body.get("avatar") if isinstance(body, dict) else None
    if isinstance(avatar, dict) and avatar.get("avatarId"):
        found.append(Ask(AVATAR, AVATAR_CREDITS_PER_BLOCK))
    return tuple(found)


def background(model: str) -> dict[str, Any]:
    """A scene ``background`` asking ``model`` for an AI visual, its prompt left to Pictory
    ("If omitted, a prompt is auto-generated from the scene's story text" [doc guides
    ai-generated-visuals]); ``type`` is the model's kind (required with ``aiVisual``)."""
    kind = "video" if model in VIDEO_CREDITS_PER_S else "image"
    return {"type": kind, "aiVisual": {"model": model}}


def charges(found: Iterable[Ask], video_s: float) -> list[tuple[str, float]]:
    """What a render of ``video_s`` seconds that asked for ``found`` is debited: one
    ``(source, credits)`` per generation, an avatar per started ``AVATAR_BLOCK_S``."""
    blocks = max(1, math.ceil(round(video_s, 6) / AVATAR_BLOCK_S))
    return [
        (ask.source, ask.credits * blocks if ask.source == AVATAR else ask.credits) for ask in found
    ]


def credits(found: Iterable[Ask], video_s: float) -> float:
    """The AI credits a render of ``video_s`` seconds that asked for ``found`` uses."""
    return round(sum(amount for _, amount in charges(found, video_s)), 3)


def _visual_asks(node: Any) -> Iterator[Ask]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "aiVisual" and isinstance(value, dict):
                yield _visual(value, str(node.get("type") or ""))
            else:
                yield from _visual_asks(value)
    elif isinstance(node, list):
        for item in node:
            yield from _visual_asks(item)


def _visual(visual: dict[str, Any], kind: str) -> Ask:
    model = str(visual.get("model") or "")
    duration = visual.get("videoDuration")
    if kind != "video" and duration is None and model not in VIDEO_CREDITS_PER_S:
        return Ask(IMAGE, IMAGE_CREDITS.get(model, IMAGE_CREDITS[DEFAULT_IMAGE_MODEL]))
    if model not in VIDEO_CREDITS_PER_S:
        model = DEFAULT_VIDEO_MODEL
    match = _SECONDS.match(str(duration)) if duration is not None else None
    seconds = float(match.group(1)) if match else VIDEO_DURATIONS_S[model][0]
    return Ask(VIDEO, round(VIDEO_CREDITS_PER_S[model] * seconds, 3))
