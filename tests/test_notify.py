"""The notification's body, and that a failed one is logged, never raised."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from orchestrator.events import ListSink
from orchestrator.report.notify import build_payload, outcome, send


def test_payload_has_slack_text_and_structured_counts() -> None:
    """`text` reads as one line for a chat channel; counts come per status, zeros included."""
    payload = build_payload(
        event=outcome(awaiting_approval=False, interrupted=False, stop_reason="halt policy: x"),
        run_dir=Path("runs/nov"),
        counts=Counter({"done": 7, "failed": 3}),
        started=10,
        elapsed_s=62.0,
        requests=55,
        reason="halt policy: x",
        report=Path("runs/nov/report.html"),
        approve=None,
    )
    assert payload["event"] == "halted"
    assert payload["counts"] == {"done": 7, "failed": 3, "ambiguous": 0, "pending": 0}
    assert payload["text"] == (
        "orchestrator: runs/nov halted: 7 done, 3 failed, 0 ambiguous, 0 pending of 10 rows "
        "in 62 s (halt policy: x). Report: runs/nov/report.html"
    )


async def test_unreachable_receiver_is_logged_without_the_url_path() -> None:
    """Connection refused: send returns False and logs the host only (the path may be a key)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = ListSink()
    ok = await send(f"http://127.0.0.1:{port}/hooks/key-123", {"text": "x"}, sink, timeout_s=2)
    assert not ok
    kind, fields = sink.events[-1]
    assert kind == "notify_failed" and fields["host"] == "127.0.0.1"
    assert "key-123" not in str(fields)


def test_notify_url_must_be_http_and_unknown_keys_are_named(tmp_path: Path) -> None:
    """[notify] url takes http(s) only; a typo in [notify] is an error naming the key."""
    path = tmp_path / "c.toml"
    path.write_text('[notify]\nurl = "file:///etc/passwd"\n')
    with pytest.raises(ConfigError, match=r"key 'notify.url'"):
        load_config(path)
    path.write_text('[notify]\nurl = "https://hooks.example.com/x"\nretries = 3\n')
    with pytest.raises(ConfigError, match=r"unknown key 'notify.retries'"):
        load_config(path)
    path.write_text('[notify]\nurl = "https://hooks.example.com/x"\n')
    config = load_config(path)
    assert config.public_dict()["notify"]["url"] == "**********"
