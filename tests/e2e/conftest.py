"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .standalone import StandaloneSim


@pytest.fixture
def standalone_sim() -> Iterator[Any]:
    sims: list[StandaloneSim] = []

    def make(*args: str) -> StandaloneSim:
        sim = StandaloneSim(*args)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.close()
