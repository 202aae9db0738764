"""What a start-up loads: `orchestrator --help`, `COMMAND --help` and `status` load no heavy
package (issue 31: start-up within 0.05 s of the plain script's imports; the figure itself is
`python -m benchmarks --only startup`, never asserted here).

Each case runs the command in a fresh interpreter and lists the top-level packages it imported
that are not the standard library's, compared to an allow-list; the heavy standard-library
packages (asyncio, ssl, sqlite3, email...) are pinned out of `--help` too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.ledger.codec import encode
from orchestrator.ledger.records import RunStarted

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import contextlib, io, json, sys
before = set(sys.modules)
sys.argv = ["orchestrator", *json.loads(sys.argv[1])]
from orchestrator.cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
names = {m.split(".")[0] for m in sys.modules}
print(json.dumps({"code": code, "loaded": sorted(names), "new": sorted(set(sys.modules) - before)}))
"""

ENVIRONMENT = ("_",)
"""Top-level names that come with the interpreter or the install, not with our imports (an
editable install's finder, setuptools' ``_distutils_hack``, ``_sysconfigdata_*``...)."""

HELP_ALLOWED: frozenset[str] = frozenset()
"""Third-party packages a `--help` may load: none (argparse and our own parser modules only)."""

STATUS_ALLOWED = frozenset({"anyio"})
"""`status RUN_DIR` reads the ledger (anyio's file locks) and the manifest: no pydantic (the
config is not read), and never the HTTP client, openpyxl, rich, asyncpg, PyAV, boto3 or the
simulator."""

PARSER_SIMULATOR = {"orchestrator.simulator", "orchestrator.simulator.cli"}
PARSER_SIMULATOR |= {"orchestrator.simulator.profiles"}
"""What the parser loads of the simulator (its `sim` options and profile names), never more."""

HEAVY_STDLIB = ("asyncio", "ssl", "sqlite3", "email", "http", "concurrent", "socket", "logging")
"""Standard-library packages `--help` does without (each costs milliseconds to import)."""


def loaded_by(args: list[str], cwd: Path = ROOT) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        timeout=60,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def third_party(loaded: object) -> set[str]:
    assert isinstance(loaded, list)
    return {
        name
        for name in loaded
        if name not in sys.stdlib_module_names
        and not name.startswith(ENVIRONMENT)
        and name != "orchestrator"
    }


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["status", "--help"],
        ["validate", "--help"],
        ["run", "--help"],
        ["sim", "--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_help_loads_no_third_party_package_and_no_event_loop(args: list[str]) -> None:
    """`orchestrator --help` and a command's `--help` load argparse and our parser modules:
    no third-party package, no asyncio, no ssl."""
    result = loaded_by(args)
    assert result["code"] == 0
    assert third_party(result["loaded"]) == HELP_ALLOWED
    loaded = result["loaded"]
    assert isinstance(loaded, list)
    assert not set(HEAVY_STDLIB) & set(loaded), "a heavy standard-library package at --help"


def test_status_of_a_run_directory_loads_no_http_client_or_workbook(tmp_path: Path) -> None:
    """`orchestrator status RUN_DIR`, typed many times a day, reads the ledger without loading
    aiohttp, openpyxl, rich, the run machinery or the simulator."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,first_name\nr1,Ann\n", encoding="utf-8")
    record = RunStarted(manifest=str(manifest), flow="template", target={"simulate": "test"})
    (run_dir / "ledger.jsonl").write_text(json.dumps(encode(record)) + "\n", encoding="utf-8")
    result = loaded_by(["status", str(run_dir)])
    assert result["code"] == 0, result
    assert third_party(result["loaded"]) == STATUS_ALLOWED
    new = result["new"]
    assert isinstance(new, list)
    heavy = [m for m in new if m.startswith(("orchestrator.run.", "orchestrator.api.client"))]
    assert heavy == [], "status loaded the run machinery"
    simulator = {m for m in new if m.startswith("orchestrator.simulator")}
    assert simulator <= PARSER_SIMULATOR, "status loaded the simulator itself"


def test_the_input_wing_and_the_config_agree_on_the_default_row_cap() -> None:
    """`input.row` repeats `[input] max_rows`'s default so that reading a manifest loads no
    pydantic; the two must stay equal."""
    from orchestrator import config
    from orchestrator.input import row

    assert row.DEFAULT_MAX_ROWS == config.DEFAULT_MAX_ROWS
    assert config.InputConfig().max_rows == row.DEFAULT_MAX_ROWS
