"""Delivery throughput: MB/s of ``--deliver`` to a local S3 server, against a plain copy.

``python -m benchmarks.upload [--mb 64] [--files 8]`` makes FILES videos of MB/FILES each, then
times, each best of three rounds:

- ``plain copy``: ``shutil.copyfile`` + fsync into another folder (the bound: what the disk
  gives without any hashing or protocol);
- ``file://``: our ``FileDestination.put`` (copy through ``.part``, fsync, rename, read back and
  hash: about twice the bytes of a plain copy);
- ``s3://``: our ``S3Destination.put`` (hash, one checksummed PutObject each, in worker
  threads, ``--concurrency`` at a time) to moto in server mode on loopback (moto is Python, so
  this bounds the client side from below: a real store is faster to take the bytes, slower to
  reach).

Prints one markdown table with each figure beside the bound; the machine is shared, so figures
move by several percent from run to run. Needs the ``test`` extra (moto).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import boto3
from moto.server import ThreadedMotoServer

from orchestrator.storage.destination import open_destination
from orchestrator.storage.objects import file_digests

ROUNDS = 3


def _make_files(folder: Path, total_mb: int, files: int) -> list[Path]:
    size = total_mb * 1024 * 1024 // files
    paths = []
    for i in range(files):
        path = folder / f"video-{i:03d}.mp4"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def _plain_copy(paths: list[Path], target: Path) -> None:
    target.mkdir(exist_ok=True)
    for path in paths:
        copied = target / path.name
        shutil.copyfile(path, copied)
        with copied.open("rb+") as f:
            os.fsync(f.fileno())


async def _put_all(url: str, paths: list[Path], concurrency: int, digests: dict[Path, str]) -> None:
    destination = await open_destination(url)
    limit = anyio.Semaphore(concurrency)

    async def one(path: Path) -> None:
        async with limit:  # the deliver stage passes the sha256 its download recorded
            await destination.put(path, path.name, sha256=digests[path])

    try:
        async with anyio.create_task_group() as tg:
            for path in paths:
                tg.start_soon(one, path)
    finally:
        await destination.aclose()


def _best_s(run: Callable[[int], None]) -> float:
    best = float("inf")
    for round_ in range(ROUNDS):
        started = time.perf_counter()
        run(round_)
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="total megabytes (default 64)")
    parser.add_argument("--files", type=int, default=8, help="how many files (default 8)")
    parser.add_argument("--concurrency", type=int, default=4, help="uploads at once (default 4)")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs each request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_S3=endpoint,
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
            work = Path(tmp)
            paths = _make_files(work, args.mb, args.files)
            digests = {p: file_digests(p)[1] for p in paths}
            plain_s = _best_s(lambda r: _plain_copy(paths, work / f"plain-{r}"))
            file_s = _best_s(
                lambda r: anyio.run(
                    _put_all, (work / f"share-{r}").as_uri() + "/", paths, args.concurrency, digests
                )
            )
            s3_s = _best_s(
                lambda r: anyio.run(_put_all, f"s3://bench/r{r}/", paths, args.concurrency, digests)
            )
    finally:
        server.stop()
    mb = args.mb
    print(
        f"{args.files} files, {mb} MB in all, {args.concurrency} uploads at once, best of {ROUNDS}"
    )
    print("| delivery | MB/s | bound (plain copy) |")
    print("|---|---:|---:|")
    for name, seconds in (("plain copy", plain_s), ("file://", file_s), ("s3:// (moto)", s3_s)):
        print(f"| {name} | {mb / seconds:.0f} | {mb / plain_s:.0f} |")


if __name__ == "__main__":
    main()
