"""Wires the gateway's real adapters: Kafka publisher and local blob store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from docflow_gateway.entrypoints.http import Gateway, create_app
from docflow_gateway.settings import GatewaySettings
from docflow_shared.blobstore import LocalBlobStore
from docflow_shared.events import DocumentUploaded
from docflow_shared.messaging import KafkaEventPublisher, make_broker
from docflow_shared.probes import kafka_check

SERVICE = "gateway"


def bootstrap(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app on real Kafka and the local blob store."""
    settings = settings or GatewaySettings()
    registry = CollectorRegistry()
    broker = make_broker(settings.kafka_bootstrap_servers, service=SERVICE, registry=registry)
    blobs = LocalBlobStore(settings.blob_dir)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()

    return create_app(
        Gateway(
            settings=settings,
            blobs=blobs,
            publish=KafkaEventPublisher(
                broker, source=f"/docflow/{SERVICE}", produces=[DocumentUploaded]
            ),
            checks={"kafka": kafka_check(broker), "blob_store": blobs.check},
            registry=registry,
            lifespan=lifespan,
        )
    )
