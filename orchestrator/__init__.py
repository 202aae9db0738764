"""Batch orchestrator for personalised Pictory videos, installed as the distribution
``pictory-batch-orchestrator`` (the command and the import package are ``orchestrator``).

From Python: ``from orchestrator import Batch`` (docs/library.md)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names __getattr__ loads on first use, for type checkers
    from orchestrator.run.batch import Batch, Event, RowResult
    from orchestrator.run.end import RunSummary
    from orchestrator.run.options import RunOptions

__version__ = "0.1.0"
"""The one place the version is written: pyproject.toml reads it (setuptools' dynamic version),
``orchestrator --version`` prints it, and every request says it in ``USER_AGENT``."""
DISTRIBUTION = "pictory-batch-orchestrator"
"""The name it is installed under (pyproject.toml's ``name``; tests/test_install.py checks)."""
USER_AGENT = f"{DISTRIBUTION}/{__version__}"
"""What our requests call themselves: Pictory's API (``[api] user_agent`` overrides it there)
and the notification webhook."""

__all__ = ["DISTRIBUTION", "USER_AGENT", "Batch", "Event", "RowResult", "RunOptions", "RunSummary"]

_LIBRARY = {
    "Batch": "orchestrator.run.batch",
    "Event": "orchestrator.run.batch",
    "RowResult": "orchestrator.run.batch",
    "RunOptions": "orchestrator.run.options",
    "RunSummary": "orchestrator.run.end",
}
"""The library API (docs/library.md), imported on first use: ``import orchestrator`` stays cheap
(the command's start-up reads ``__version__`` from here), and the base modules that import this
package for its version do not pull in the run wing (``importlib`` keeps import-linter's layers
from seeing an import that never happens at start-up)."""


def __getattr__(name: str) -> object:
    """``from orchestrator import Batch`` (and the other names of ``_LIBRARY``), loaded lazily."""
    module = _LIBRARY.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
