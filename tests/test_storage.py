"""The delivery destinations (``orchestrator.storage``) against a real S3 server (moto, in
server mode on loopback) and a folder: put, head, delete, links, and the refusals."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.errors import ConfigError, DeliveryError, DeliveryRefusedError
from orchestrator.storage.destination import (
    Destinations,
    check_presign_days,
    check_url,
    open_destination,
)
from tests.s3_server import S3Server


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "a video.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content(path: Path) -> bytes:
    return path.read_bytes()


async def test_s3_put_is_checksummed_typed_and_linked(s3: S3Server, video: Path) -> None:
    """A put lands under prefix + key as video/mp4 with the store's sha256 equal to ours; head,
    exists and delete see it; the link is the object's URL at the endpoint."""
    dest = await open_destination("s3://videos/campaign/")
    try:
        stored = await dest.put(video, "anna-1.mp4", sha256=sha(video))
        assert stored.key == "campaign/anna-1.mp4"
        assert stored.sha256 == sha(video) and stored.bytes == len(content(video))
        assert stored.url == f"{s3.url}/videos/campaign/anna-1.mp4" and stored.expires is None
        head = s3.client.head_object(Bucket="videos", Key="campaign/anna-1.mp4")
        assert head["ContentType"] == "video/mp4"
        assert s3.objects("videos")["campaign/anna-1.mp4"] == content(video)
        info = await dest.head("anna-1.mp4")
        assert info is not None and info.bytes == len(content(video))
        assert info.sha256 in (None, sha(video))
        await dest.delete("anna-1.mp4")
        assert not await dest.exists("anna-1.mp4")
        await dest.delete("anna-1.mp4")  # deleting what is gone is fine
    finally:
        await dest.aclose()


async def test_presigned_and_public_links(s3: S3Server, video: Path) -> None:
    """--deliver-presign gives a SigV4 URL with its expiry recorded; --deliver-public-url gives
    BASE + key, which never expires."""
    signed = await open_destination("s3://videos/p/", presign_s=2 * 86400)
    public = await open_destination("s3://videos/p/", public_url_base="https://cdn.example/v/")
    try:
        stored = await signed.put(video, "x.mp4")
        query = parse_qs(urlsplit(stored.url).query)
        assert query["X-Amz-Expires"] == [str(2 * 86400)]
        assert stored.expires is not None and abs(stored.expires - (time.time() + 2 * 86400)) < 60
        url, expires = await public.link("x y.mp4")
        assert (url, expires) == ("https://cdn.example/v/p/x%20y.mp4", None)
    finally:
        await signed.aclose()
        await public.aclose()


async def test_a_missing_bucket_is_refused_and_a_503_is_retryable(
    s3: S3Server, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NoSuchBucket needs a person (refused); a 503 SlowDown is tried again (DeliveryError)."""
    dest = await open_destination("s3://no-such-bucket/")
    with pytest.raises(DeliveryRefusedError, match="NoSuchBucket"):
        await dest.put(video, "a.mp4")
    await dest.aclose()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.proxy.url)
    s3.proxy.fail_puts = 1
    dest = await open_destination("s3://videos/")
    try:
        with pytest.raises(DeliveryError) as caught:
            await dest.put(video, "a.mp4")
        assert caught.value.retryable and "SlowDown" in str(caught.value)
        await dest.put(video, "a.mp4")  # the next attempt goes through
        assert s3.proxy.puts_forwarded == 1
    finally:
        await dest.aclose()


async def test_a_changed_local_file_is_refused(s3: S3Server, video: Path) -> None:
    """A file whose sha256 is not the one its download recorded is never uploaded."""
    dest = await open_destination("s3://videos/")
    try:
        with pytest.raises(DeliveryRefusedError, match="the local file changed"):
            await dest.put(video, "a.mp4", sha256="0" * 64)
        assert s3.objects("videos") == {}
    finally:
        await dest.aclose()


async def test_file_destination_copies_verifies_and_deletes(tmp_path: Path, video: Path) -> None:
    """file:// copies through a .part name, re-reads and hashes what landed; keys cannot leave
    the folder."""
    share = tmp_path / "share"
    dest = await open_destination(share.as_uri() + "/")
    stored = await dest.put(video, "sub/b.mp4", sha256=sha(video))
    assert content(share / "sub" / "b.mp4") == content(video)
    assert stored.url == (share / "sub" / "b.mp4").as_uri()
    assert not list(share.rglob(".*.part"))
    assert await dest.exists("sub/b.mp4")
    await dest.delete("sub/b.mp4")
    assert not await dest.exists("sub/b.mp4")
    for bad in ("../escape.mp4", "/etc/x.mp4", "a/../../b.mp4"):
        with pytest.raises(DeliveryRefusedError, match="leave"):
            await dest.put(video, bad)


def test_urls_and_presign_days_are_checked_in_one_line() -> None:
    """A scheme we cannot deliver to, a bucketless s3 URL, more than 7 days: one line each."""
    with pytest.raises(ConfigError, match=r"give s3://BUCKET/PREFIX/ .* or file:///PATH/"):
        check_url("gs://bucket/")
    with pytest.raises(ConfigError, match="name the bucket"):
        check_url("s3:///prefix/")
    with pytest.raises(ConfigError, match="at most 7 days"):
        check_presign_days(8)
    assert check_presign_days(7) == 7 * 86400


async def test_destinations_open_once_per_url(tmp_path: Path) -> None:
    """A run given --deliver delivers there, even a row recorded for another (a wrong bucket
    can be corrected); a run not given it, where the row's record says; each opened once."""
    mine, other = (tmp_path / "a").as_uri() + "/", (tmp_path / "b").as_uri() + "/"
    found, recorded_only = Destinations(mine), Destinations()
    try:
        first = await found.get(None)
        assert first is not None and first.url == mine
        assert await found.get(other) is first
        second = await recorded_only.get(other)
        assert second is not None and second.url == other
        assert await recorded_only.get(other) is second
        assert await Destinations().get(None) is None
    finally:
        await found.aclose()
        await recorded_only.aclose()


def test_help_and_a_run_without_s3_never_import_boto3(tmp_path: Path) -> None:
    """``orchestrator --help`` and ``run --help`` do without the AWS SDK (start-up cost); so
    does a file:// destination."""
    code = (
        "import sys, anyio\n"
        "from orchestrator.cli.main import main\n"
        "from orchestrator.storage.destination import open_destination\n"
        "for args in (['--help'], ['run', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "anyio.run(open_destination, sys.argv[1])\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, tmp_path.as_uri() + "/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
