"""The row cap through the CLI: ``--max-rows N`` or ``[input] max_rows``, refused with one
problem line and exit 2 before anything is sent, recorded with the run so a resume reads as
many rows. The readers' side: tests/test_hostile_manifests.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main

from .helpers import run_args, write_batch


def _sent(sim: Any) -> int:
    requests: dict[str, int] = sim.stats()["requests"]
    return sum(n for route, n in requests.items() if not route.startswith("GET /__sim__"))


@pytest.fixture
def sim(make_sim: Any, api_env: Any) -> Any:
    handle = make_sim()
    api_env(handle)
    return handle


@pytest.mark.parametrize("how", ["flag", "config"])
def test_validate_refuses_the_row_past_the_cap(
    how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three rows under a cap of 2 (``--max-rows 2`` or ``[input] max_rows = 2``): one problem
    at line 4 naming the cap and how to raise it, exit 2."""
    batch = write_batch(tmp_path, 3, extra_config="[input]\nmax_rows = 2\n")
    given = ["--max-rows", "2"] if how == "flag" else ["--config", str(batch["config"])]
    args = ["validate", str(batch["manifest"]), "--template", str(batch["template"]), *given]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert out.splitlines()[0] == (
        f"{batch['manifest']}:4: the manifest holds more than 2 rows, the most it may hold; this "
        "is row 3 (split it into smaller manifests, or raise the cap: --max-rows N, or [input] "
        "max_rows in the config)"
    )


def test_the_flag_wins_over_the_config(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, 3, extra_config="[input]\nmax_rows = 2\n")
    args = ["validate", str(batch["manifest"]), "--template", str(batch["template"])]
    assert main([*args, "--config", str(batch["config"]), "--max-rows", "3"]) == 0


def test_run_refuses_past_the_cap_and_sends_nothing(
    tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = write_batch(tmp_path, 3)
    assert main(run_args(batch, "--max-rows", "2")) == 2
    _, err = capsys.readouterr()
    assert "nothing was sent" in err and "holds more than 2 rows" in err
    assert _sent(sim) == 0


def test_a_raised_cap_is_recorded_and_kept_by_resume(tmp_path: Path, sim: Any) -> None:
    """``--max-rows 3`` is recorded in the run record; a resume reads the same three rows."""
    batch = write_batch(tmp_path, 3, extra_config="[input]\nmax_rows = 2\n")
    assert main(run_args(batch, "--max-rows", "3")) == 0
    ledger = batch["out"] / "ledger.jsonl"
    first = json.loads(ledger.read_text().splitlines()[0])
    assert first["manifest_options"]["max_rows"] == 3
    assert main(["resume", str(batch["out"]), "--config", str(batch["config"])]) == 0


@pytest.mark.parametrize("value", ["0", "-4", "many"])
def test_a_cap_that_is_not_a_row_count_is_a_usage_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = write_batch(tmp_path, 1)
    with pytest.raises(SystemExit) as exited:
        main(["validate", str(batch["manifest"]), f"--max-rows={value}"])
    assert exited.value.code == 2
    assert "argument --max-rows" in capsys.readouterr().err
