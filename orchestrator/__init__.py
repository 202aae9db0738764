"""Batch orchestrator for personalised Pictory videos."""

__version__ = "0.1.0"
