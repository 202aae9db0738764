"""Fixtures for the simulator's tests: running simulators that are always stopped, a manual clock,
and one aiohttp session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from simkit import MakeSim, ManualClock

from orchestrator.simulator import RunningSimulator, SimSettings, running_simulator


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """``await make_sim(clock=None, profile="test", **overrides)``; every one is stopped after."""
    async with AsyncExitStack() as stack:

        async def make(
            clock: ManualClock | None = None, profile: str = "test", **overrides: Any
        ) -> RunningSimulator:
            settings = SimSettings.for_profile(profile, **overrides)
            return await stack.enter_async_context(running_simulator(settings, clock=clock))

        yield make


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
