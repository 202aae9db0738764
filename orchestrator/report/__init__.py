"""The report wing: what people read about a batch.

Owns ``results.csv`` (``results``; how it is encoded and read back: ``results_csv``),
``status``, the live console, the HTML report (``page``, ``page_template``, ``thumbnails``) and
the end-of-run notification (``notify``).

May import ``api`` (what a retry would do), ``ledger``, ``input`` and the base modules; never
``run`` or ``cli``.
"""
