"""The status service's HTTP API (docs/architecture.md, "Status service")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry

from docflow_shared.http import Lifespan, service_app
from docflow_shared.probes import Check
from docflow_shared.ratelimit import TenantRateLimit
from docflow_status.domain.ports import DocumentReader, QueueViews
from docflow_status.entrypoints.deps import rate_limited
from docflow_status.entrypoints.problems import RATE_LIMITED
from docflow_status.entrypoints.routes import documents, listing, reindex, streams
from docflow_status.entrypoints.slots import StreamSlots
from docflow_status.settings import StatusSettings


@dataclass
class StatusApi:
    """Everything the HTTP layer needs, wired by ``bootstrap`` (or by tests)."""

    settings: StatusSettings
    documents: DocumentReader
    checks: Mapping[str, Check]
    registry: CollectorRegistry
    # Starts and stops the schema, the projector's consumer and the engine.
    lifespan: Lifespan | None = None
    # The stages' queues as last measured (queue positions, estimates); none
    # where not wired (tests): documents then have no estimate.
    queues: QueueViews | None = None


# Every route counts against the tenant's rate limit (DOCFLOW_RATE_LIMIT).
router = APIRouter(dependencies=[Depends(rate_limited)], responses=RATE_LIMITED)
# In this order: /v1/documents/counts and /v1/documents/stream are matched
# before /v1/documents/{document_id} would take them for a document id.
router.include_router(listing.router)
router.include_router(streams.router)
router.include_router(documents.router)
router.include_router(reindex.router)


def create_app(api: StatusApi, *, serve_api: bool = True) -> FastAPI:
    """The status ASGI app around the given wiring; without ``serve_api`` (the
    projector alone) only probes and metrics."""
    app = service_app(
        title="docflow status",
        summary="Where each document is, how far along, and why it failed.",
        router=router if serve_api else APIRouter(),
        checks=api.checks,
        registry=api.registry,
        authenticator=api.settings.authenticator(),
        max_body_bytes=api.settings.max_json_bytes,
        lifespan=api.lifespan,
        service="status",
        metrics_at=api.settings.metrics_address,
    )
    # What the routes' dependencies (deps.py) hand them.
    app.state.documents = api.documents
    app.state.queues = api.queues
    app.state.settings = api.settings
    app.state.rate_limit = TenantRateLimit(
        api.settings.rate_limit, api.settings.rate_limit_storage_url
    )
    app.state.stream_slots = StreamSlots(api.settings.max_streams_per_tenant)
    # The web page comes from the gateway, another origin: it may read (GET)
    # with the caller's key, and resume a stream with Last-Event-ID.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=api.settings.cors_origins,
        allow_methods=["GET"],
        allow_headers=["Authorization", "X-API-Key", "Last-Event-ID"],
    )
    return app
