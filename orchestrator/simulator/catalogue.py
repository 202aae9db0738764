"""The simulator's fixed catalogue: what the look-up routes of ``routes_lookup`` list.

Voices (``GET /v1/voiceovers/tracks``), music tracks and their filter values
(``POST /v1/music/search``, ``GET /v1/music/{moods,genres,genres/groups,instruments,purposes}``),
avatars, video brands, smart layouts and text styles. The field names are Pictory's [doc]
(contract §6.4, docs.pictory.ai API reference); every value is ours and the same on every run
[choice]: the real lists are an account's and Pictory's to change, so a client must look values
up, never hard-code them. Two values are not arbitrary: the catalogue holds the voices Pictory's
skill reference names as each language's default (en Martin, nl Tim, fr Gabriel, de Wilbur,
it Marco, pt Aurelio, es Hugo) [S2], so a payload written from that advice finds its speaker.

Media the catalogue points at (voice samples, tracks, avatar previews) are served by the
simulator's stock CDN (``stock.STOCK_PREFIX``): [choice] an ``.m4a`` clip where Pictory serves
MP3, a ``.jpg`` (PNG bytes) and an ``.mp4`` where it serves WebP and WebM.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from orchestrator.simulator.stock import STOCK_PREFIX

# --- voices -------------------------------------------------------------------------------------

_VOICES: tuple[tuple[int, str, str, str, str, str, str, str], ...] = (
    # id, name, provider voice id, gender, accent, language, engine, service
    (5001, "Martin", "Matthew", "male", "American accent", "en-US", "neural", "aws"),
    (5002, "Joanna", "Joanna", "female", "American accent", "en-US", "neural", "aws"),
    (5003, "Amelia", "en-GB-Wavenet-A", "female", "British accent", "en-GB", "WaveNet", "google"),
    (5004, "Arjun", "en-IN-Neural2-B", "male", "Indian accent", "en-IN", "Neural2", "google"),
    (
        5005,
        "Brian",
        "b7f1c6e2-5d3a-4f08-9c1e-2a4d6b8e0f13",
        "male",
        "American accent",
        "en-US",
        "eleven_multilingual_v2",
        "elevenlabs",
    ),
    (5006, "Tim", "Ruben", "male", "Dutch accent", "nl-NL", "standard", "aws"),
    (5007, "Gabriel", "fr-FR-Wavenet-B", "male", "French accent", "fr-FR", "WaveNet", "google"),
    (5008, "Wilbur", "Daniel", "male", "German accent", "de-DE", "neural", "aws"),
    (5009, "Marco", "it-IT-Neural2-C", "male", "Italian accent", "it-IT", "Neural2", "google"),
    (5010, "Aurelio", "Thiago", "male", "Brazilian accent", "pt-BR", "neural", "aws"),
    (5011, "Hugo", "es-ES-Wavenet-B", "male", "Spanish accent", "es-ES", "WaveNet", "google"),
    (5012, "Lucia", "Mia", "female", "Mexican accent", "es-MX", "neural", "aws"),
    (
        5013,
        "Priya",
        "3e9a7c51-0b2d-4e6f-8a1c-5d7f9b3e2c40",
        "female",
        "Indian accent",
        "hi-IN",
        "eleven_multilingual_v2",
        "elevenlabs",
    ),
    (5014, "Yuki", "ja-JP-Neural2-B", "female", "Japanese accent", "ja-JP", "Neural2", "google"),
)


def _media_url(public_url: str, library: str, name: str) -> str:
    return f"{public_url}{STOCK_PREFIX}/{library}/{name}"


def voices(public_url: str) -> list[dict[str, Any]]:
    """Every voice: ``id`` (numeric), ``name``, ``voice``, ``gender``, ``accent``, ``language``,
    ``engine``, ``service``, ``sample`` [S2], and ``category`` [doc]."""
    return [
        {
            "id": vid,
            "name": name,
            "voice": voice,
            "gender": gender,
            "accent": accent,
            "language": language,
            "engine": engine,
            "service": service,
            "category": "standard",
            "sample": _media_url(public_url, "voices", f"{name.lower()}-sample.m4a"),
        }
        for vid, name, voice, gender, accent, language, engine, service in _VOICES
    ]


# --- music --------------------------------------------------------------------------------------

GENRE_GROUPS: dict[str, tuple[str, ...]] = {
    "Cinematic": ("Film Score", "Trailer"),
    "Electronic": ("Ambient", "Downtempo", "Synthwave"),
    "Acoustic": ("Folk", "Singer-Songwriter"),
    "Rock": ("Indie Rock", "Blues Rock"),
    "Jazz": ("Lounge", "Swing"),
    "Pop": ("Electro Pop", "Dance Pop"),
}
MOODS = (
    "Calm / Serene",
    "Happy / Bright",
    "Hopeful / Optimistic",
    "Dramatic",
    "Energetic / Lively",
    "Mysterious",
    "Sad / Melancholic",
    "Upbeat / Cheerful",
    "Epic",
    "Playful / Whimsical",
)
INSTRUMENTS = (
    "Piano",
    "Guitar - Acoustic",
    "Guitar - Electric",
    "Strings",
    "Synth",
    "Drum Kit",
    "Bass - Electric",
    "Brass",
)
PURPOSES = (
    "Corporate / Business",
    "Technology",
    "Educational",
    "Travel",
    "Sports",
    "Wedding",
    "Trailer / Promo",
    "Documentary",
    "Vlog",
    "Meditation",
)
GENRES = tuple(g for group in GENRE_GROUPS.values() for g in group)
TRACK_COUNT = 60
"""Below 72 (9 × 8 title words, coprime), so every title is different."""
_TITLE_FIRST = ("Bright", "Quiet", "Golden", "Open", "Silver", "Long", "Blue", "Wild", "Soft")
_TITLE_SECOND = ("Horizon", "Morning", "Road", "Harbour", "Signal", "Garden", "Orbit", "Tide")


@dataclass(frozen=True, slots=True)
class Track:
    """One music track of the catalogue."""

    track_id: int
    title: str
    slug: str
    duration_s: int
    genre_group: str
    genres: tuple[str, ...]
    moods: tuple[str, ...]
    instruments: tuple[str, ...]
    purposes: tuple[str, ...]

    def item(self, public_url: str) -> dict[str, Any]:
        """The search item: ``id``, ``title``, ``audioUrl``, ``duration``, ``genres``,
        ``moods``, ``purposes`` [S2], and ``instruments`` [doc]."""
        return {
            "id": self.track_id,
            "title": self.title,
            "audioUrl": _media_url(public_url, "music", f"{self.slug}.m4a"),
            "duration": self.duration_s,
            "genres": list(self.genres),
            "instruments": list(self.instruments),
            "moods": list(self.moods),
            "purposes": list(self.purposes),
        }


def _pick(values: tuple[str, ...], digest: bytes, at: int, count: int) -> tuple[str, ...]:
    """``count`` distinct values chosen by the digest's bytes from ``at``, in catalogue order."""
    chosen = {values[digest[at + i] % len(values)] for i in range(count)}
    return tuple(v for v in values if v in chosen)


def _track(n: int) -> Track:
    digest = hashlib.sha256(f"simulator-track-{n}".encode()).digest()
    title = f"{_TITLE_FIRST[n % len(_TITLE_FIRST)]} {_TITLE_SECOND[n % len(_TITLE_SECOND)]}"
    group = tuple(GENRE_GROUPS)[n % len(GENRE_GROUPS)]
    return Track(
        track_id=101 + n,
        title=title,
        slug=f"track-{101 + n}",
        duration_s=60 + digest[0] % 181,
        genre_group=group,
        genres=_pick(GENRE_GROUPS[group], digest, 1, 1),
        moods=_pick(MOODS, digest, 2, 3),
        instruments=_pick(INSTRUMENTS, digest, 5, 3),
        purposes=_pick(PURPOSES, digest, 8, 2),
    )


TRACKS: tuple[Track, ...] = tuple(_track(n) for n in range(TRACK_COUNT))
"""The whole music library, in ``featured`` order."""

MUSIC_OPTIONS: dict[str, tuple[str, ...]] = {
    "moods": MOODS,
    "genres": GENRES,
    "genres/groups": tuple(GENRE_GROUPS),
    "instruments": INSTRUMENTS,
    "purposes": PURPOSES,
}
"""What ``GET /v1/music/{name}`` lists (a bare list of strings [doc][S2])."""

# --- avatars, brands, layouts, styles -----------------------------------------------------------

_AVATARS: tuple[tuple[str, str, str | None, tuple[tuple[str, str], ...]], ...] = (
    # group id, name, gender, looks (look id, look name)
    (
        "5f1e0c2a9b7d4e3f8a6c1b2d3e4f5a60",
        "Nora",
        "Female",
        (("Nora_studio_public", "Nora in Studio"), ("Nora_office_public", "Nora at the Office")),
    ),
    (
        "8a2b4c6d0e1f4a3b9c7d5e2f1a0b3c41",
        "Tomas",
        "Male",
        (("Tomas_suit_public", "Tomas in a Suit"),),
    ),
    ("c3d5e7f9a1b24c6d8e0f2a4b6c8d0e22", "Sam", None, (("Sam_casual_public", "Sam Casual"),)),
)


def avatars(public_url: str) -> list[dict[str, Any]]:
    """Avatar groups: ``id``, ``name``, ``gender``, ``looks[]`` of ``id`` (the ``avatarId`` a
    render uses), ``name``, ``previewImage``, ``previewVideo`` [doc]."""
    return [
        {
            "id": group_id,
            "name": name,
            "gender": gender,
            "looks": [
                {
                    "id": look_id,
                    "name": look_name,
                    "previewImage": _media_url(public_url, "avatars", f"{look_id}.jpg"),
                    "previewVideo": _media_url(public_url, "avatars", f"{look_id}.mp4"),
                }
                for look_id, look_name in looks
            ],
        }
        for group_id, name, gender, looks in _AVATARS
    ]


BRANDS: tuple[dict[str, str], ...] = (
    {"id": "0b6f2a1e-3c4d-4e5f-8a9b-0c1d2e3f4a51", "name": "Default Brand"},
    {"id": "7d8e9f0a-1b2c-4d3e-9f4a-5b6c7d8e9f62", "name": "Simulator Blue"},
)
"""``GET /v1/brands/video``: ``id`` and ``name`` [doc]."""

SMART_LAYOUTS: tuple[dict[str, str], ...] = tuple(
    {
        "templateId": f"20250101000000000sim0layout000{n}",
        "templateName": name,
        "schemaVersion": "v3",
    }
    for n, name in enumerate(("Clean", "Bold", "Newsroom"), start=1)
)
"""``GET /v1/smartlayouts`` items: ``templateId``, ``templateName``, ``schemaVersion`` [doc]."""

TEXT_STYLES: tuple[dict[str, str], ...] = (
    {"id": "2c4e6a8b-0d1f-4a3c-8e5b-7d9f1a3c5e70", "name": "Default"},
    {"id": "4e6a8c0d-2f1b-4c3e-9a5d-8f0b2d4f6a81", "name": "Bold Caption"},
    {"id": "6a8c0e2f-4b3d-4e5a-8c7f-0b2d4f6a8c92", "name": "Minimal White"},
)
"""``GET /v1/styles``: ``id`` and ``name`` [doc] (a ``subtitleStyleId``/``Name`` to use)."""
