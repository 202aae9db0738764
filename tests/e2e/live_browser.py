"""Helpers for the live page's browser tests (local and shared): start ``orchestrator serve`` as
a user does, read what the page shows, check it has no external reference and passes axe-core.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

SERVE_START_S = 30.0


@contextmanager
def serving(args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """``orchestrator serve ARGS --port 0`` in a process of its own; yields the page's URL."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", *args, "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "serving the live page at URL; ..." (or EOF)
        if "http://" not in line:
            process.wait(timeout=SERVE_START_S)
            pytest.fail(f"serve did not start: {line}{log.read_text()}")
        yield line.split("at ", 1)[1].split(" ", 1)[0].rstrip(";")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def shown(page: Any, key: str) -> str:
    """The big number of the summary card ``key`` (done, rate, renders, eta)."""
    return str(page.locator(f"[data-value='{key}']").inner_text())


def wait_until(page: Any, check: Any, timeout_s: float, what: str) -> None:
    """Poll ``check(page)`` (the page redraws itself) until it is true."""
    deadline = time.monotonic() + timeout_s
    while not check(page):
        if time.monotonic() > deadline:
            pytest.fail(f"the live page never showed {what}: {page.inner_text('main')[:2000]}")
        page.wait_for_timeout(100)


def assert_no_external_reference(page: Any, base: str, *, links: bool = True) -> None:
    """Every ``src`` (and with ``links``, every ``href``) on the page stays on its own server
    (or is relative, or an anchor): the page loads nothing from elsewhere."""
    origin = urlsplit(base).netloc
    selector = "[src],[href]" if links else "[src]"
    refs = page.evaluate(
        """s => [...document.querySelectorAll(s)].map(e =>
            (e.getAttribute('src') || e.getAttribute('href')))""",
        selector,
    )
    for ref in refs:
        parts = urlsplit(ref)
        assert not parts.scheme or (parts.scheme == "http" and parts.netloc == origin), ref
        assert not ref.startswith("//"), ref


def assert_accessible(page: Any) -> None:
    """axe-core (bundled with axe-playwright-python, nothing fetched) finds no violation."""
    axe_module = pytest.importorskip(
        "axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed"
    )
    results = axe_module.Axe().run(page)
    violations = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
    ]
    assert not violations, violations
