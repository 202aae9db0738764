"""The input wing: what the user hands us, read and checked before anything is sent.

Owns the manifest readers (CSV/TSV, JSON, JSON Lines, workbooks), header matching, the extra
columns a template does not use (``extra_columns``), row identity and output names (``names``:
from a ``--name`` pattern), templates, which local files a manifest may name, the flow registry
(``flows``: what a row may be, its fields and checks), the rows as ``RowJob``s (``rows``), what they
will cost (``estimate``, offline) and ``validate`` (one row's checks: ``validate_row``; what it
reports: ``problems``).

May import the base modules only (``config``, ``clock``, ``errors``, ``events``). The built-in
flow modules live in ``run.flows`` and are loaded by name on first use.
"""
