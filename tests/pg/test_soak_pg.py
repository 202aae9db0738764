"""``make soak-pg`` keeps working: a few kills through ``scripts/soak --ledger pg`` itself end with
its summary line, no row lost, none rendered twice, no invariant broken."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SOAK = Path(__file__).resolve().parents[2] / "scripts" / "soak"


@pytest.mark.timeout(240)
def test_the_pg_soak_survives_a_few_kills() -> None:
    """Three workers, three SIGKILLs (each worker started again at once): the soak's own
    checks pass and its summary says 0 lost, 0 rendered twice."""
    done = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--ledger",
            "pg",
            "--kills",
            "3",
            "--rows",
            "40",
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert re.search(r": 3 kills .* rows: 40 \(", summary), summary
    assert "lost: 0; rendered twice: 0;" in summary and "invariant violations: 0" in summary
