"""The status service's HTTP API (DESIGN.md, "Status service")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field

from docflow_shared.events import ErrorInfo, Stage
from docflow_shared.http import PROBLEM_JSON, Lifespan, Problem, Tenant, service_app
from docflow_shared.probes import Check
from docflow_status.domain.projection import DocumentState, Status
from docflow_status.settings import StatusSettings


class DocumentReader(Protocol):
    async def get(self, document_id: UUID, tenant_id: str) -> DocumentState | None: ...


@dataclass
class StatusApi:
    """Everything the HTTP layer needs, wired by ``bootstrap`` (or by tests)."""

    settings: StatusSettings
    documents: DocumentReader
    checks: Mapping[str, Check]
    registry: CollectorRegistry
    # Starts and stops the schema, the projector's consumer and the engine.
    lifespan: Lifespan | None = None


def _api(request: Request) -> StatusApi:
    api: StatusApi = request.app.state.status_api
    return api


StatusApiDep = Annotated[StatusApi, Depends(_api)]


class DocumentStatus(BaseModel):
    """A document's processing status (DESIGN.md, ``GET /v1/documents/{id}``)."""

    id: UUID
    filename: str | None
    status: Status
    stage: Stage
    progress: int
    message: str
    pages: int | None
    chunks_total: int | None
    chunks_embedded: int
    error: ErrorInfo | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime | None
    attempt: int = Field(description="1 for the upload, one more for each retry")

    @classmethod
    def of(cls, state: DocumentState) -> DocumentStatus:
        return cls.model_validate(state, from_attributes=True)


_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}

router = APIRouter()


@router.get(
    "/v1/documents/{document_id}",
    responses={
        401: {"description": "Authentication is on and no valid API key was sent", **_PROBLEM},
        404: {"description": "No such document for this tenant", **_PROBLEM},
    },
)
async def get_document(document_id: str, api: StatusApiDep, tenant: Tenant) -> DocumentStatus:
    """A document's status, stage and progress."""
    try:
        parsed = UUID(document_id)
    except ValueError:
        parsed = None
    state = await api.documents.get(parsed, tenant) if parsed else None
    if state is None:
        raise Problem(
            404,
            "document-not-found",
            f"no document {document_id!r}; use the status_url the upload answered with "
            "(a document appears here within moments of its upload being accepted)",
        )
    return DocumentStatus.of(state)


def create_app(api: StatusApi) -> FastAPI:
    """The status ASGI app around the given wiring."""
    app = service_app(
        title="docflow status",
        summary="Where each document is, how far along, and why it failed.",
        router=router,
        checks=api.checks,
        registry=api.registry,
        authenticator=api.settings.authenticator(),
        lifespan=api.lifespan,
    )
    app.state.status_api = api
    return app
