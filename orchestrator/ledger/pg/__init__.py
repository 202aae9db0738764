"""The shared ledger on PostgreSQL: schema and migrations (``schema``), batches (``batches``),
stored events read back, a newer orchestrator's refused (``stored``), one worker's claims,
leases and fenced events (``ledger``), and an account's request turns and render slots shared
by its workers (``limits``). The only place that imports asyncpg.
"""
