"""Wires the status service: Kafka projector, SQL read model, watchdog, HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from docflow_shared.events import DocumentStalled, DocumentStatusChanged
from docflow_shared.kafka_admin import consumers_lag, group_positions
from docflow_shared.messaging import KafkaEventPublisher, make_broker
from docflow_shared.metrics import RejectedEvents, RetryMetrics
from docflow_shared.probes import Check, kafka_check
from docflow_shared.retries import Parking
from docflow_shared.sql import create_engine
from docflow_status.adapters.queues import SqlQueues
from docflow_status.adapters.read_model import SqlReadModel
from docflow_status.entrypoints.app import StatusApi, create_app
from docflow_status.entrypoints.consumer import register, rejecter
from docflow_status.entrypoints.metrics import ProjectionMetrics
from docflow_status.entrypoints.queues import CachedQueues, QueueSampler, run_sampler
from docflow_status.entrypoints.watchdog import WatchdogMetrics, run_watchdog
from docflow_status.handlers import UnownedSweep, Watchdog
from docflow_status.settings import StatusSettings

SERVICE = "status"


@dataclass(frozen=True)
class Ports:
    """The status service's adapters, which ``wire`` attaches to the broker."""

    # Written by the projector, read by the watchdog (and by the HTTP API).
    read_model: SqlReadModel
    # Where documents wait on the stages' input topics (domain/queues.py).
    queues: SqlQueues | None = None


def wire(
    broker: KafkaBroker,
    ports: Ports,
    settings: StatusSettings,
    registry: CollectorRegistry | None = None,
) -> Watchdog:
    """Attach the projector and the status publisher to ``broker`` (their metrics to
    ``registry``); returns the watchdog."""
    registry = registry or CollectorRegistry()
    publish = KafkaEventPublisher(
        broker,
        source=f"/docflow/{SERVICE}",
        produces=[DocumentStatusChanged, DocumentStalled],
    )
    # Only the dead-letter topic: the projector has no retries (a database
    # outage stops it, and the batch comes back; nothing is lost).
    parking = Parking(
        broker,
        service=SERVICE,
        delays_s=(),
        metrics=RetryMetrics(registry, "status"),
        max_redeliveries=settings.max_redeliveries,
    )
    rejected = RejectedEvents(registry, SERVICE)
    register(
        broker,
        read_model=ports.read_model,
        announce=publish,
        metrics=ProjectionMetrics(registry),
        parking=parking,
        rejected=rejected,
        queues=ports.queues,
    )
    return Watchdog(
        ports.read_model,
        publish,
        stall_after=timedelta(seconds=settings.stall_after_s),
        unowned=UnownedSweep(
            ports.read_model,
            rejecter(parking, rejected),
            ttl_s=settings.unowned_event_ttl_s,
        ),
        queues=ports.queues.load_view if ports.queues is not None else None,
    )


def bootstrap(settings: StatusSettings | None = None) -> FastAPI:
    """The status app on real Kafka and the configured database, in the settings' role."""
    settings = settings or StatusSettings()
    registry = CollectorRegistry()
    read_model = SqlReadModel(create_engine(settings.effective_database_url))
    queues = SqlQueues(read_model.engine)
    projects = settings.status_role in ("all", "projector")
    broker = make_broker(
        settings.kafka_bootstrap_servers,
        service=SERVICE,
        registry=registry,
        graceful_timeout=settings.handler_grace_s,
        security=settings.kafka_security,
    )
    watchdog = wire(broker, Ports(read_model, queues), settings, registry) if projects else None
    sampler = QueueSampler(
        partial(
            group_positions, settings.kafka_bootstrap_servers, security=settings.kafka_security
        ),
        queues,
        window=timedelta(seconds=settings.queue_rate_window_s),
    )
    metrics = WatchdogMetrics(registry) if projects else None

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await read_model.migrate()
        if watchdog is None or metrics is None:  # the API alone: the database is all it reads
            try:
                yield
            finally:
                await read_model.close()
            return
        await broker.start()
        watching = asyncio.create_task(
            run_watchdog(
                watchdog,
                read_model.census,
                metrics,
                every_s=settings.watchdog_every_s,
                lag=partial(
                    consumers_lag,
                    settings.kafka_bootstrap_servers,
                    security=settings.kafka_security,
                ),
            )
        )
        sampling = asyncio.create_task(run_sampler(sampler, every_s=settings.queue_sample_s))
        try:
            yield
        finally:
            for task in (watching, sampling):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await broker.stop()
            await read_model.close()

    checks: dict[str, Check] = {"database": read_model.check}
    if projects:
        checks["kafka"] = kafka_check(broker)
    return create_app(
        StatusApi(
            settings=settings,
            documents=read_model,
            queues=CachedQueues(queues, ttl_s=settings.queue_sample_s),
            checks=checks,
            registry=registry,
            lifespan=lifespan,
        ),
        serve_api=settings.status_role in ("all", "api"),
    )
