"""What the gateway's routes depend on, one port each (``Annotated`` aliases).

Each reads its port from the app's state: ``app.state.ports`` is the
``bootstrap.Ports`` that ``bootstrap.wire`` set, ``app.state.settings`` and
``app.state.rate_limit`` are set by ``app.create_app``. Every dependency is
``async``: FastAPI runs a plain ``def`` dependency in a worker thread, on
every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request

from docflow_gateway.adapters.registry import SqlRegistry
from docflow_gateway.adapters.search_client import Search
from docflow_gateway.adapters.webhook_store import WebhookStore
from docflow_gateway.domain.webhooks import Delivery
from docflow_gateway.operations import StatusReader
from docflow_gateway.redrive import DeadLetters
from docflow_gateway.settings import GatewaySettings
from docflow_shared.blobstore import BlobStore
from docflow_shared.http import Tenant
from docflow_shared.messaging import PublishAny
from docflow_shared.ratelimit import TenantRateLimit

RedriveDelivery = Callable[[Delivery], Awaitable[None]]


async def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


SettingsDep = Annotated[GatewaySettings, Depends(_settings)]


async def _blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.ports.blobs
    return blobs


BlobsDep = Annotated[BlobStore, Depends(_blobs)]


async def _records(request: Request) -> SqlRegistry:
    records: SqlRegistry = request.app.state.ports.records
    return records


RecordsDep = Annotated[SqlRegistry, Depends(_records)]
"""The gateway's records: documents and idempotency keys."""


async def _publish(request: Request) -> PublishAny:
    publish: PublishAny = request.app.state.ports.publish
    return publish


PublishDep = Annotated[PublishAny, Depends(_publish)]


async def _status(request: Request) -> StatusReader:
    status: StatusReader = request.app.state.ports.status_for(request.headers)
    return status


StatusDep = Annotated[StatusReader, Depends(_status)]
"""The status service, asked with the caller's credentials."""


async def _search(request: Request) -> Search:
    search: Search = request.app.state.ports.search
    return search


SearchDep = Annotated[Search, Depends(_search)]


async def _dead_letters(request: Request) -> DeadLetters:
    dead_letters: DeadLetters = request.app.state.ports.dead_letters
    return dead_letters


DeadLettersDep = Annotated[DeadLetters, Depends(_dead_letters)]
"""The dead-letter index: no request reads the dead-letter topic."""


async def _webhooks(records: RecordsDep) -> WebhookStore:
    return WebhookStore(records.engine, records.writing)


WebhooksDep = Annotated[WebhookStore, Depends(_webhooks)]
"""The tenants' webhook endpoints and deliveries (the gateway's database)."""


async def _webhook_redrive(request: Request) -> RedriveDelivery | None:
    redrive: RedriveDelivery | None = request.app.state.ports.redrive_delivery
    return redrive


WebhookRedriveDep = Annotated[RedriveDelivery | None, Depends(_webhook_redrive)]
"""Hands a delivery back to the webhook dispatcher (its first retry topic, due now);
None where the gateway was wired without Kafka."""


async def _rate_limited(request: Request, tenant: Tenant) -> str:
    rate_limit: TenantRateLimit = request.app.state.rate_limit
    await rate_limit.check(tenant)
    return tenant


RateLimitedTenant = Annotated[str, Depends(_rate_limited)]
"""The calling tenant; answers 429 once it exceeds the rate limit."""


@dataclass(frozen=True)
class StatusLinks:
    """Where clients follow a document or a re-embedding: the status service."""

    base: str

    def document(self, document_id: UUID) -> str:
        return f"{self.base}/v1/documents/{document_id}"

    def reindex(self, reindex_id: UUID) -> str:
        return f"{self.base}/v1/reindex/{reindex_id}"


async def _links(settings: SettingsDep) -> StatusLinks:
    return StatusLinks(str(settings.status_public_url).rstrip("/"))


LinksDep = Annotated[StatusLinks, Depends(_links)]

CorrelationId = Annotated[str | None, Header(max_length=128)]
"""``X-Correlation-Id``: carried by the events the request causes (a new one when absent)."""
