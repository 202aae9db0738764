"""What every delivery store shares: the answers (``ObjectInfo``, ``Stored``), keys kept
inside their prefix, content types, file digests and links. Imports ``errors`` only."""

from __future__ import annotations

import hashlib
import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from orchestrator.errors import DeliveryRefusedError

HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """What a store tells of an object: its size, and its sha256 (hex) when it keeps one."""

    bytes: int
    sha256: str | None = None


@dataclass(frozen=True)
class Stored:
    """A verified object: where it is and the link results.csv shows."""

    key: str
    """The object's full key (prefix included) or, for ``file://``, its path."""
    url: str
    bytes: int
    sha256: str
    expires: float | None = None
    """When ``url`` stops working (seconds since the epoch): a presigned URL's expiry."""


def safe_key(key: str) -> str:
    """``key`` as a relative POSIX key inside the prefix; refuses one that would leave it."""
    parts = PurePosixPath(key.replace("\\", "/")).parts
    if not parts or parts[0] == "/" or any(p in ("..", ".", "") for p in parts):
        raise DeliveryRefusedError(f"object key {key!r} would leave the destination's prefix")
    return "/".join(parts)


def content_type(key: str) -> str:
    """``video/mp4`` for a video; what the extension says otherwise."""
    if key.lower().endswith(".mp4"):
        return "video/mp4"
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def file_digests(path: Path, *, md5: bool = False) -> tuple[int, str, str]:
    """``(size, sha256 hex, md5 hex or "")`` of a file, read once (blocking: call in a
    thread)."""
    sha = hashlib.sha256()
    second = hashlib.md5(usedforsecurity=False) if md5 else None
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            sha.update(chunk)
            if second is not None:
                second.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest(), second.hexdigest() if second is not None else ""


def public_link(base: str, key: str) -> str:
    """``BASE`` + the key, each part URL-quoted (``--deliver-public-url``)."""
    return base.rstrip("/") + "/" + quote(key)


def now_s() -> float:
    """Wall-clock seconds since the epoch (a presigned URL's expiry is a wall-clock time)."""
    return time.time()
