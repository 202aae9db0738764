"""The network seam: the only module that imports aiohttp's client (httpx's transport idea).

``Transport`` is what ``client.PictoryClient`` needs from the network: send a request and read its
answer, stream a download to a file, stream a file up to a signed URL, open and close. It moves
bytes; what an HTTP *status* means is decided by ``client``.

``AiohttpTransport`` is the one every run uses: it owns the one ``aiohttp.ClientSession``, resumes
downloads with ``Range`` and streams uploads. ``_translate`` is the one place aiohttp's exceptions
become ours, through ``lost_request_error`` and ``undelivered_error``, which a transport for tests
(``tests/memory_transport.py``) raises the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

import aiofiles
import aiohttp
import anyio

from orchestrator.config import ApiConfig
from orchestrator.errors import (
    AmbiguousError,
    ApiError,
    DownloadError,
    LinkExpiredError,
    NotAVideoError,
    NotDeliveredError,
    PermanentError,
    TransientError,
)
from orchestrator.files import PRIVATE_FILE_MODE, move_into_place, private_opener, writing

CHUNK_BYTES = 256 * 1024
ISO_BMFF_HEAD_BYTES = 8
"""A box header: 4 bytes of size and 4 of type (``ftyp`` first in an MP4)."""
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None
    date: str | None = None
    """The answer's ``Date`` header: the server's clock (``orchestrator doctor`` reads it)."""


@dataclass(frozen=True, slots=True)
class DownloadResult:
    bytes: int
    sha256: str


class Transport(Protocol):
    """Moves bytes for ``PictoryClient``, which opens it with ``__aenter__`` and closes it with
    ``__aexit__`` (``async with``). Failures to move bytes are our exceptions: a request that never
    left is ``undelivered_error``, an answer lost after sending is ``lost_request_error``."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        headers: dict[str, str],
        json: Any = None,
        data: bytes | None = None,
        creates_job: bool = False,
    ) -> Answer:
        """Send one request and read its whole (small) answer, whatever its status.
        ``endpoint`` names it in errors; ``creates_job`` makes a lost answer ambiguous."""
        ...

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        video: bool = False,
        into: Path | None = None,
        resume: bool = True,
        sync: bool = True,
    ) -> DownloadResult:
        """Stream ``url`` (no API credentials) into ``dest``; ``video``: it must be an MP4.
        ``into``: once complete and on disk, ``dest`` is renamed to it (the folder fsynced).
        ``resume=False``: the caller knows ``dest`` does not exist (no look for it).
        ``sync=False``: no fsync; the caller makes the file durable (``files.sync_files``)."""
        ...

    async def upload(self, url: str, path: Path, content_type: str) -> int:
        """Stream the file at ``path`` to a signed ``url`` with PUT; returns the bytes sent."""
        ...


class AiohttpTransport:
    """One aiohttp session for everything. Use as ``async with AiohttpTransport(api) as t``."""

    def __init__(self, api: ApiConfig) -> None:
        self._api = api
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AiohttpTransport:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._api.connect_timeout_s, sock_read=self._api.read_timeout_s
        )
        self._session = aiohttp.ClientSession(
            timeout=timeout,
            headers={"User-Agent": self._api.user_agent},
            connector=aiohttp.TCPConnector(limit=0),
            # Pictory authenticates by header and signs its CDN links: no cookie is ever needed,
            # and a cookie jar filters and stores on every request (CPU per row).
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        # aiohttp silently resends a PUT ("idempotent" in HTTP) once when the server drops the
        # connection. PUT /v1/video/render bills a render, so only retry.py decides on resends.
        # It is a private switch: refuse to run on an aiohttp without it rather than risk it.
        if not hasattr(self._session, "_retry_connection"):
            raise RuntimeError("this aiohttp has no _retry_connection switch; pin aiohttp<4")
        self._session._retry_connection = False
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Transport used outside `async with`")
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        headers: dict[str, str],
        json: Any = None,
        data: bytes | None = None,
        creates_job: bool = False,
    ) -> Answer:
        """Send one request and read the whole (small) answer."""
        session = self._require_session()
        try:
            async with session.request(method, url, json=json, data=data, headers=headers) as resp:
                raw = await resp.read()
                headers_in = resp.headers
                return Answer(
                    resp.status, raw, headers_in.get("Retry-After"), headers_in.get("Date")
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, endpoint, creates_job) from exc

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        video: bool = False,
        into: Path | None = None,
        resume: bool = True,
        sync: bool = True,
    ) -> DownloadResult:
        """Stream ``url`` into ``dest``, resuming with ``Range`` from what ``dest`` already holds.

        No API credentials are sent. Only http(s) is followed, with at most ``MAX_REDIRECTS``
        redirects. The byte count is checked against ``Content-Length``; a short body raises
        DownloadError and leaves the partial file for the next attempt to resume from. A 206
        is appended only when its ``Content-Range`` starts where the partial file ends; any
        other range drops the partial file and raises DownloadError (the next attempt asks for
        the whole file). That header is HTTP's rule for a 206 (RFC 9110 §15.3.7), not something
        Pictory states (the contract's §2 step 7 leaves the CDN's ``Range`` to us): a CDN that
        answers 206 without it, or ignores ``Range`` with a 200, costs a whole download, never a
        spliced video.

        With ``video``, the body must be an MP4: an answer of type ``text/html`` (a share page,
        a login or error page; a resumed one too) or one that does not start with an ISO-BMFF
        ``ftyp`` box raises NotAVideoError and leaves no partial file. The first bytes are
        checked as they arrive.

        With ``into``, the complete file is renamed to ``into`` and the folder fsynced in the same
        worker-thread call that writes its last bytes: a small video costs that one thread hop.
        A count that does not match ``Content-Length`` is found before the rename.

        ``resume=False`` skips looking for a partial file (a worker-thread hop): the caller knows
        there is none. Were there one, it would be written over, never appended to.

        ``sync=False`` leaves the fsyncs to the caller (the download stage hands the file to the
        ledger, which fsyncs it with the record naming it, in the thread call that writes that
        record): a video that arrived whole in one gathered chunk is then written and renamed
        in the event loop itself, with no worker-thread hop (page-cache writes of at most
        ``CHUNK_BYTES``; a hop and the GIL handed back and forth cost more CPU than the write).
        """
        _require_http(url)
        # In a worker thread: a lookup in the videos folder waits while another download's
        # rename holds the folder (measured ~0.1 ms in the loop under load).
        have = await anyio.to_thread.run_sync(_size_or_zero, dest) if resume else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        session = self._require_session()
        try:
            async with session.get(url, headers=headers, max_redirects=MAX_REDIRECTS) as resp:
                if resp.status in (403, 404, 410):
                    raise LinkExpiredError("download link refused or expired", status=resp.status)
                if resp.status == 416:
                    await anyio.to_thread.run_sync(_size_or_zero, dest, True)
                    raise DownloadError("server refused our resume range; restarting", status=416)
                if resp.status >= 400:
                    raise (TransientError if resp.status >= 500 else PermanentError)(
                        "download refused", status=resp.status
                    )
                append = resp.status == 206 and have > 0
                if append and _range_start(resp.headers.get("Content-Range")) != have:
                    # Not the rest of our file: appending it would record a spliced video.
                    await anyio.to_thread.run_sync(_size_or_zero, dest, True)
                    raise DownloadError(
                        "server answered another range than the one asked for; restarting",
                        status=206,
                    )
                check = video and not append  # a resumed file's first bytes passed already
                if video and resp.content_type == "text/html":
                    raise NotAVideoError(
                        "the video URL answered a web page (text/html), not the video",
                        status=resp.status,
                    )
                hasher = await _hash_prefix(dest) if append else hashlib.sha256()
                written = have if append else 0
                expected = resp.content_length
                out = _PartFile(dest, append=append, into=into, sync=sync)
                head: bytes | None = b"" if check else None  # held back until checked
                try:
                    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
                        if head is not None:
                            head += chunk
                            if len(head) < ISO_BMFF_HEAD_BYTES:
                                continue
                            _require_iso_bmff(head)
                            chunk, head = head, None
                        hasher.update(chunk)
                        await out.write(chunk)
                        written += len(chunk)
                    if head is not None:
                        _require_iso_bmff(head)  # a body shorter than a box header
                    if expected is not None and written - (have if append else 0) != expected:
                        raise DownloadError(f"download cut short ({written} bytes so far)")
                    await out.finish()
                finally:
                    await out.close()
        except NotAVideoError:
            await anyio.to_thread.run_sync(_size_or_zero, dest, True)
            raise
        except ApiError:
            raise
        except aiohttp.TooManyRedirects as exc:
            raise PermanentError(f"download redirected more than {MAX_REDIRECTS} times") from exc
        except aiohttp.RedirectClientError as exc:  # to a non-http(s) or malformed URL
            raise PermanentError(f"download redirected to a URL we do not follow ({exc})") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DownloadError(f"download interrupted: {type(exc).__name__}") from exc
        return DownloadResult(bytes=written, sha256=hasher.hexdigest())

    async def upload(self, url: str, path: Path, content_type: str) -> int:
        """Stream the file at ``path`` to a signed ``url`` with PUT; never read whole into memory.

        Returns the bytes sent. A dropped connection is a TransientError: an upload to a signed
        URL replaces the object, so sending it again is safe.
        """
        _require_http(url)
        size = (await anyio.Path(path).stat()).st_size
        session = self._require_session()
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self._api.connect_timeout_s,
            sock_read=self._api.upload_timeout_s,
        )
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        try:
            async with aiofiles.open(path, "rb") as source:  # closed here, whatever happens

                async def chunks() -> AsyncGenerator[bytes, None]:
                    while chunk := await source.read(CHUNK_BYTES):
                        yield chunk

                async with session.put(
                    url, data=chunks(), headers=headers, timeout=timeout
                ) as resp:
                    await resp.read()
                    if resp.status in (401, 403):
                        raise LinkExpiredError("upload link refused or expired", status=resp.status)
                    if resp.status >= 400:
                        raise (TransientError if resp.status >= 500 else PermanentError)(
                            "upload refused", status=resp.status
                        )
        except ApiError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"upload interrupted: {type(exc).__name__}") from exc
        return size


def _translate(exc: BaseException, endpoint: str, creates_job: bool) -> ApiError:
    """aiohttp's exceptions → ours. The only place that knows aiohttp's hierarchy."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return undelivered_error(endpoint, name)
    return lost_request_error(endpoint, name, creates_job=creates_job)


def undelivered_error(endpoint: str, cause: str) -> ApiError:
    """The request never left (connection refused, DNS, connect timeout): safe to send again."""
    return NotDeliveredError(f"could not reach the API ({cause})", endpoint=endpoint)


def lost_request_error(endpoint: str, cause: str, *, creates_job: bool) -> ApiError:
    """The connection failed after the request may have been sent (dropped, read timeout): a
    job-creating request is ambiguous (never resent), any other one transient."""
    if creates_job:
        return AmbiguousError(
            f"connection lost after the request was sent ({cause}); the job may or may not exist",
            endpoint=endpoint,
        )
    return TransientError(f"connection problem ({cause})", endpoint=endpoint)


def _range_start(content_range: str | None) -> int | None:
    """The first byte a 206's ``Content-Range: bytes FIRST-LAST/LENGTH`` holds (RFC 9110
    §14.4); None when there is no such header or it says something else."""
    unit, _, spec = (content_range or "").strip().partition(" ")
    first = spec.partition("-")[0].strip()
    if unit.lower() != "bytes" or not first.isdigit():
        return None
    return int(first)


def _require_http(url: str) -> None:
    if url.startswith(("https://", "http://")):  # nearly every URL: no urlsplit (~1 % of a row)
        return
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise PermanentError(f"refusing a {scheme or 'relative'} URL; only http(s) is followed")


async def _hash_prefix(path: Path) -> Any:
    def work() -> Any:
        hasher = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(CHUNK_BYTES), b""):
                hasher.update(block)
        return hasher

    return await anyio.to_thread.run_sync(work)


class _PartFile:
    """A download's partial file, written in few worker-thread hops (each hop costs CPU).

    Chunks are gathered up to ``CHUNK_BYTES`` and written by one thread call; ``finish`` writes the
    rest, fsyncs, closes and (with ``into``) renames the file into place in one more. A small
    video costs one hop, not one per chunk, flush, fsync, close and rename. ``close`` (always
    called) writes what was gathered, so an interrupted download leaves every byte it received
    for the ``Range`` resume.
    """

    def __init__(self, path: Path, *, append: bool, into: Path | None, sync: bool = True) -> None:
        self._path = path
        self._into = into
        self._sync = sync
        self._mode = "ab" if append else "wb"
        self._file: IO[Any] | None = None
        self._gathered: list[bytes] = []
        self._gathered_bytes = 0
        self._closed = False

    async def write(self, chunk: bytes) -> None:
        self._gathered.append(chunk)
        self._gathered_bytes += len(chunk)
        if self._gathered_bytes >= CHUNK_BYTES:
            await anyio.to_thread.run_sync(self._write_out, False)

    async def finish(self) -> None:
        """Everything received is written (on disk unless ``sync`` is off) and renamed
        ``into`` place."""
        if not self._sync and self._file is None and self._mode == "wb":
            self._write_whole()  # all of it gathered in memory: no hop (``download``)
        else:
            await anyio.to_thread.run_sync(self._finish)

    def _finish(self) -> None:
        self._write_out(self._sync, True)
        if self._into is not None:
            with writing(self._into):
                if self._sync:
                    move_into_place(self._path, self._into)
                else:
                    os.replace(self._path, self._into)

    def _write_whole(self) -> None:
        """The gathered bytes to a new file, closed and renamed ``into`` place, unsynced."""
        with writing(self._into or self._path):
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
            try:
                view = memoryview(b"".join(self._gathered))
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            self._gathered.clear()
            self._gathered_bytes = 0
            self._closed = True
            if self._into is not None:
                os.replace(self._path, self._into)

    async def close(self) -> None:
        if not self._closed:
            with anyio.CancelScope(shield=True):  # keep the bytes even when cancelled
                try:
                    await anyio.to_thread.run_sync(self._write_out, False, True)
                finally:
                    if self._file is not None and not self._file.closed:
                        with contextlib.suppress(OSError):  # a full disk: what fit is kept
                            self._file.close()
                    self._closed = True

    def _write_out(self, sync: bool, close: bool = False) -> None:
        with writing(self._into or self._path):  # a full disk: StorageError, the part kept
            self._write_out_now(sync, close)

    def _write_out_now(self, sync: bool, close: bool) -> None:
        if self._file is None:
            # closed by close(); 0600 whatever the umask
            self._file = open(self._path, self._mode, opener=private_opener)  # noqa: SIM115
        f = self._file
        if self._gathered:
            f.write(b"".join(self._gathered))
            self._gathered.clear()
            self._gathered_bytes = 0
        if sync:
            f.flush()
            os.fsync(f.fileno())
        if sync or close:
            f.close()
            self._closed = True


def _require_iso_bmff(head: bytes) -> None:
    """An MP4 (ISO base media file) starts with a box whose type is ``ftyp``: 4 bytes of size,
    then ``ftyp``."""
    if len(head) < ISO_BMFF_HEAD_BYTES or head[4:8] != b"ftyp":
        shown = head[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
        raise NotAVideoError(f"the video URL answered bytes that are not an MP4 ({shown!r}…)")


def _size_or_zero(path: Path, remove: bool = False) -> int:
    """Size of a partial download (0 when absent); with ``remove``, delete it first."""
    if remove:
        path.unlink(missing_ok=True)
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
