"""The throwaway PostgreSQL of the benchmarks and ``scripts/soak``: ``orchestrator.ledger.pg.local``
(where ``orchestrator dev-postgres`` and the tests take it from too)."""

from orchestrator.ledger.pg.local import LocalPostgres, NoPostgres, running, server_bindir, start

__all__ = ["LocalPostgres", "NoPostgres", "running", "server_bindir", "start"]
