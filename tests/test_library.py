"""The library API (``from orchestrator import Batch``, docs/library.md): typed results, events,
resume without a second render, our errors (never ``SystemExit``), and the guide's example run
as written. Every batch here runs against the embedded simulator's ``test`` profile."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Batch, Event, RowResult, RunOptions, RunSummary
from orchestrator.errors import ConfigError, RunDirError, UserError, ValidationFailed
from orchestrator.events import ListSink
from orchestrator.ledger.file import LEDGER_NAME, replay
from tests.e2e.helpers import write_batch

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "library.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
CREDENTIAL_VARIABLES = (
    "PICTORY_CLIENT_ID",
    "PICTORY_CLIENT_SECRET",
    "PICTORY_USER_ID",
    "PICTORY_API_KEY",
)


def _batch(folder: Path, rows: int = 3, **kwargs: Any) -> Batch:
    made = write_batch(folder, rows)
    return Batch.from_manifest(
        made["manifest"],
        template=made["template"],
        out=made["out"],
        simulate="test",
        config=made["config"],
        **kwargs,
    )


def _renders(run_dir: Path) -> int:
    """Render jobs the ledger recorded, over every session."""
    state = replay(run_dir / LEDGER_NAME)
    try:
        return sum(1 for r in state.rows.values() if r.render_job is not None)
    finally:
        state.rows.close()


async def test_run_returns_a_typed_summary_and_each_rows_result(tmp_path: Path) -> None:
    """``run`` returns the ``RunSummary`` the CLI prints; ``rows`` a ``RowResult`` per row,
    in manifest order, each done row with its video on disk."""
    batch = _batch(tmp_path, rows=3)
    summary = await batch.run()
    assert isinstance(summary, RunSummary)
    assert summary.counts == {"done": 3}
    assert summary.exit_code == 0 and summary.simulated
    assert summary.results_path == batch.run_dir / "results.csv"
    rows = list(batch.rows())
    assert all(isinstance(r, RowResult) for r in rows)
    assert [r.id for r in rows] == ["row-000", "row-001", "row-002"]
    assert [r.line for r in rows] == [2, 3, 4]
    for r in rows:
        assert r.status == "done" and r.error == "" and r.retry == ""
        assert r.file is not None and r.file.stat().st_size > 0
        assert r.variables["name"].startswith("Name ")
        assert r.cells["sha256"]


async def test_each_event_reaches_on_event_and_the_sink(tmp_path: Path) -> None:
    """The events the CLI prints reach ``on_event`` (as ``Event``) and ``sink`` alike, and the
    run's log keeps them too."""
    batch = _batch(tmp_path, rows=2)
    seen: list[Event] = []
    sink = ListSink()
    await batch.run(on_event=seen.append, sink=sink)
    kinds = [e.kind for e in seen]
    assert kinds == sink.kinds()
    assert kinds[0] == "run_started" and "run_finished" in kinds
    assert kinds.count("row_done") == 2
    done = [e for e in seen if e.kind == "row_done"]
    assert {e.fields["row"] for e in done} == {"row-000", "row-001"}
    assert done[0].as_dict()["event"] == "row_done"
    assert '"event": "row_done"' in (batch.run_dir / "log.jsonl").read_text()


async def test_a_failing_event_handler_does_not_stop_the_run(tmp_path: Path) -> None:
    """An ``on_event`` that raises is logged once (``event_handler_failed``); the run goes on."""

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    batch = _batch(tmp_path, rows=2)
    summary = await batch.run(on_event=broken)
    assert summary.counts == {"done": 2}
    log = (batch.run_dir / "log.jsonl").read_text()
    assert log.count("event_handler_failed") == 1 and "handler bug" in log


async def test_running_the_same_batch_again_renders_nothing_twice(tmp_path: Path) -> None:
    """A second run of the same batch, and a ``Batch.resume`` of its run directory, skip every
    done row and send no render."""
    first = _batch(tmp_path, rows=3)
    assert (await first.run()).counts == {"done": 3}
    renders = _renders(first.run_dir)
    assert renders == 3
    for again in (_batch(tmp_path, rows=3), Batch.resume(first.run_dir)):
        summary = await again.run()
        assert summary.counts == {"done": 3}
        assert summary.skipped_done == 3 and summary.started == 0
        assert _renders(first.run_dir) == renders


async def test_resume_keeps_the_recorded_target_and_options(tmp_path: Path) -> None:
    """``Batch.resume`` reuses the run directory's simulator profile, config file and manifest
    options; leaving the simulator for the real API there is refused."""
    made = write_batch(tmp_path, 2)
    first = Batch.from_manifest(
        made["manifest"],
        template=made["template"],
        out=made["out"],
        simulate="test",
        config=made["config"],
        options=RunOptions(delimiter=",", max_rows=10),
    )
    await first.run()
    again = Batch.resume(made["out"])
    assert again.simulate == "test"
    assert again.spec.manifest_options.max_rows == 10
    assert again.spec.manifest_options.delimiter == ","
    assert again.config.limits.max_rows_in_flight == first.config.limits.max_rows_in_flight
    with pytest.raises(RunDirError, match="embedded simulator"):
        Batch.from_manifest(made["manifest"], template=made["template"], out=made["out"])


async def test_a_bad_manifest_raises_validation_failed_with_file_line_and_field(
    tmp_path: Path,
) -> None:
    """A manifest with problems raises ``ValidationFailed`` naming file, line and field; nothing
    is sent and the run directory made for it is gone again."""
    made = write_batch(tmp_path, 2)
    made["manifest"].write_text("id,name,city\nrow-000,Ann,Oslo\nrow-001,,Paris\n")
    batch = Batch.from_manifest(
        made["manifest"], template=made["template"], out=made["out"], simulate="test"
    )
    with pytest.raises(ValidationFailed) as caught:
        await batch.run()
    assert any(
        line.startswith(f"{made['manifest']}:3:") and "'name'" in line
        for line in caught.value.lines
    ), caught.value.lines
    assert not made["out"].exists()


def test_the_real_api_is_the_default_and_needs_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``simulate`` a batch is for the real API: with no credentials in the environment
    it is refused with our ``ConfigError``, not ``SystemExit``."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    made = write_batch(tmp_path, 1)
    with pytest.raises(ConfigError):
        Batch.from_manifest(made["manifest"], template=made["template"], out=made["out"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"simulate": "fast"}, "simulator profile"),
        ({"simulate": "test", "flow": "slideshow"}, "flow 'slideshow'"),
        ({"simulate": "test", "options": RunOptions(canary=0)}, "--canary must be at least 1"),
        ({"simulate": "test", "options": RunOptions(halt_after="lots")}, "--halt-after"),
        (
            {"simulate": "test", "options": RunOptions(window="22:00-06:00", until="06:00")},
            "either --window or --until",
        ),
        ({"simulate": "test", "options": RunOptions(results_dialect="x")}, "--results-dialect"),
    ],
)
def test_a_wrong_argument_is_a_user_error(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    """Arguments are checked as the command's options are, raising ``UserError``."""
    made = write_batch(tmp_path, 1)
    with pytest.raises(UserError, match=re.escape(message)):
        Batch.from_manifest(made["manifest"], template=made["template"], out=made["out"], **kwargs)


def test_run_sync_works_from_another_thread(tmp_path: Path) -> None:
    """``run_sync`` runs in a thread other than the main one (which alone receives signals)."""
    batch = _batch(tmp_path, rows=2)
    found: list[RunSummary | BaseException] = []

    def work() -> None:
        try:
            found.append(batch.run_sync())
        except BaseException as exc:  # reported below, with its traceback
            found.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert len(found) == 1
    result = found[0]
    if isinstance(result, BaseException):
        raise result
    assert result.counts == {"done": 2}


def test_importing_orchestrator_loads_no_network_or_run_code() -> None:
    """``import orchestrator`` stays cheap (the command's start-up): ``Batch`` is loaded on
    first use, and with it the run wing."""
    code = textwrap.dedent(
        """
        import sys
        import orchestrator
        assert "aiohttp" not in sys.modules and "orchestrator.run" not in sys.modules
        assert orchestrator.Batch.__module__ == "orchestrator.run.batch"
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_guides_examples_run_as_written(tmp_path: Path) -> None:
    """Every ``python`` block of docs/library.md, in order, from a copy of the checkout's
    ``jobs`` folder: the first renders the sample batch, the second finds it all done."""
    blocks = PYTHON_BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) >= 2
    shutil.copytree(ROOT / "jobs" / "welcome", tmp_path / "jobs" / "welcome")
    script = tmp_path / "example.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "25 videos in runs/library exit code 0" in done.stdout
    assert "25 rows were already done; 0 started" in done.stdout
    assert len(list((tmp_path / "runs" / "library" / "videos").glob("*.mp4"))) == 25


def test_the_cli_runs_batches_only_through_batch() -> None:
    """No second run path: no module of ``orchestrator.cli`` imports ``execute`` itself (``run``,
    ``resume``, ``approve`` and ``worker`` go through ``Batch.run``)."""
    for path in sorted((ROOT / "orchestrator" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "orchestrator.run.execute":
                names = {alias.name for alias in node.names}
                assert "execute" not in names, f"{path.name} imports execute"
