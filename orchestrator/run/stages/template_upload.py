"""Stage 0: upload each distinct template once per run, reusing ids the ledger already holds."""

from __future__ import annotations

import anyio

from orchestrator.api.client import PictoryClient
from orchestrator.events import Sink
from orchestrator.input.template import Template
from orchestrator.ledger.protocol import Ledger
from orchestrator.ledger.records import TemplateUploaded


class TemplateRegistry:
    """Maps a template's content hash to its Pictory ``templateId``, uploading at most once."""

    def __init__(self, client: PictoryClient, ledger: Ledger, sink: Sink) -> None:
        self._client = client
        self._ledger = ledger
        self._sink = sink
        self._locks: dict[str, anyio.Lock] = {}

    async def template_id(self, template: Template) -> str:
        known = self._ledger.state.templates.get(template.sha256)
        if known is not None:
            return known
        lock = self._locks.setdefault(template.sha256, anyio.Lock())
        async with lock:
            known = self._ledger.state.templates.get(template.sha256)
            if known is not None:
                return known
            info = await self._client.upload_template(template.content)
            await self._ledger.append(
                TemplateUploaded(sha256=template.sha256, template_id=info.template_id)
            )
            self._sink.emit(
                "template_uploaded", template=str(template.path), template_id=info.template_id
            )
            return info.template_id

    async def forget(self, template: Template, stale_id: str) -> None:
        """The API no longer knows ``stale_id`` (deleted or expired): upload again next time."""
        self._ledger.state.forget_template(template.sha256, stale_id)
