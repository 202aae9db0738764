"""The pipeline's stages, one module each. A flow is a sequence of stages (see ``pipeline``).

Every stage is an ``async def stage(row: RowJob, svc: Services) -> None`` that first looks at the
row's ledger state and returns at once when its work is already recorded, so resuming a row is
just running its flow again.
"""
