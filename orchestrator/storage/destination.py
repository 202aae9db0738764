"""A delivery destination: ``open_destination(url)`` and the ``file://`` store.

``open_destination`` is the one place a ``--deliver`` URL becomes a store:

- ``s3://bucket/prefix/``: ``storage.s3.S3Destination`` (any S3-compatible store);
- ``file:///path/``: ``FileDestination``, a folder (a mounted share).

Every store answers the same small async API, used by the deliver stage (``run.stages.deliver``)
and by the commands that erase or check delivered objects:

- ``put(path, key, *, sha256=None)`` → ``Stored``: the file under ``prefix + key``, content type
  ``video/mp4`` (by extension), its checksum verified by the store (``file://``: re-read and
  hashed); raises ``DeliveryError`` (retryable) or ``DeliveryRefusedError``;
- ``head(key)`` → ``ObjectInfo | None`` (size, sha256 when the store tells it) and
  ``exists(key)``;
- ``delete(key)``: gone (a key that is not there is fine);
- ``link(key)`` → ``(url, expires)``: what results.csv shows (``public_url_base`` + key when set;
  else a presigned URL when ``presign_s`` is set; else the object's own URL);
- ``aclose()``.

Keys are relative (``first-42.mp4``); the store adds its prefix. A key that would leave the
prefix (``..``, an absolute path) is refused.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import anyio

from orchestrator.errors import ConfigError, DeliveryError, DeliveryRefusedError
from orchestrator.storage.objects import (
    ObjectInfo,
    Stored,
    file_digests,
    public_link,
    safe_key,
)

MAX_PRESIGN_S = 7 * 24 * 3600
"""S3's longest presigned URL (SigV4): seven days."""
SCHEMES = ("s3", "file")


class Destination(Protocol):
    """A delivery store (module docstring)."""

    url: str
    """The destination as given (``s3://bucket/prefix/``), recorded with each delivery."""

    async def put(self, path: Path, key: str, *, sha256: str | None = None) -> Stored: ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def link(self, key: str) -> tuple[str, float | None]: ...

    async def aclose(self) -> None: ...


def check_url(url: str, *, option: str = "--deliver") -> tuple[str, str, str]:
    """``(scheme, netloc, path)`` of a destination URL; a ``ConfigError`` in one line when it is
    not one we can deliver to."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"{option} {url}: give s3://BUCKET/PREFIX/ (any S3-compatible store) or "
            "file:///PATH/ (a mounted share)"
        )
    if parts.scheme == "s3" and not parts.netloc:
        raise ConfigError(f"{option} {url}: name the bucket, as in s3://BUCKET/PREFIX/")
    if parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path):
        raise ConfigError(f"{option} {url}: give an absolute path, as in file:///mnt/share/")
    return parts.scheme, parts.netloc, unquote(parts.path)


def check_presign_days(days: float | None, *, option: str = "--deliver-presign") -> float | None:
    """``days`` as seconds; more than S3's seven days is refused in one line."""
    if days is None:
        return None
    if not 0 < days * 86400 <= MAX_PRESIGN_S:
        raise ConfigError(
            f"{option} {days:g}: a presigned URL lasts at most 7 days (S3's maximum); for a "
            "link that lasts, use --deliver-public-url BASE (a public bucket or a CDN)"
        )
    return days * 86400


async def open_destination(
    url: str,
    *,
    presign_s: float | None = None,
    public_url_base: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
) -> Destination:
    """The store ``url`` names (module docstring). Checks the URL; an ``s3://`` store's SDK is
    imported only here."""
    scheme, netloc, path = check_url(url)
    if scheme == "file":
        if presign_s is not None:
            raise ConfigError(f"--deliver-presign: {url} is a folder; presigning is for s3://")
        return FileDestination(url, Path(path), public_url_base=public_url_base)
    from orchestrator.storage.s3 import S3Destination  # boto3: only when delivering to S3

    return await S3Destination.open(
        url,
        bucket=netloc,
        prefix=path.lstrip("/"),
        presign_s=presign_s,
        public_url_base=public_url_base,
        endpoint_url=endpoint_url,
        region=region,
        profile=profile,
    )


class FileDestination:
    """A folder (a mounted share): a put copies to ``.KEY.part``, fsyncs, renames, then reads
    the file back and compares its sha256. The one place its ``OSError`` become ours."""

    def __init__(self, url: str, root: Path, *, public_url_base: str | None = None) -> None:
        self.url = url
        self.root = root
        self.public_url_base = public_url_base

    async def put(self, path: Path, key: str, *, sha256: str | None = None) -> Stored:
        target = self.root / safe_key(key)
        size, digest = await anyio.to_thread.run_sync(_copy_verified, path, target, sha256)
        url, expires = await self.link(key)
        return Stored(key=str(target), url=url, bytes=size, sha256=digest, expires=expires)

    async def head(self, key: str) -> ObjectInfo | None:
        target = self.root / safe_key(key)
        try:
            size = (await anyio.Path(target).stat()).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeliveryError(f"{target}: {exc.strerror}", endpoint="file") from exc
        return ObjectInfo(bytes=size)

    async def exists(self, key: str) -> bool:
        return await self.head(key) is not None

    async def delete(self, key: str) -> None:
        target = anyio.Path(self.root / safe_key(key))
        try:
            await target.unlink(missing_ok=True)
        except OSError as exc:
            raise DeliveryError(f"{target}: {exc.strerror}", endpoint="file") from exc

    async def link(self, key: str) -> tuple[str, float | None]:
        if self.public_url_base:
            return public_link(self.public_url_base, safe_key(key)), None
        return (self.root / safe_key(key)).as_uri(), None

    async def aclose(self) -> None:
        return None


def _copy_verified(source: Path, target: Path, sha256: str | None) -> tuple[int, str]:
    """Copy to ``.NAME.part`` beside ``target``, fsync, rename, then hash what landed."""
    part = target.with_name(f".{target.name}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, part)  # the kernel's copy (sendfile) where it can
        with part.open("rb+") as landed_file:
            os.fsync(landed_file.fileno())
        os.replace(part, target)
        size, landed, _ = file_digests(target)
    except FileNotFoundError as exc:
        raise DeliveryRefusedError(
            f"{exc.filename}: no such file or folder", endpoint="file"
        ) from exc
    except PermissionError as exc:
        raise DeliveryRefusedError(f"{exc.filename}: permission denied", endpoint="file") from exc
    except OSError as exc:
        raise DeliveryError(f"{target}: {exc.strerror}", endpoint="file") from exc
    expected = sha256 or file_digests(source)[1]
    if landed != expected:
        raise DeliveryError(f"{target}: sha256 {landed} after copying, expected {expected}")
    return size, landed


class Destinations:
    """A run's destinations, opened on first use and closed together: the one it was given
    (``url``, None: no ``--deliver``), else the one a row's ``downloaded`` record names (a
    resume not told ``--deliver`` again). Every one is opened with the same ``settings``
    (``open_destination``'s keywords)."""

    def __init__(self, url: str | None = None, **settings: object) -> None:
        if url is not None:
            check_url(url)
        self.url = url
        self._settings = settings
        self._open: dict[str, Destination] = {}
        self._lock = anyio.Lock()

    async def get(self, recorded: str | None) -> Destination | None:
        """The destination for a row whose ``downloaded`` record names ``recorded``: this run's
        (a run given ``--deliver`` again may correct a wrong one), else the recorded one (None:
        neither)."""
        url = self.url or recorded
        if url is None:
            return None
        async with self._lock:
            found = self._open.get(url)
            if found is None:
                found = self._open[url] = await open_destination(url, **self._settings)  # type: ignore[arg-type]
        return found

    async def aclose(self) -> None:
        for destination in self._open.values():
            await destination.aclose()
        self._open.clear()
