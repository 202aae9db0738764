"""A driver of ours for Pictory's text-to-video helper, and payloads of ours shaped like its
published examples (used by ``test_pictory_skills_helper``).

``SkillsDriver`` makes the calls ``pictory_api.py`` of ``pictoryai/pictory-claude-skills`` makes,
with its headers (the bare ``pictai_`` key, a browser User-Agent, a JSON content type), and reads
the answers exactly as it does. Its waits advance a manual clock instead of sleeping. The helper's
code is read, never copied: this is a re-statement of its requests and reads.

The example payloads are our own, written to exercise what each of the five published examples
exercises (designed elements over stock searches, AI backgrounds with a subtitle style, AI media
elements, a connected-blocks diagram, a vertical stacked diagram).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import aiohttp
from simkit import ManualClock

BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
HELPER_INTERVAL_S = 30
HELPER_TIMEOUT_S = 1800


class HelperExit(Exception):
    """The helper would exit with ``code`` (1 HTTP error, 3 job failed, 4 timeout)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"exit {code}: {message}")
        self.code = code


class SkillsDriver:
    """The helper's requests and its reading of the answers, on the simulator's clock."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        clock: ManualClock,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.clock = clock
        self.heartbeats: list[str] = []

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str | None] | None = None,
    ) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode("utf-8") if body is not None else None
        headers = {
            "Authorization": self.api_key,
            "Content-Type": "application/json",
            "User-Agent": BROWSER_USER_AGENT,
        }
        async with self.session.request(method, url, data=data, headers=headers) as resp:
            text = await resp.text()
            if resp.status >= 400:
                raise HelperExit(1, f"HTTP {resp.status} on {method} {url}\n{text}")
            return json.loads(text)

    async def render(self, payload: dict[str, Any]) -> str:
        resp = await self.request("POST", "/v2/video/storyboard/render", body=payload)
        job_id = (resp.get("data") or {}).get("jobId")
        if not job_id:
            raise HelperExit(1, f"no jobId in response: {resp}")
        return str(job_id)

    async def poll(
        self,
        job_id: str,
        interval_s: int = HELPER_INTERVAL_S,
        timeout_s: int = HELPER_TIMEOUT_S,
    ) -> dict[str, Any]:
        started = self.clock()
        while self.clock() < started + timeout_s:
            resp = await self.request("GET", f"/v1/jobs/{job_id}")
            data: dict[str, Any] = resp.get("data") or {}
            status = data.get("status")
            if status == "completed":
                return data
            if status == "failed" or resp.get("success") is False:
                raise HelperExit(3, f"{data.get('error_code')} - {data.get('error_message')}")
            progress = data.get("renderProgress")
            self.heartbeats.append(f"{status} {progress if progress is not None else ''}")
            self.clock.advance(interval_s)  # the helper's time.sleep(interval)
        raise HelperExit(4, f"job {job_id} not finished after {timeout_s}s")

    async def render_and_wait(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.poll(await self.render(payload))

    async def search(self, keyword: str, category: str | None = None) -> list[dict[str, Any]]:
        query = {"keyword": keyword, "category": category, "language": "en"}
        resp = await self.request("GET", "/v1/media/search", query=query)
        results = (resp.get("data") or {}).get("searchResults") or []
        return [
            {
                "assetId": r.get("assetId"),
                "mediaType": r.get("mediaType"),
                "duration": r.get("duration"),
                "description": r.get("mediaDescription"),
                "previewJpg": (r.get("preview") or {}).get("jpg"),
                "library": r.get("searchLibrary"),
            }
            for r in results
        ]

    async def voices(
        self, language: str | None = None, service: str | None = None
    ) -> list[dict[str, Any]]:
        resp = await self.request("GET", "/v1/voiceovers/tracks")
        tracks = resp if isinstance(resp, list) else (resp.get("data") or resp.get("tracks") or [])
        out = []
        for t in tracks:
            if language and not (t.get("language") or "").lower().startswith(language.lower()):
                continue
            if service and (t.get("service") or "").lower() != service.lower():
                continue
            keys = ("id", "name", "gender", "language", "accent", "engine", "service")
            out.append({k: t.get(k) for k in keys})
        return out

    async def music(
        self, query: str | None = None, mood: str | None = None, purpose: str | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"page": 1, "pageSize": 20, "sort": "featured"}
        if query:
            body["query"] = query
        if mood:
            body["mood"] = [mood]
        if purpose:
            body["purpose"] = [purpose]
        resp = await self.request("POST", "/v1/music/search", body=body)
        data = resp.get("data") or resp
        items = data.get("items") or data.get("searchResults") or data.get("tracks") or []
        keys = ("id", "title", "audioUrl", "duration", "moods", "purposes")
        return [{k: t.get(k) for k in keys} for t in items]

    async def music_options(self) -> dict[str, Any]:
        out = {}
        for label in ("moods", "genres", "purposes"):
            resp = await self.request("GET", f"/v1/music/{label}")
            out[label] = resp.get("data", resp) if isinstance(resp, dict) else resp
        return out


# --- our own payloads, one per published example --------------------------------------------


def _text(text: str, variant: str, top: int, left: int, width: int, **style: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "text", "text": text, "textVariant": variant}
    element.update(top=f"{top}%", left=f"{left}%", width=f"{width}%")
    if style:
        element["style"] = style
    return element


def _shape(name: str, fill: str, top: int, left: int, width: int, **extra: Any) -> dict[str, Any]:
    return {"type": "shape", "name": name, "fill": fill, **extra} | {
        "top": f"{top}%",
        "left": f"{left}%",
        "width": f"{width}%",
    }


def _voice(speaker: str, speed: int = 100) -> dict[str, Any]:
    return {"enabled": True, "aiVoices": [{"speaker": speaker, "speed": speed}]}


DESIGNED_EXPLAINER = {
    "videoName": "Three Ways to Save Water",
    "language": "en",
    "aspectRatio": "16:9",
    "saveProject": True,
    "backgroundMusic": {"enabled": True, "autoMusic": True, "volume": 0.1},
    "voiceOver": _voice("Martin"),
    "scenes": [
        {
            "story": "A dripping tap wastes thousands of litres a year. Three habits fix it.",
            "hideSubtitles": True,
            "minimumDuration": 6,
            "endPauseDuration": 0.3,
            "background": {
                "searchFilter": {"query": "water droplet falling from kitchen tap"},
                "colorOverlay": {"color": "rgb(10,30,60)", "opacity": 0.4},
                "settings": {"loop": True, "mute": True},
            },
            "elements": [
                _shape("rectangle", "rgb(56,189,248)", 40, 10, 5),
                _text("Save water", "heading", 48, 10, 70, fontFamily="Inter", fontSize=64),
            ],
        },
        {
            "story": "Habit one: turn the tap off while you brush.",
            "hideSubtitles": True,
            "sceneTransition": "fade",
            "background": {"color": "rgb(15,23,42)"},
            "elements": [
                _shape("circle", "rgb(250,204,21)", 22, 10, 10),
                _text("1", "body", 24, 10, 10, backgroundColor="rgba(0,0,0,0)", fontSize=48),
                _text("Tap off while brushing", "heading", 40, 10, 70, fontSize=52),
            ],
        },
    ],
}

AI_BACKGROUNDS_SHORT = {
    "videoName": "Evening Wind-Down",
    "language": "en",
    "aspectRatio": "9:16",
    "backgroundMusic": {"enabled": True, "autoMusic": True, "volume": 0.12},
    "voiceOver": _voice("Joanna", 95),
    "subtitleStyle": {
        "fontFamily": "Poppins",
        "fontSize": 40,
        "color": "rgb(255,255,255)",
        "keywordColor": "rgb(244,114,182)",
        "position": "center-center",
        "alignment": "center",
    },
    "scenes": [
        {
            "story": "Dim the lights an hour before bed.",
            "highlightKeywords": True,
            "maxSubtitleLines": 2,
            "background": {
                "type": "video",
                "aiVisual": {
                    "prompt": "warm lamp light fading in a quiet bedroom, slow dolly, soft focus",
                    "model": "pixverse5.5",
                    "videoDuration": "5s",
                },
                "colorOverlay": {"color": "rgb(0,0,0)", "opacity": 0.25},
            },
        },
        {
            "story": "Put the phone in another room.",
            "maxSubtitleLines": 2,
            "sceneTransition": "fade",
            "background": {
                "type": "video",
                "aiVisual": {
                    "prompt": "phone face down on a hallway shelf at night, soft focus",
                    "model": "pixverse5.5",
                    "videoDuration": "5s",
                    "visualContinuity": True,
                },
            },
        },
    ],
}

AI_MEDIA_ELEMENTS = {
    "videoName": "Kettle Launch",
    "language": "en",
    "aspectRatio": "16:9",
    "voiceOver": _voice("Martin", 105),
    "scenes": [
        {
            "story": "Meet Brew, the kettle that knows your tea.",
            "hideSubtitles": True,
            "background": {"color": "rgb(12,12,16)"},
            "elements": [
                {"type": "text", "text": "MEET BREW", "textVariant": "subheading"},
                {
                    "type": "text",
                    "text": "The kettle that knows your tea",
                    "textVariant": "heading",
                },
                {
                    "type": "image",
                    "aiVisual": {
                        "prompt": "matte white smart kettle product render, studio light",
                        "model": "seedream3.0",
                        "mediaStyle": "minimalist",
                    },
                    "top": "55%",
                    "left": "68%",
                    "width": "26%",
                },
            ],
        },
        {
            "story": "Green tea at eighty degrees, black tea at a rolling boil.",
            "hideSubtitles": True,
            "background": {"searchFilter": {"query": "pouring tea into glass cup steam"}},
            "elements": [
                {
                    "type": "video",
                    "aiVisual": {
                        "prompt": "steam rising from a glass teapot in slow motion",
                        "model": "pixverse5.5",
                        "videoDuration": "5s",
                    },
                    "top": "20%",
                    "left": "60%",
                    "width": "32%",
                },
            ],
        },
    ],
}


def _pipeline_scene(active: int, story: str) -> dict[str, Any]:
    blocks = [
        _shape("rectangle", "rgb(51,65,85)", 36, left, 14, borderRadius=16) for left in (8, 43, 78)
    ]
    blocks[active]["fill"] = "rgb(52,211,153)"
    lines = [_shape("line", "rgb(148,163,184)", 46, left, 17) for left in (24, 59)]
    labels = [
        _text(label, "body", 44, left, 14, backgroundColor="rgba(0,0,0,0)", fontSize=28)
        for label, left in (("WRITE", 8), ("REVIEW", 43), ("MERGE", 78))
    ]
    return {
        "story": story,
        "hideSubtitles": True,
        "sceneTransition": "none",
        "background": {"color": "rgb(15,23,42)"},
        "elements": [*blocks, *lines, *labels],
    }


BLOCKS_DIAGRAM = {
    "videoName": "How a Pull Request Flows",
    "language": "en",
    "aspectRatio": "16:9",
    "voiceOver": _voice("Martin"),
    "scenes": [
        _pipeline_scene(0, "First you write the change on a branch."),
        _pipeline_scene(1, "Then a teammate reviews it."),
        _pipeline_scene(2, "Finally it is merged into main."),
    ],
}


def _layers_scene(active: int, story: str) -> dict[str, Any]:
    tops = (18, 44, 70)
    elements: list[dict[str, Any]] = []
    for i, top in enumerate(tops):
        fill = "rgb(250,204,21)" if i == active else "rgb(49,46,129)"
        elements.append(_shape("rectangle", fill, top, 30, 40, borderRadius=24))
        if i < len(tops) - 1:
            elements.append(_shape("circle", "rgb(250,204,21)", top + 23, 48, 3))
    for label, top in (("Screen", 25), ("Server", 51), ("Storage", 77)):
        elements.append(
            _text(label, "body", top, 30, 40, backgroundColor="rgba(0,0,0,0)", fontSize=36)
        )
    return {
        "story": story,
        "hideSubtitles": True,
        "sceneTransition": "none",
        "minimumDuration": 6,
        "background": {"color": "rgb(30,27,75)"},
        "elements": elements,
    }


STACKED_DIAGRAM = {
    "videoName": "Three Layers of a Photo App",
    "language": "en",
    "aspectRatio": "9:16",
    "voiceOver": _voice("Martin"),
    "scenes": [
        _layers_scene(0, "The screen is what you tap."),
        _layers_scene(1, "The server decides what happens."),
        _layers_scene(2, "Storage keeps every photo safe."),
    ],
}

OUR_EXAMPLES = {
    "designed-explainer": DESIGNED_EXPLAINER,
    "ai-backgrounds-short": AI_BACKGROUNDS_SHORT,
    "ai-media-elements": AI_MEDIA_ELEMENTS,
    "blocks-diagram": BLOCKS_DIAGRAM,
    "stacked-diagram": STACKED_DIAGRAM,
}
