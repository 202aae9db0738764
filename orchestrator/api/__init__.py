"""The api wing: everything that talks to Pictory.

Owns the client (one method per endpoint), the transport (the only importer of aiohttp on the client
side, and the one place its errors are translated), tokens, answer shapes (``responses``), the
account's ``quota``, the request limiter (``limits``: ``turns``, ``window_guard``,
``rate_evidence``; ``render_slots``), what is tried again (``retry``), the webhook receiver
(``webhooks``; ``connections``, ``webhook_budgets``), and the target a ``--simulate`` run points at
(``simulated``).

May import: ``ledger`` (event records), ``input``, and the base modules (``config``, ``clock``,
``errors``, ``events``). Never ``run``, ``report`` or ``cli``; never asyncpg.
"""
