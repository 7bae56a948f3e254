"""Document operations: retry, cancel, delete — each an event the other services act on.

The gateway checks what it can: that the document is the caller's (its own
records) and, for retry and cancel, that the document's current status allows
the operation (asked of the status service). Then it publishes the event and
answers; the extractor, embedder and status service do the rest
(docs/events.md, "Operations on a document").

Each operation claims what it does in the gateway's records before it
publishes (compare and set, ``SqlRegistry.start_attempt`` …): of concurrent
retries of one attempt, or cancels, or deletes of one document, one wins and
the others are refused (409), even while the status service still shows the
document as it was. A claim whose event could not be published is given back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from anyio import to_thread

from docflow_gateway.adapters.registry import DocumentRecord, SqlRegistry
from docflow_shared.blobstore import BlobStore, chunks_key
from docflow_shared.events import (
    DocumentCancelled,
    DocumentDeleted,
    DocumentRetryRequested,
    Stage,
)
from docflow_shared.messaging import Publish

logger = logging.getLogger(__name__)

TERMINAL = frozenset({"completed", "failed", "cancelled"})
RETRYABLE = frozenset({"failed", "cancelled"})


class StatusReader(Protocol):
    """The status service, as the gateway asks it about one document."""

    async def get(self, document_id: UUID) -> dict[str, Any] | None:
        """The document's status (docs/architecture.md, "Status contract"), or None
        if the status service has none yet."""
        ...


class OperationRefused(Exception):
    """The document's status does not allow the operation now."""


class OperationConflict(OperationRefused):
    """A concurrent operation on the document claimed it first."""


@dataclass(frozen=True)
class Current:
    """What the operation needs of the document's status."""

    status: str
    stage: str
    attempt: int
    error_stage: str | None

    @classmethod
    def of(cls, status: dict[str, Any] | None) -> Current:
        if status is None:
            # Accepted (the gateway has its record) but not projected yet.
            return cls(status="pending", stage=Stage.UPLOADED.value, attempt=1, error_stage=None)
        error = status.get("error") or {}
        return cls(
            status=status["status"],
            stage=status["stage"],
            attempt=int(status.get("attempt", 1)),
            error_stage=error.get("stage"),
        )


def _resume_at(current: Current) -> Stage:
    """Where a retry starts: at embedding only when that is where the attempt stopped."""
    stopped_at = current.error_stage or current.stage
    return Stage.EMBEDDING if stopped_at == Stage.EMBEDDING.value else Stage.EXTRACTING


async def retry(
    record: DocumentRecord,
    status: StatusReader,
    *,
    correlation_id: str,
    publish: Publish,
    records: SqlRegistry,
) -> DocumentRetryRequested:
    """Start a new attempt of a failed or cancelled document, at the stage it stopped."""
    current = Current.of(await status.get(record.id))
    if current.status not in RETRYABLE:
        raise OperationRefused(
            f"document {record.id} is {current.status}; only failed or cancelled documents "
            "can be retried"
        )
    attempt = current.attempt + 1
    if not await records.start_attempt(record.id, attempt):
        raise OperationConflict(
            f"attempt {attempt} of document {record.id} was started by another retry"
        )
    event = DocumentRetryRequested(
        document_id=record.id,
        tenant_id=record.tenant_id,
        correlation_id=correlation_id,
        attempt=attempt,
        from_stage=_resume_at(current),
        filename=record.filename,
        content_type=record.content_type,
        charset=record.charset,
        blob_key=record.blob_key,
        metadata=record.meta,
        uploaded_at=record.created_at,
    )
    try:
        await publish(event)
    except BaseException:
        await records.undo_attempt(record.id, attempt)
        raise
    return event


async def cancel(
    record: DocumentRecord,
    status: StatusReader,
    *,
    correlation_id: str,
    publish: Publish,
    records: SqlRegistry,
) -> DocumentCancelled:
    """Stop a pending or processing document at the next batch of each stage."""
    current = Current.of(await status.get(record.id))
    if current.status in TERMINAL:
        raise OperationRefused(
            f"document {record.id} is already {current.status}; only pending or processing "
            "documents can be cancelled"
        )
    if not await records.stop_attempt(record.id, current.attempt):
        raise OperationConflict(
            f"attempt {current.attempt} of document {record.id} is being cancelled already"
        )
    event = DocumentCancelled(
        document_id=record.id,
        tenant_id=record.tenant_id,
        correlation_id=correlation_id,
        attempt=current.attempt,
    )
    try:
        await publish(event)
    except BaseException:
        await records.undo_stop(record.id, current.attempt)
        raise
    return event


async def delete(
    record: DocumentRecord,
    *,
    correlation_id: str,
    publish: Publish,
    blobs: BlobStore,
    records: SqlRegistry,
) -> DocumentDeleted:
    """Announce the deletion, then remove the blobs and the gateway's record.

    The event goes first: once Kafka has it, the embedder removes the vectors
    and the status service hides the document, even if this process stops
    before removing the blobs.
    """
    if not await records.start_deleting(record.id):
        raise OperationConflict(f"document {record.id} is being deleted already")
    event = DocumentDeleted(
        document_id=record.id, tenant_id=record.tenant_id, correlation_id=correlation_id
    )
    try:
        await publish(event)
    except BaseException:
        await records.undo_deleting(record.id)
        raise
    for key in (record.blob_key, chunks_key(record.tenant_id, record.id)):
        await to_thread.run_sync(blobs.delete, key)
    await records.remove([record.id])
    return event
