"""Hypothesis profiles: a modest number of examples in ``make test``, many in ``make fuzz``
(``HYPOTHESIS_PROFILE=fuzz``, ``FUZZ_EXAMPLES`` examples per test). No deadline: machines here
are shared and noisy; a hang is caught by the per-test timeout instead."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "database": None,
}
settings.register_profile("default", max_examples=60, **_COMMON)
settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5000")), **_COMMON
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.fspath):
            item.add_marker(pytest.mark.fuzz)
            item.add_marker(pytest.mark.timeout(0 if os.environ.get("HYPOTHESIS_PROFILE") else 120))
