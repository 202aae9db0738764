"""``orchestrator serve``: a read-only live page of a batch, local (a run directory) or shared
(a PostgreSQL ledger).

- ``view``: what the page shows, built from the ledger's read side (the folded ``LedgerState``
  and ``report.status``, as ``orchestrator status`` reads them), as one JSON object; it picks
  the fields it shows one by one, so no credential, database password or webhook secret can
  reach the page;
- ``readers``: where a view is read from: a run directory, or a shared batch's tables;
- ``page``: the page itself, one HTML file with its CSS and script inline (no CDN, no build
  step: it works offline), polling ``api/state``;
- ``server``: the aiohttp app (``build_app``) and ``serve``; with ``metrics_server``, the
  modules of ``report`` that import aiohttp (the import-linter contract names them).

May import what ``report`` may: ``ledger`` (its read side), ``input`` and the base modules.
"""
