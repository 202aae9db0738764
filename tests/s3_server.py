"""A real S3 server for the delivery tests: moto in server mode on a free loopback port, and a
small HTTP proxy in front of it that can answer a PUT with 503 (a store in trouble) or hold it
unanswered (a run killed mid-upload), and counts the PUTs it let through.

The proxy speaks just enough HTTP/1.1: one request per connection (it asks the server to close,
so the client opens a new connection for the next one), ``Expect: 100-continue`` answered here.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"


@dataclass
class S3Proxy:
    """See the module docstring; ``fail_puts``: answer the next N PUTs 503 SlowDown;
    ``hold_after``: let this many PUTs through, hold every later one unanswered."""

    upstream: tuple[str, int]
    fail_puts: int = 0
    hold_after: int | None = None
    puts_forwarded: int = 0
    puts_failed: int = 0
    _admitted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closing.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        # OSError: the client went away mid-request (a run killed mid-upload): nothing to answer
        with contextlib.suppress(OSError):
            self._relay(conn)

    def _relay(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            request_line = reader.readline()
            if not request_line:
                return
            headers: list[bytes] = []
            while (line := reader.readline()) not in (b"\r\n", b""):
                headers.append(line)
            names = {h.split(b":", 1)[0].strip().lower(): h for h in headers}
            length = (
                int(names[b"content-length"].split(b":", 1)[1]) if b"content-length" in names else 0
            )
            if b"expect" in names:
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = reader.read(length) if length else b""
            if request_line.startswith(b"PUT "):
                with self._lock:
                    fail = self.fail_puts > 0
                    if fail:
                        self.fail_puts -= 1
                        self.puts_failed += 1
                    hold = self.hold_after is not None and self._admitted >= self.hold_after
                    if not fail and not hold:
                        self._admitted += 1
                if fail:
                    error = b"<Error><Code>SlowDown</Code><Message>busy</Message></Error>"
                    conn.sendall(
                        b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(error), error)
                    )
                    return
                if hold:
                    self._closing.wait()
                    return
            kept = [h for k, h in names.items() if k not in (b"expect", b"connection")]
            with socket.create_connection(self.upstream) as up:
                up.sendall(request_line + b"".join(kept) + b"Connection: close\r\n\r\n" + body)
                answer = b""
                while chunk := up.recv(65536):
                    answer += chunk
            if request_line.startswith(b"PUT "):
                with self._lock:
                    self.puts_forwarded += 1
            conn.sendall(answer)


@dataclass
class S3Server:
    """moto's S3 on ``url``; ``proxy`` in front of it; ``client`` talks to moto directly."""

    url: str
    proxy: S3Proxy
    client: Any

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        listed = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {
            o["Key"]: self.client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in listed
        }


def aws_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables a user would set for an S3-compatible store."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto on a free loopback port, with its proxy; stopped after."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    proxy = S3Proxy((host, port))
    url = f"http://{host}:{port}"
    # moto's state is per process, not per server: start empty
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        yield S3Server(url=url, proxy=proxy, client=client)
    finally:
        client.close()
        proxy.close()
        server.stop()
