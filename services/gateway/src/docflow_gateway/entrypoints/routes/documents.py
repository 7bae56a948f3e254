"""Operations on an uploaded document: retry, cancel, delete (``operations``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from docflow_gateway import operations
from docflow_gateway.adapters.registry import DocumentRecord
from docflow_gateway.adapters.status_client import StatusUnavailable
from docflow_gateway.entrypoints.deps import (
    BlobsDep,
    CorrelationId,
    LinksDep,
    PublishDep,
    RateLimitedTenant,
    RecordsDep,
    StatusDep,
    StatusLinks,
)
from docflow_gateway.entrypoints.problems import unavailable
from docflow_gateway.operations import OperationRefused
from docflow_shared.http import Problem, problem_responses

router = APIRouter()


class OperationAccepted(BaseModel):
    """An operation docflow accepted; its effect shows in the document's status."""

    id: UUID
    operation: str = Field(description="`retry`, `cancel` or `delete`")
    attempt: int | None = Field(
        description="The attempt a retry starts, or the one a cancel stops; null for delete"
    )
    status_url: str


_OPERATION_PROBLEMS = problem_responses(
    {
        401: "Authentication is on and no valid API key was sent",
        404: "No such document for this tenant",
        409: "The document's status does not allow this operation now, or a concurrent "
        "operation on it won",
        422: "Malformed request: an id that is not a UUID, an over-long header",
        429: "The tenant sent too many requests; see Retry-After",
        503: "Kafka or the status service is unavailable; retry after Retry-After",
    }
)


# Every operation answers alike (202, the same problems).
_OPERATION: dict[str, Any] = {
    "status_code": 202,
    "response_model": OperationAccepted,
    "responses": _OPERATION_PROBLEMS,
}


async def _own_document(
    document_id: UUID, records: RecordsDep, tenant: RateLimitedTenant
) -> DocumentRecord:
    record = await records.get(document_id, tenant)
    if record is None:
        raise Problem(
            404,
            "document-not-found",
            f"no document {str(document_id)!r}; use the id the upload answered with",
        )
    return record


OwnDocument = Annotated[DocumentRecord, Depends(_own_document)]
"""The document of the path, if it is the calling tenant's (404 otherwise)."""


@router.post("/v1/documents/{document_id}/retry", operation_id="retry_document", **_OPERATION)
async def retry_document(
    record: OwnDocument,
    status: StatusDep,
    records: RecordsDep,
    publish: PublishDep,
    links: LinksDep,
    x_correlation_id: CorrelationId = None,
) -> OperationAccepted:
    """Process a failed or cancelled document again, from the stage where it stopped."""
    with _answering():
        event = await operations.retry(
            record,
            status,
            correlation_id=x_correlation_id or str(uuid4()),
            publish=publish,
            records=records,
        )
    return _accepted(record, "retry", event.attempt, links)


@router.post("/v1/documents/{document_id}/cancel", operation_id="cancel_document", **_OPERATION)
async def cancel_document(
    record: OwnDocument,
    status: StatusDep,
    records: RecordsDep,
    publish: PublishDep,
    links: LinksDep,
    x_correlation_id: CorrelationId = None,
) -> OperationAccepted:
    """Stop a pending or processing document; each stage stops at its next batch."""
    with _answering():
        event = await operations.cancel(
            record,
            status,
            correlation_id=x_correlation_id or str(uuid4()),
            publish=publish,
            records=records,
        )
    return _accepted(record, "cancel", event.attempt, links)


@router.delete("/v1/documents/{document_id}", operation_id="delete_document", **_OPERATION)
async def delete_document(
    record: OwnDocument,
    records: RecordsDep,
    blobs: BlobsDep,
    publish: PublishDep,
    links: LinksDep,
    x_correlation_id: CorrelationId = None,
) -> OperationAccepted:
    """Delete a document: its file, chunks, vectors and status go (status then answers 404)."""
    with _answering():
        await operations.delete(
            record,
            correlation_id=x_correlation_id or str(uuid4()),
            publish=publish,
            blobs=blobs,
            records=records,
        )
    return _accepted(record, "delete", None, links)


@contextmanager
def _answering() -> Iterator[None]:
    """An operation's failures as problems: 409 when refused, 503 when unavailable."""
    try:
        yield
    except OperationRefused as exc:
        raise Problem(409, "operation-not-allowed", str(exc)) from exc
    except StatusUnavailable as exc:
        raise unavailable("the status service", exc) from exc
    except Exception as exc:
        # The publish is the only other step that can fail (Kafka unavailable).
        raise unavailable("the event store", exc) from exc


def _accepted(
    record: DocumentRecord, operation: str, attempt: int | None, links: StatusLinks
) -> OperationAccepted:
    return OperationAccepted(
        id=record.id, operation=operation, attempt=attempt, status_url=links.document(record.id)
    )
