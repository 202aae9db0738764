"""What a session talks through: the Pictory client (``open_client``: its request limiter, its
retry policy, the ``[deliver]`` fields it adds to a render) and the webhook receiver of
``--webhook`` (``open_webhooks``)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.api.webhooks import WebhookReceiver, run_secret
from orchestrator.api.window_guard import SharedRate
from orchestrator.clock import Clock
from orchestrator.config import Config, Credentials
from orchestrator.events import Sink, wants
from orchestrator.ledger.protocol import Ledger
from orchestrator.run.admission import NetworkWatch


@contextlib.asynccontextmanager
async def open_client(
    config: Config,
    credentials: Credentials,
    clock: Clock,
    rng: random.Random,
    sink: Sink,
    network: NetworkWatch,
    shared_rate: SharedRate | None = None,
) -> AsyncIterator[PictoryClient]:
    limiter = RateLimiter(
        clock,
        max_rps=config.limits.max_requests_per_s,
        max_per_minute=config.limits.max_requests_per_minute,
        shared=shared_rate,
    )
    policy = retry_policy(config)

    def on_retry(endpoint: str, kind: str, delay_s: float) -> None:
        sink.emit("retry", endpoint=endpoint, kind=kind, delay_s=round(delay_s, 3))
        if kind == "not_delivered":
            network.undelivered()

    def on_request(method: str, path: str, status: int | None, waited_s: float) -> None:
        sink.emit("request", method=method, path=path, status=status, waited_s=waited_s)

    async with PictoryClient(
        config.api,
        credentials,
        clock=clock,
        limiter=limiter,
        retry_policy=policy,
        rng=rng,
        on_retry=on_retry,
        on_request=on_request if wants(sink, "request") else None,
    ) as client:
        client.pictory_delivery = pictory_delivery(config)
        yield client


def pictory_delivery(config: Config) -> dict[str, Any]:
    """``[deliver]``'s Pictory-side fields, as the v2 storyboard body names them (§6.3)."""
    deliver = config.deliver
    fields: dict[str, Any] = {}
    if deliver.destinations:
        fields["destinations"] = [dict(d) for d in deliver.destinations]
    if deliver.aws_connection_id:
        fields["awsConnectionId"] = deliver.aws_connection_id
    if deliver.vimeo_connection_id:
        fields["vimeoConnectionId"] = deliver.vimeo_connection_id
    return fields


def retry_policy(config: Config) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=config.retry.max_attempts,
        base_delay_s=config.retry.base_delay_s,
        max_delay_s=config.retry.max_delay_s,
    )


@contextlib.asynccontextmanager
async def open_webhooks(
    config: Config,
    run_dir: Path,
    ledger: Ledger,
    clock: Clock,
    sink: Sink,
    batch: str | None = None,
) -> AsyncIterator[WebhookReceiver | None]:
    """The webhook receiver of ``--webhook`` (None without it); ``batch`` (a shared batch's
    name, else the run directory's) goes in each ``webhookInput``."""
    if not config.webhook.enabled:
        yield None
        return
    hook = config.webhook
    rows = ledger.state.rows

    def recorded_job(row: str, stage: str) -> str | None:
        state = rows.get(row)
        if state is None:
            return None
        if stage == "preview":
            return state.preview_job
        if stage == "render":
            return state.render_job
        return (state.aux_jobs or {}).get(stage)

    async with WebhookReceiver(
        secret=run_secret(run_dir),
        recorded_job=recorded_job,
        batch=batch or run_dir.name,
        host=hook.listen_host,
        port=hook.listen_port,
        public_url=hook.public_url,
        clock=clock,
    ) as receiver:
        sink.emit("webhook_listening", url=receiver.base_url)
        try:
            yield receiver
        finally:
            if receiver.rejected:
                sink.emit("webhooks_rejected", **dict(receiver.rejected))
