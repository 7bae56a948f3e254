"""The gateway's HTTP API (docs/architecture.md, "Gateway")."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from docflow_gateway.entrypoints.routes import (
    chunks,
    deadletters,
    documents,
    reindex,
    search,
    uploads,
    webhooks,
)
from docflow_gateway.entrypoints.web import add_page
from docflow_gateway.settings import GatewaySettings
from docflow_shared.http import Lifespan, service_app
from docflow_shared.probes import Check
from docflow_shared.ratelimit import TenantRateLimit

# In the order of the OpenAPI document's paths.
router = APIRouter()
router.include_router(uploads.router)
router.include_router(search.router)
router.include_router(reindex.router)
router.include_router(documents.router)
router.include_router(chunks.router)
router.include_router(deadletters.router)
router.include_router(webhooks.router)


def create_app(
    settings: GatewaySettings,
    *,
    checks: Mapping[str, Check],
    registry: CollectorRegistry,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """The gateway ASGI app: its routes, probes, metrics and page.

    The routes read their ports from ``app.state.ports`` (``deps``), which the
    caller sets (``bootstrap.wire``).
    """
    app = service_app(
        title="docflow gateway",
        summary="Upload documents; follow each through its status link.",
        router=router,
        checks=checks,
        registry=registry,
        authenticator=settings.authenticator(),
        max_body_bytes=settings.max_json_bytes,
        # Uploads stream their files and count each one's bytes (multipart.py).
        streamed_bodies=[("POST", "/v1/documents")],
        lifespan=lifespan,
        service="gateway",
        metrics_at=settings.metrics_address,
    )
    app.state.settings = settings
    app.state.rate_limit = TenantRateLimit(settings.rate_limit, settings.rate_limit_storage_url)
    add_page(app, str(settings.status_public_url))
    return app
