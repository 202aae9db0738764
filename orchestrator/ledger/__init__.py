"""The ledger wing: a batch's memory, whatever stores it.

Owns the ``Ledger`` protocol and the state its events fold into (``protocol``), the events and their
one serialiser (``records``, ``codec``), row states in memory or spilled (``row_state``), the
embedded JSONL ledger (``file``, ``replay``, ``owner``) with its run directory's lock (``locks``)
and the shared PostgreSQL one (``pg``), and forgetting rows: what their records keep (``forget``)
and the JSONL ledger rewritten without their values (``erase``).

May import ``input`` and the base modules. Only ``ledger.pg`` imports asyncpg.
"""
