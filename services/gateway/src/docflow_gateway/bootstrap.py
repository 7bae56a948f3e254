"""Wires the gateway: its ports into the HTTP app (``wire``), and the real adapters
behind them: Kafka publisher, blob store, SQL records (``bootstrap``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from docflow_gateway.adapters.deadletter_index import DeadLetterIndex
from docflow_gateway.adapters.deadletter_indexer import DeadLetterIndexer
from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.search_client import HttpSearch, Search
from docflow_gateway.adapters.status_client import HttpStatusReader
from docflow_gateway.domain.webhooks import Delivery
from docflow_gateway.entrypoints.app import create_app
from docflow_gateway.entrypoints.deps import RedriveDelivery
from docflow_gateway.operations import StatusReader
from docflow_gateway.redrive import DeadLetters
from docflow_gateway.settings import GatewaySettings
from docflow_shared import retries, topics
from docflow_shared.blobstore import BlobStore
from docflow_shared.events import (
    DocumentCancelled,
    DocumentDeleted,
    DocumentRetryRequested,
    DocumentUploaded,
    ReindexRequested,
)
from docflow_shared.http import Lifespan
from docflow_shared.messaging import KafkaEventPublisher, PublishAny, make_broker
from docflow_shared.probes import Check, kafka_check
from docflow_shared.sql import create_engine

SERVICE = "gateway"


@dataclass(frozen=True)
class Ports:
    """What the HTTP layer uses from outside: real adapters (``bootstrap``) or fakes."""

    blobs: BlobStore
    # Documents and idempotency keys.
    records: SqlRegistry
    publish: PublishAny
    # The status service as seen by a caller (its credentials, given as headers).
    status_for: Callable[[Mapping[str, str]], StatusReader]
    # The embedder's search: (query, tenant, limit) → its answer.
    search: Search
    # The index of the dead-letter topic (its indexer runs in ``lifespan``).
    dead_letters: DeadLetters
    # Readiness: each answers, or raises.
    checks: Mapping[str, Check]
    # Starts and stops what the publisher needs (the Kafka producer, the database).
    lifespan: Lifespan | None = None
    # Hands a webhook delivery back to the dispatcher (its first retry topic).
    redrive_delivery: RedriveDelivery | None = None


def wire(
    broker: KafkaBroker,
    ports: Ports,
    settings: GatewaySettings,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """The gateway's HTTP app on ``ports`` (its metrics in ``registry``).

    ``broker`` is the one ``ports.publish`` publishes on (``event_publisher``);
    the gateway subscribes to nothing on it (the dead-letter indexer is a plain
    consumer of its own, started in ``ports.lifespan``), so nothing is attached
    to it here. It is taken so that every service's ``wire`` has the same shape.
    """
    app = create_app(
        settings,
        checks=ports.checks,
        registry=registry or CollectorRegistry(),
        lifespan=ports.lifespan,
    )
    app.state.ports = ports
    return app


def event_publisher(broker: KafkaBroker) -> KafkaEventPublisher:
    """The events the gateway publishes, declared on ``broker``."""
    return KafkaEventPublisher(
        broker,
        source=f"/docflow/{SERVICE}",
        produces=[
            DocumentUploaded,
            DocumentRetryRequested,
            DocumentCancelled,
            DocumentDeleted,
            ReindexRequested,
        ],
    )


def delivery_redriver(broker: KafkaBroker) -> RedriveDelivery:
    """Re-drive of a webhook delivery: put on the dispatcher's first retry topic,
    due now, with no retries yet (``webhooks.Dispatcher.on_parked`` sends it)."""
    publisher = broker.publisher(
        topics.retry_topic("webhooks", 0),
        title=f"{topics.retry_topic('webhooks', 0)}:redrive",
        description="A webhook delivery a tenant re-drove (POST /v1/webhooks/{id}/"
        "deliveries/{delivery}/redrive), due at once",
    )

    async def redrive(delivery: Delivery) -> None:
        await publisher.publish(
            delivery.model_dump_json().encode(),
            key=str(delivery.document_id).encode(),
            headers={
                retries.ORIGINAL_TOPIC: topics.STATUS,
                retries.RETRIES: "0",
                retries.DUE_MS: str(int(time.time() * 1000)),
            },
        )

    return redrive


def bootstrap(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app on real Kafka, its blob store (local or S3) and its database."""
    settings = settings or GatewaySettings()
    registry = CollectorRegistry()
    broker = make_broker(
        settings.kafka_bootstrap_servers,
        service=SERVICE,
        registry=registry,
        # A refused upload must stay refused: publishes give up after the
        # timeout instead of being retried until Kafka is back (make_broker).
        request_timeout_ms=int(settings.publish_timeout_s * 1000),
        idempotent=False,
        graceful_timeout=settings.handler_grace_s,
        security=settings.kafka_security,
    )
    blobs = settings.blobs()
    records = SqlRegistry(create_engine(settings.effective_database_url))
    status_client = httpx.AsyncClient(timeout=settings.publish_timeout_s)
    status_url = str(settings.status_internal_url or settings.status_public_url)
    index = DeadLetterIndex(records.engine, records.writing)
    indexer = DeadLetterIndexer(
        index,
        settings.kafka_bootstrap_servers,
        security=settings.kafka_security,
        registry=registry,
        wait_s=settings.deadletter_index_wait_s,
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await records.migrate()
        await broker.start()
        await indexer.start()
        try:
            yield
        finally:
            await indexer.stop()
            await broker.stop()
            await status_client.aclose()
            await records.engine.dispose()

    ports = Ports(
        blobs=blobs,
        records=records,
        publish=event_publisher(broker),
        status_for=lambda headers: HttpStatusReader(status_client, status_url, headers),
        search=HttpSearch(
            status_client, str(settings.embedder_internal_url), settings.internal_token_value
        ),
        dead_letters=DeadLetters(index, indexer.caught_up),
        checks={
            "kafka": kafka_check(broker),
            "blob_store": blobs.check,
            "database": records.check,
        },
        lifespan=lifespan,
        redrive_delivery=delivery_redriver(broker),
    )
    return wire(broker, ports, settings, registry)
