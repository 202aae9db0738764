"""Batch orchestrator for personalised Pictory videos, installed as the distribution
``pictory-batch-orchestrator`` (the command and the import package are ``orchestrator``)."""

__version__ = "0.1.0"
"""The one place the version is written: pyproject.toml reads it (setuptools' dynamic version),
``orchestrator --version`` prints it, and every request says it in ``USER_AGENT``."""
DISTRIBUTION = "pictory-batch-orchestrator"
"""The name it is installed under (pyproject.toml's ``name``; tests/test_install.py checks)."""
USER_AGENT = f"{DISTRIBUTION}/{__version__}"
"""What our requests call themselves: Pictory's API (``[api] user_agent`` overrides it there)
and the notification webhook."""
