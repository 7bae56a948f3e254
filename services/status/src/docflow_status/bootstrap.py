"""Wires the status service: Kafka projector, SQL read model, HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from docflow_shared.messaging import make_broker
from docflow_shared.probes import kafka_check
from docflow_shared.sql import create_engine
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.entrypoints.consumer import register
from docflow_status.entrypoints.http import StatusApi, create_app
from docflow_status.settings import StatusSettings

SERVICE = "status"


def bootstrap(settings: StatusSettings | None = None) -> FastAPI:
    """The status app on real Kafka and the configured database."""
    settings = settings or StatusSettings()
    registry = CollectorRegistry()
    read_model = SqlReadModel(create_engine(settings.effective_database_url))
    broker = make_broker(settings.kafka_bootstrap_servers, service=SERVICE, registry=registry)
    register(broker, read_model=read_model)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await read_model.migrate()
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await read_model.engine.dispose()

    return create_app(
        StatusApi(
            settings=settings,
            documents=read_model,
            checks={"kafka": kafka_check(broker), "database": read_model.check},
            registry=registry,
            lifespan=lifespan,
        )
    )
