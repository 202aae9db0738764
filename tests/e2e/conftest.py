"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.simulator.process import SimProcess


@pytest.fixture
def standalone_sim() -> Iterator[Any]:
    sims: list[SimProcess] = []

    def make(*args: str) -> SimProcess:
        sim = SimProcess(*args)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.close()
