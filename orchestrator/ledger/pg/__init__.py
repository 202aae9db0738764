"""The shared ledger on PostgreSQL: schema and migrations (``schema``), batches (``batches``),
the accounts a batch is bound to and the batch a worker works (``accounts``), stored events read
back, a newer orchestrator's refused, and row events written fenced by their claim
(``stored``), one worker's claims and events (``ledger``) and the rows it holds under lease
(``leases``), an account's request turns and render slots shared by its workers (``limits``),
and the connections, whose statements are tried again while the database is away (``pool``);
and a throwaway server on this machine, for trying a shared batch and for the tests (``local``).
The only place that imports asyncpg.
"""
