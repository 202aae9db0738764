"""Benchmarks of the orchestrator against its simulator, each in its own process (``make bench``)."""
