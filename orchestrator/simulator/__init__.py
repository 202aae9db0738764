"""The embedded Pictory API simulator: the same simulator users run offline and tests run against.

Public API::

    from orchestrator.simulator import SimSettings, running_simulator

    async with running_simulator(SimSettings.for_profile("demo")) as sim:
        sim.base_url   # http://127.0.0.1:PORT/pictoryapis
        sim.stats()    # requests, 429s, renders, duplicates, faults, videos…

Modules: ``settings`` (the one settings model and its profiles), ``core`` (state and verbs),
``jobs`` (lazy job state, render slots, retention), ``templates``, ``faults``, ``auth`` (tokens,
keys, rate limit), ``accounting`` (the stats), ``media`` (video bytes, signed links), ``views``
(job answers), ``routes_api`` / ``routes_cdn`` / ``middleware`` (HTTP), ``webhooks``, ``server``,
``cli`` (the ``sim`` subcommand).
"""

from orchestrator.simulator.core import Simulator
from orchestrator.simulator.server import RunningSimulator, create_app, running_simulator
from orchestrator.simulator.settings import PROFILE_NAMES, SimSettings

__all__ = [
    "PROFILE_NAMES",
    "RunningSimulator",
    "SimSettings",
    "Simulator",
    "create_app",
    "running_simulator",
]
