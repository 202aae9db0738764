"""The run wing: a batch from start to finish.

Owns ``batch`` (the library API: ``Batch``, which the CLI's ``run``, ``resume`` and ``approve``
build and run), ``options`` (what a run is told), ``target`` (what a run directory ran against),
``spec`` (a session's ``RunSpec``), ``execute`` (a session: ``preflight``, the row ``pool``,
results; ``clients``), admission (halt, window, spend caps), ``cost`` (the estimate and quota
a session prints, ``--check-quota``, a row's expected spend), triage (which rows a run works
on), session (what a session takes over from the ones before it: choices, and the rows an
embedded simulator's stop lost), the canary, watchers (signals, window end, network),
``forget`` and ``traces`` (a customer's values erased, the row kept done), the pipeline (a row
through its flow; the one place outcomes are recorded), the stages (one
module per stage) and the built-in flows.

May import ``report``, ``api``, ``ledger``, ``input`` and the base modules; never ``cli``.
"""
