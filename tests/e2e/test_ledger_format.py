"""The ledger's format across releases: a run directory written by the previous release (format
1, ``tests/data/ledger-format-1``) resumes, and a ledger written by a newer orchestrator than
this one is refused by name through every command, never half-read."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.ledger.file import LEDGER_NAME
from orchestrator.ledger.records import LEDGER_FORMAT

from .helpers import FAST_CONFIG, justified_rerenders, read_results

REPO = Path(__file__).resolve().parents[2]
WELCOME = REPO / "jobs" / "welcome"
FIXTURE = REPO / "tests" / "data" / "ledger-format-1" / LEDGER_NAME
"""The ledger of ``jobs/welcome`` as the previous release (fec7934) left it: a first run
stopped by ``--max-renders 5`` with the test profile, then a resume with the demo profile
SIGKILLed mid-batch (see ``tests/data/ledger-format-1/ABOUT.txt``)."""


def _place_fixture(run_dir: Path) -> Path:
    """The fixture as ``run_dir``'s ledger, its run records pointing at this checkout's
    ``jobs/welcome`` (it recorded the absolute paths of the tree it was made in); every other
    line byte for byte. The folder is private, as a run makes it (a looser one is warned about)."""
    run_dir.mkdir(parents=True, mode=0o700)
    run_dir.chmod(0o700)
    lines = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True):
        record = json.loads(line)
        if record["e"] == "run":
            record["manifest"] = str(WELCOME / "manifest.csv")
            record["template"] = str(WELCOME / "welcome.pictai")
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        lines.append(line)
    ledger = run_dir / LEDGER_NAME
    ledger.write_text("".join(lines), encoding="utf-8")
    return ledger


def _events(ledger: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(FAST_CONFIG)
    config.chmod(0o600)
    return config


def test_a_run_dir_of_the_previous_release_resumes_without_rendering_twice(
    tmp_path: Path, make_sim: Any, api_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``orchestrator resume`` on the previous release's run directory: its done rows stay done
    (same file, same sha256), a row with a render job is never rendered again, and every other
    row is rendered once. The render jobs that were in flight were made by the old process's
    embedded simulator, which died with it, so they end ``job_lost`` (a real API still knows
    them, and they would be downloaded); ``--retry-failed`` then renders just those, by choice,
    and the batch is done."""
    old = _events(FIXTURE)
    assert all("format" not in e for e in old if e["e"] == "run")  # really format 1
    done = {e["row"]: e for e in old if e["e"] == "downloaded"}
    with_job = {e["row"] for e in old if e["e"] == "render_job"} - set(done)
    intents = {e["row"] for e in old if e["e"] == "render_intent"}
    assert len(done) >= 5 and with_job and intents == set(done) | with_job  # the mix we want
    sim = make_sim("test")
    api_env(sim)
    run_dir = tmp_path / "run"
    ledger = _place_fixture(run_dir)
    config = _config(tmp_path)

    assert main(["resume", str(run_dir), "--config", str(config)]) == 1, capsys.readouterr()
    results = {r["id"]: r for r in read_results(run_dir)}
    assert len(results) == 25
    rows_total = len(results)
    new = _events(ledger)[len(old) :]
    assert new[0]["e"] == "run" and new[0]["format"] == LEDGER_FORMAT
    assert not {e["row"] for e in new if e["e"] == "render_intent"} & intents  # never again
    for row, downloaded in done.items():
        assert results[row]["status"] == "done"
        assert results[row]["sha256"] == downloaded["sha256"]
    for row in with_job:
        assert results[row]["status"] == "failed"
        assert results[row]["error"].startswith("job_lost"), results[row]
    fresh = set(results) - intents
    assert {row for row in fresh if results[row]["status"] == "done"} == fresh
    assert sim.stats()["renders_started"] == len(fresh)
    assert sim.stats()["duplicate_renders"] == 0

    assert main(["resume", str(run_dir), "--config", str(config), "--retry-failed"]) == 0
    assert {r["status"] for r in read_results(run_dir)} == {"done"}
    renders = Counter(e["row"] for e in _events(ledger) if e["e"] == "render_intent")
    assert all(renders[row] == 1 for row in set(done) | fresh)
    assert all(renders[row] == 2 for row in with_job)  # the lost job, then the one asked for
    assert justified_rerenders(run_dir) == len(with_job)
    assert sim.stats()["renders_started"] == rows_total - len(done)


NEWER = {
    "unknown kind": (
        {"e": "from_the_future", "ts": 1796590400.0, "row": "cust-0001"},
        "event kind 'from_the_future' is unknown to this orchestrator, which reads ledger "
        f"formats up to {LEDGER_FORMAT} (this ledger declares format 1): a newer orchestrator "
        "wrote it, or it was edited by hand; upgrade orchestrator",
    ),
    "format 99": (
        {"e": "run", "ts": 1796590400.0, "format": 99, "session": 3},
        "this ledger was written by a newer orchestrator (format 99); this one reads up to "
        f"format {LEDGER_FORMAT}: upgrade orchestrator",
    ),
}


@pytest.mark.parametrize("command", ["resume", "run", "status", "report"])
@pytest.mark.parametrize("newer", sorted(NEWER))
def test_a_ledger_of_a_newer_orchestrator_is_refused_by_name(
    tmp_path: Path,
    make_sim: Any,
    api_env: Any,
    capsys: pytest.CaptureFixture[str],
    command: str,
    newer: str,
) -> None:
    """A line this version cannot read because a newer one wrote it (an event kind it does not
    know, a run record of a newer format) stops every command with exit 2 and one line naming
    the file and line, the format found, the format this version reads and what to do; nothing
    is sent, nothing in the run directory is rewritten."""
    sim = make_sim("test")
    api_env(sim)
    run_dir = tmp_path / "run"
    ledger = _place_fixture(run_dir)
    record, message = NEWER[newer]
    with ledger.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    line = len(ledger.read_text(encoding="utf-8").splitlines())
    before = ledger.read_bytes()
    config = _config(tmp_path)
    args = {
        "resume": ["resume", str(run_dir), "--config", str(config)],
        "run": [
            *("run", str(WELCOME / "manifest.csv")),
            *("--template", str(WELCOME / "welcome.pictai")),
            *("--out", str(run_dir), "--config", str(config)),
        ],
        "status": ["status", str(run_dir)],
        "report": ["report", str(run_dir)],
    }[command]
    requests = sim.stats()["requests_total"]
    capsys.readouterr()

    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"orchestrator: error: {ledger}:{line}: {message}"]
    assert sim.stats()["requests_total"] == requests + 1  # only our own stats read
    assert ledger.read_bytes() == before
    assert not (run_dir / "results.csv").exists()
