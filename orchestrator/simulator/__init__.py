"""The embedded Pictory API simulator: the same simulator users run offline and tests run against.

Public API::

    from orchestrator.simulator import SimSettings, running_simulator

    async with running_simulator(SimSettings.for_profile("demo")) as sim:
        sim.base_url   # http://127.0.0.1:PORT/pictoryapis
        sim.stats()    # requests, 429s, renders, duplicates, faults, videos…

Modules: ``settings`` (the one settings model and its profiles), ``core`` (state and verbs),
``jobs`` (lazy job state, render slots, retention), ``templates``, ``faults``, ``auth`` (tokens,
keys, rate limit), ``accounting`` (the stats), ``media`` (video bytes, signed links), ``views``
(job answers), ``routes_api`` / ``routes_cdn`` / ``middleware`` (HTTP), ``routes_lookup`` (the
look-up and list routes) with its fixed ``catalogue`` and ``credit_usage`` (the AI credits
each render was charged: ``contract.ai_credits``), ``webhooks``, ``server``, ``cli`` (the
``sim`` subcommand).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.simulator.core import Simulator
    from orchestrator.simulator.server import RunningSimulator, create_app, running_simulator
    from orchestrator.simulator.settings import PROFILE_NAMES, SimSettings

_HOMES = {
    "PROFILE_NAMES": "settings",
    "SimSettings": "settings",
    "Simulator": "core",
    "RunningSimulator": "server",
    "create_app": "server",
    "running_simulator": "server",
}
"""Where each public name lives. Imported on first use (PEP 562): ``orchestrator --help`` and
every real run build the ``sim`` subcommand's parser, which needs only ``settings``; the server
and its state (~0.35 s and several MB at start-up) load when a simulator is served."""

__all__ = [
    "PROFILE_NAMES",
    "RunningSimulator",
    "SimSettings",
    "Simulator",
    "create_app",
    "running_simulator",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
