"""The bytes the CDN serves: one small real MP4 made distinct per job, and signed links.

Each job's video is the packaged ``assets/clip.mp4`` followed by one top-level MP4 ``free`` box
carrying the job id and its variables as JSON. Players skip ``free`` boxes, so every video stays
playable, yet no two jobs share bytes. Nothing per job is kept but the box's JSON: the bytes are
rebuilt on each download, and their SHA-256 comes from a copy of the clip's precomputed hash state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import quote

CLIP_RESOURCE = "assets/clip.mp4"
VIDEO_CONTENT_TYPE = "video/mp4"


@cache
def clip_bytes() -> bytes:
    """The packaged base clip (1 s, 160×90, H.264 + AAC, faststart)."""
    return resources.files("orchestrator.simulator").joinpath(CLIP_RESOURCE).read_bytes()


@cache
def _clip_hash() -> hashlib._Hash:
    return hashlib.sha256(clip_bytes())


def free_box(payload: str) -> bytes:
    """A top-level ``free`` box holding ``payload`` (UTF-8)."""
    data = payload.encode()
    return struct.pack(">I4s", 8 + len(data), b"free") + data


@dataclass(frozen=True, slots=True)
class VideoDigest:
    """Size and SHA-256 of a job's video, computed without building it."""

    size: int
    sha256: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256[:32]}"'


def video_digest(box: bytes) -> VideoDigest:
    h = _clip_hash().copy()
    h.update(box)
    return VideoDigest(size=len(clip_bytes()) + len(box), sha256=h.hexdigest())


def video_bytes(box: bytes) -> bytes:
    return clip_bytes() + box


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


THUMBNAIL_JPEG = base64.b64decode(
    "/9j/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcICAgHBwcGBgcHCAgICAkJCQgICAgJCQoKCgwMCwsO"
    "Dg4RERT/xABKAAEAAAAAAAAAAAAAAAAAAAAAAQEAAAAAAAAAAAAAAAAAAAAAEAEAAAAAAAAAAAAAAAAAAAAAEQEA"
    "AAAAAAAAAAAAAAAAAAAA/8AAEQgAEAAQAwEiAAIRAAMRAP/aAAwDAQACEQMRAD8AAA//2Q=="
)
"""A render's ``thumbnail`` (a JPEG, §6.2): a 16×16 grey baseline JPEG, 184 bytes."""


@cache
def thumbnail_png(width: int = 16, height: int = 9) -> bytes:
    """A tiny grey PNG (stock search thumbnails)."""
    row = b"\x00" + b"\x80\x80\x80" * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(row * height))
        + _png_chunk(b"IEND", b"")
    )


def _timestamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def subtitles(lines: list[str], kind: str, duration_s: float) -> str:
    """A real ``srt``, ``vtt`` or ``txt`` file for ``lines`` spread over ``duration_s``."""
    lines = [line for line in lines if line.strip()] or ["(no text)"]
    if kind == "txt":
        return "\n".join(lines) + "\n"
    step = duration_s / len(lines)
    cues = []
    for i, line in enumerate(lines):
        start, end = i * step, (i + 1) * step
        if kind == "srt":
            cues.append(f"{i + 1}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{line}\n")
        else:
            cues.append(f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{line}\n")
    body = "\n".join(cues)
    return body if kind == "srt" else "WEBVTT\n\n" + body


class RangeNotSatisfiable(Exception):
    """The ``Range`` header asks for bytes past the end."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` for a single ``bytes=`` range, or ``None`` for the whole body.

    Multiple ranges and malformed headers are ignored (the whole body is served, as RFC 9110
    allows); a range starting at or past the end raises ``RangeNotSatisfiable``.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0:
                raise RangeNotSatisfiable
            return max(0, size - suffix), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    if end < start:
        return None
    return start, min(end, size - 1)


class LinkSigner:
    """HMAC-signed, expiring links: ``path?expires=EPOCH_S&sig=HEX``."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def signature(self, path: str, expires: int, extra: str = "") -> str:
        message = f"{path}\n{expires}\n{extra}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def sign(self, path: str, expires: int, extra: str = "") -> str:
        """The query string for ``path`` valid until ``expires`` (epoch seconds)."""
        return f"expires={expires}&sig={self.signature(path, expires, extra)}"

    def check(self, path: str, expires: str | None, sig: str | None, extra: str = "") -> int:
        """The link's expiry if the signature matches, else ``-1``."""
        if not expires or not sig or not expires.isdigit():
            return -1
        good = self.signature(path, int(expires), extra)
        return int(expires) if hmac.compare_digest(good, sig) else -1


def quote_path(segment: str) -> str:
    return quote(segment, safe="")
