"""Benchmarks against the simulator, each side in its own process (``make bench``)."""
