"""The gateway's HTTP API (DESIGN.md, "Gateway")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, FastAPI, File, Header, Request, Response, UploadFile
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from docflow_gateway.domain.files import EmptyFileError, UnsupportedFileError, display_name
from docflow_gateway.handlers import IncomingFile, PublishError, accept_uploads
from docflow_gateway.settings import GatewaySettings
from docflow_shared.blobstore import BlobStore
from docflow_shared.events import ContentType, DocumentUploaded
from docflow_shared.http import PROBLEM_JSON, Lifespan, Problem, service_app
from docflow_shared.messaging import Publish
from docflow_shared.probes import Check

# Seconds a client should wait before retrying when Kafka is unavailable.
RETRY_AFTER_S = 5


@dataclass
class Gateway:
    """Everything the HTTP layer needs, wired by ``bootstrap`` (or by tests)."""

    settings: GatewaySettings
    blobs: BlobStore
    publish: Publish
    checks: Mapping[str, Check]
    registry: CollectorRegistry
    # Starts and stops what the publisher needs (the Kafka producer).
    lifespan: Lifespan | None = None

    def status_url(self, document_id: UUID) -> str:
        base = str(self.settings.status_public_url).rstrip("/")
        return f"{base}/v1/documents/{document_id}"


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


class AcceptedDocument(BaseModel):
    """A document docflow has stored and will process."""

    id: UUID
    filename: str
    content_type: ContentType
    size_bytes: int
    sha256: str
    status: str = "pending"
    status_url: str


class UploadAccepted(BaseModel):
    """The answer to an upload: one entry per file, in request order."""

    documents: list[AcceptedDocument]


def _accepted(gateway: Gateway, event: DocumentUploaded) -> AcceptedDocument:
    return AcceptedDocument(
        id=event.document_id,
        filename=event.filename,
        content_type=event.content_type,
        size_bytes=event.size_bytes,
        sha256=event.sha256,
        status_url=gateway.status_url(event.document_id),
    )


_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}

router = APIRouter()


@router.post(
    "/v1/documents",
    status_code=202,
    responses={
        415: {"description": "A file is not PDF, Markdown or text", **_PROBLEM},
        422: {"description": "No `file` part, or an empty file", **_PROBLEM},
        503: {"description": "Kafka did not acknowledge; retry later", **_PROBLEM},
    },
)
async def upload_documents(
    gateway: GatewayDep,
    response: Response,
    file: Annotated[
        list[UploadFile], File(description="One or more documents (PDF, Markdown, text)")
    ],
    x_correlation_id: Annotated[str | None, Header(max_length=128)] = None,
) -> UploadAccepted:
    """Accept documents for processing; answers once Kafka holds each one's event."""
    incoming = [IncomingFile(display_name(part.filename), part.file) for part in file]
    try:
        events = await accept_uploads(
            incoming,
            tenant_id=gateway.settings.default_tenant,
            correlation_id=x_correlation_id or str(uuid4()),
            blobs=gateway.blobs,
            publish=gateway.publish,
        )
    except UnsupportedFileError as exc:
        raise Problem(415, "unsupported-media-type", str(exc)) from exc
    except EmptyFileError as exc:
        raise Problem(422, "empty-file", f"{exc}; upload a file with content") from exc
    except PublishError as exc:
        raise Problem(
            503,
            "unavailable",
            f"the event store did not acknowledge {', '.join(map(repr, exc.failed))}; "
            "nothing was kept for those files, upload them again",
            headers={"Retry-After": str(RETRY_AFTER_S)},
            documents=[_accepted(gateway, e).model_dump(mode="json") for e in exc.accepted],
        ) from exc
    accepted = [_accepted(gateway, event) for event in events]
    if len(accepted) == 1:
        response.headers["Location"] = accepted[0].status_url
    return UploadAccepted(documents=accepted)


def create_app(gateway: Gateway) -> FastAPI:
    """The gateway ASGI app around the given wiring."""
    app = service_app(
        title="docflow gateway",
        summary="Upload documents; follow each through its status link.",
        router=router,
        checks=gateway.checks,
        registry=gateway.registry,
        lifespan=gateway.lifespan,
    )
    app.state.gateway = gateway
    return app
