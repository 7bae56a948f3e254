"""Wires the gateway's real adapters: Kafka publisher, blob store, SQL records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.search_client import HttpSearch
from docflow_gateway.adapters.status_client import HttpStatusReader
from docflow_gateway.entrypoints.http import Gateway, create_app
from docflow_gateway.settings import GatewaySettings
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.deadletters import dead_letters
from docflow_shared.events import (
    DocumentCancelled,
    DocumentDeleted,
    DocumentRetryRequested,
    DocumentUploaded,
    ReindexRequested,
)
from docflow_shared.messaging import KafkaEventPublisher, make_broker
from docflow_shared.probes import kafka_check
from docflow_shared.sql import create_engine

SERVICE = "gateway"


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


def bootstrap(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app on real Kafka, the local blob store and its database."""
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
    )
    blobs = LocalBlobStore(settings.blob_dir)
    records = SqlRegistry(create_engine(settings.effective_database_url))
    status_client = httpx.AsyncClient(timeout=settings.publish_timeout_s)
    status_url = str(settings.status_internal_url or settings.status_public_url)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await records.migrate()
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await status_client.aclose()
            await records.engine.dispose()

    return create_app(
        Gateway(
            settings=settings,
            blobs=blobs,
            records=records,
            publish=event_publisher(broker),
            status_for=lambda headers: HttpStatusReader(status_client, status_url, headers),
            search=HttpSearch(status_client, str(settings.embedder_internal_url)),
            dead_letters=partial(dead_letters, settings.kafka_bootstrap_servers),
            checks={
                "kafka": kafka_check(broker),
                "blob_store": blobs.check,
                "database": records.check,
            },
            registry=registry,
            lifespan=lifespan,
        )
    )
