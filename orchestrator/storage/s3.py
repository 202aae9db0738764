"""``s3://bucket/prefix/``: any S3-compatible store (AWS, R2, MinIO...) through boto3.

The endpoint, region and credentials are the AWS SDK's own: ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE`` and ``~/.aws/config``, SSO, instance roles (the SDK reads them; we read none),
unless ``[deliver] endpoint_url``, ``region`` or ``profile`` say otherwise. Calls run in worker
threads. The SDK's own retries are off (one attempt per call): the run's transfer policy
(``api.retry``) retries, on the run's clock, so the verdict is made in one place.

An upload is one ``PutObject`` (up to 5 GiB) with ``Content-Type`` and ``ChecksumSHA256``: the
store refuses bytes whose sha256 differs (``BadDigest``), and the checksum it echoes (or, from a
store that echoes none, the ETag, a single part's MD5) is compared with ours. A larger file goes
in parts (``upload_file``, each part checksummed by the store) and its size is checked.

This module is the one place botocore's exceptions become ours (``_translated``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from orchestrator.errors import ConfigError, DeliveryError, DeliveryRefusedError
from orchestrator.storage.objects import (
    ObjectInfo,
    Stored,
    content_type,
    file_digests,
    now_s,
    public_link,
    safe_key,
)

MAX_SINGLE_PUT_BYTES = 5 * 1024**3
"""S3's largest single PutObject; a larger file goes in parts."""
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
REFUSED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "InvalidBucketName",
        "AccountProblem",
        "InvalidToken",
        "ExpiredToken",
        "403",
        "404",
    }
)
"""Error codes that say the destination refuses us: fixing it takes a person."""

T = TypeVar("T")


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """botocore's exceptions as ours: refused (needs a person) or retryable."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"{what}: {code or status} {error.get('Message', '')}".strip()
        if code in REFUSED_CODES:
            raise DeliveryRefusedError(message, endpoint="s3", status=status) from exc
        raise DeliveryError(message, endpoint="s3", status=status) from exc
    except (
        botocore.exceptions.NoCredentialsError,
        botocore.exceptions.PartialCredentialsError,
    ) as exc:
        raise DeliveryRefusedError(
            f"{what}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "AWS_PROFILE)",
            endpoint="s3",
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:  # connection, timeouts, checksums
        raise DeliveryError(f"{what}: {exc}", endpoint="s3") from exc


class S3Destination:
    """An S3 bucket and prefix (module docstring)."""

    def __init__(
        self,
        url: str,
        client: Any,
        *,
        bucket: str,
        prefix: str,
        presign_s: float | None,
        public_url_base: str | None,
    ) -> None:
        self.url = url
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.presign_s = presign_s
        self.public_url_base = public_url_base
        self._client = client

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        bucket: str,
        prefix: str,
        presign_s: float | None,
        public_url_base: str | None,
        endpoint_url: str | None,
        region: str | None,
        profile: str | None,
    ) -> S3Destination:
        def make() -> Any:
            try:
                session = boto3.session.Session(profile_name=profile, region_name=region)
            except botocore.exceptions.ProfileNotFound as exc:
                raise ConfigError(f"--deliver {url}: {exc}") from exc
            config = botocore.config.Config(
                retries={"total_max_attempts": 1},
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                signature_version="s3v4",
            )
            return session.client("s3", endpoint_url=endpoint_url, config=config)

        client = await anyio.to_thread.run_sync(make)
        return cls(
            url,
            client,
            bucket=bucket,
            prefix=prefix,
            presign_s=presign_s,
            public_url_base=public_url_base,
        )

    def full_key(self, key: str) -> str:
        return self.prefix + safe_key(key)

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        def guarded() -> T:
            with _translated(what):
                return fn()

        return await anyio.to_thread.run_sync(guarded)

    async def put(self, path: Path, key: str, *, sha256: str | None = None) -> Stored:
        full = self.full_key(key)
        where = f"s3://{self.bucket}/{full}"
        size, digest, md5 = await anyio.to_thread.run_sync(
            functools.partial(file_digests, path, md5=True)
        )
        if sha256 is not None and sha256 != digest:
            raise DeliveryRefusedError(
                f"{path}: its sha256 is {digest}, the download recorded {sha256}: the local file "
                "changed; remove it and run again to download it anew"
            )
        checksum = base64.b64encode(bytes.fromhex(digest)).decode("ascii")
        if size <= MAX_SINGLE_PUT_BYTES:
            answer = await self._call(where, lambda: self._put_one(path, full, size, checksum))
            echoed = answer.get("ChecksumSHA256")
            etag = str(answer.get("ETag", "")).strip('"')
            if echoed is not None and echoed != checksum:
                raise DeliveryError(f"{where}: the store kept sha256 {echoed}, we sent {checksum}")
            if echoed is None and etag and "-" not in etag and etag != md5:
                raise DeliveryError(f"{where}: the store's ETag {etag} is not our MD5 {md5}")
        else:
            await self._call(where, lambda: self._put_parts(path, full))
            info = await self.head(key)
            if info is None or info.bytes != size:
                raise DeliveryError(
                    f"{where}: the store holds {info and info.bytes} bytes of {size}"
                )
        url, expires = await self.link(key)
        return Stored(key=full, url=url, bytes=size, sha256=digest, expires=expires)

    def _put_one(self, path: Path, full: str, size: int, checksum: str) -> Any:
        with path.open("rb") as body:
            return self._client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=body,
                ContentLength=size,
                ContentType=content_type(full),
                ChecksumSHA256=checksum,
            )

    def _put_parts(self, path: Path, full: str) -> None:
        self._client.upload_file(
            str(path),
            self.bucket,
            full,
            ExtraArgs={"ContentType": content_type(full), "ChecksumAlgorithm": "SHA256"},
            Config=TransferConfig(multipart_threshold=MAX_SINGLE_PUT_BYTES),
        )

    async def head(self, key: str) -> ObjectInfo | None:
        full = self.full_key(key)

        def head() -> ObjectInfo | None:
            try:
                answer = self._client.head_object(
                    Bucket=self.bucket, Key=full, ChecksumMode="ENABLED"
                )
            except botocore.exceptions.ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey"):
                    return None
                raise
            echoed = answer.get("ChecksumSHA256")
            sha = None
            if isinstance(echoed, str) and "-" not in echoed:
                sha = base64.b64decode(echoed).hex()
            return ObjectInfo(bytes=int(answer.get("ContentLength", 0)), sha256=sha)

        return await self._call(f"s3://{self.bucket}/{full}", head)

    async def exists(self, key: str) -> bool:
        return await self.head(key) is not None

    async def delete(self, key: str) -> None:
        full = self.full_key(key)
        await self._call(
            f"s3://{self.bucket}/{full}",
            lambda: self._client.delete_object(Bucket=self.bucket, Key=full),
        )

    async def link(self, key: str) -> tuple[str, float | None]:
        full = self.full_key(key)
        if self.public_url_base:
            return public_link(self.public_url_base, full), None
        if self.presign_s is not None:
            expires_in = int(self.presign_s)
            url = await self._call(
                f"s3://{self.bucket}/{full}",
                lambda: self._client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": full},
                    ExpiresIn=expires_in,
                ),
            )
            return str(url), now_s() + expires_in
        endpoint = str(self._client.meta.endpoint_url).rstrip("/")
        return f"{endpoint}/{quote(self.bucket)}/{quote(full)}", None

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._client.close)
