"""The webhook dispatcher's process (``python -m docflow_gateway webhooks``): the
status topic in its own consumer group, its retry topics, probes and metrics.

It runs the gateway's image as the gateway's Kafka user and reads the
gateway's database (endpoints and secrets: ``adapters/webhook_store.py``);
only it makes requests to the tenants' endpoints (``adapters/egress.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter
from prometheus_client import CollectorRegistry

from docflow_gateway.adapters.egress import EgressPolicy, WebhookSender
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.webhook_store import WebhookStore
from docflow_gateway.settings import GatewaySettings
from docflow_gateway.webhooks import (
    SERVICE,
    STAGE,
    Dispatcher,
    EndpointCache,
    Send,
    WebhookMetrics,
)
from docflow_shared import sql, topics
from docflow_shared.batches import Item, Poison, dead_letter, handle_batch
from docflow_shared.events import DocumentStatusChanged
from docflow_shared.messaging import batch_subscriber, subscriber
from docflow_shared.metrics import RetryMetrics
from docflow_shared.probes import kafka_check
from docflow_shared.retries import (
    DUE_MS,
    Origin,
    Parking,
    header_int,
    is_transient,
    retry_group,
)
from docflow_shared.serving import consumer_app, service_broker
from docflow_shared.sql import create_engine

# Its own group (scaled by KEDA on its lag), under the gateway user's prefix.
GROUP_ID = "docflow-gateway-webhooks"
# Status records taken per poll (handled concurrently, each document's in order).
MAX_BATCH = 200


def wire_webhooks(
    broker: KafkaBroker,
    store: WebhookStore,
    send: Send,
    settings: GatewaySettings,
    registry: CollectorRegistry | None = None,
) -> Dispatcher:
    """Attach the dispatcher's subscribers (the status topic, its retry topics)
    and publishers (its retry topics, the dead-letter topic) to ``broker``."""
    registry = registry or CollectorRegistry()
    router = KafkaRouter()
    parking = Parking(
        router,
        service=SERVICE,
        delays_s=settings.retry_delays_s,
        metrics=RetryMetrics(registry, "webhook"),
        max_redeliveries=settings.max_redeliveries,
    )
    dispatcher = Dispatcher(
        store,
        send,
        parking,
        WebhookMetrics(registry),
        concurrency=settings.webhook_concurrency,
        first_attempt_timeout_s=settings.webhook_first_attempt_timeout_s,
        endpoints=EndpointCache(store, settings.webhook_endpoint_cache_s),
        retention=timedelta(days=settings.webhook_delivery_retention_days),
    )

    async def give_up(item: Item[DocumentStatusChanged], exc: Exception) -> None:
        reason = f"failed {parking.redeliveries.limit + 1} times: {exc}"[:500]
        await parking.dead_letter(item.body, item.origin, reason, STAGE)

    # A database or Kafka outage is waited out (the poll comes back until it
    # ends); a record that fails alone otherwise goes to the dead-letter topic
    # after DOCFLOW_MAX_REDELIVERIES, and the others go on.
    poison = Poison(
        parking.redeliveries,
        give_up,
        outage=lambda exc: is_transient(exc) or sql.unavailable(exc),
    )

    @batch_subscriber(router, topics.STATUS, group_id=GROUP_ID, max_records=MAX_BATCH)
    async def on_status_changed(message: KafkaMessage) -> None:
        """Documents' statuses changed: tell the endpoints that want it."""
        await handle_batch(
            message,
            DocumentStatusChanged.model_validate_json,
            dispatcher.on_batch,
            # Only the status service writes the topic (ACLs): logged, skipped.
            on_invalid=dead_letter(None, STAGE),
            poison=poison,
        )

    async def on_parked(message: KafkaMessage) -> None:
        """A delivery parked for a retry (or re-driven), sent again when due."""
        due_ms = header_int(message.headers, DUE_MS, 0, high=2**63)
        wait_s = min(due_ms / 1000 - time.time(), max(parking.delays_s, default=0.0))
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        await _guarded(parking, message, dispatcher.on_parked)

    for level in range(parking.max_retries):
        subscriber(
            router, topics.retry_topic(SERVICE, level), group_id=retry_group(GROUP_ID, level)
        )(on_parked)
    broker.include_router(router)
    return dispatcher


async def _guarded(
    parking: Parking,
    message: KafkaMessage,
    handle: Callable[[bytes, Origin | None], Awaitable[None]],
) -> None:
    """``handle`` the message; if it raises, the message comes again (not
    committed), unless it has failed ``DOCFLOW_MAX_REDELIVERIES`` times for a
    reason of its own (an outage, the database or Kafka unavailable, is waited
    out): then it goes to the dead-letter topic and the partition moves on."""
    origin = Origin.of_message(message)
    try:
        await handle(message.body, origin)
    except Exception as exc:
        if (
            origin is None
            or is_transient(exc)
            or sql.unavailable(exc)  # the database down or locked: waited out
            or not parking.redeliveries.exhausted(origin)
        ):
            raise
        await parking.dead_letter(
            message.body,
            origin,
            f"failed {parking.redeliveries.limit + 1} times: {exc}"[:500],
            STAGE,
        )
    parking.redeliveries.forget(origin)


def bootstrap_webhooks(settings: GatewaySettings | None = None) -> AsgiFastStream:
    """The dispatcher on real Kafka and the gateway's database, with /healthz,
    /readyz and /metrics."""
    settings = settings or GatewaySettings()
    registry = CollectorRegistry()
    broker = service_broker(settings, service="webhooks", registry=registry)
    records = SqlRegistry(create_engine(settings.effective_database_url))
    store = WebhookStore(records.engine, records.writing)
    sender = WebhookSender(
        EgressPolicy.of(settings.webhook_allowed_networks),
        timeout_s=settings.webhook_timeout_s,
        max_response_bytes=settings.webhook_max_response_bytes,
    )
    wire_webhooks(broker, store, sender.send, settings, registry)
    app = consumer_app(
        broker,
        service="webhooks",
        registry=registry,
        checks={"kafka": kafka_check(broker), "database": store.check},
        after_shutdown=[sender.aclose, records.engine.dispose],
        metrics_at=settings.metrics_address,
    )
    # The gateway migrates too; whichever starts first makes the tables.
    app.on_startup(records.migrate)
    return app
