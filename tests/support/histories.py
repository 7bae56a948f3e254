"""A realistic event history of one document, as the services produce it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from docflow_shared.events import (
    Chunk,
    DocumentFailed,
    DocumentIndexed,
    DocumentProgressed,
    DocumentUploaded,
    ErrorCode,
    ErrorInfo,
    Event,
    Stage,
    TextExtracted,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def envelope(document_id: UUID, second: float) -> dict:
    return {
        "document_id": document_id,
        "tenant_id": "t1",
        "correlation_id": "c",
        "occurred_at": T0 + timedelta(seconds=second),
    }


def chunks(first: int, count: int) -> list[Chunk]:
    return [
        Chunk(index=i, text=f"c{i}", page=1, char_start=0, char_end=2)
        for i in range(first, first + count)
    ]


def successful(
    document_id: UUID | None = None, pages: int = 10, per_batch: int = 4, batches: int = 3
) -> list[Event]:
    """Upload, extraction of ``pages`` with batches along the way, embedding, indexed."""
    d = document_id or uuid4()
    total = per_batch * batches
    events: list[Event] = [
        DocumentUploaded(
            **envelope(d, 0),
            filename="report.pdf",
            content_type="application/pdf",
            size_bytes=1000,
            sha256="0" * 64,
            blob_key=f"t1/{d}/original",
        ),
        DocumentProgressed(**envelope(d, 1), stage=Stage.EXTRACTING, done=0, total=pages),
    ]
    second = 2.0
    for b in range(batches):
        last = b == batches - 1
        events.append(
            TextExtracted(
                **envelope(d, second),
                batch=b,
                chunks=chunks(b * per_batch, per_batch),
                last=last,
                chunks_total=total if last else None,
                pages=pages if last else None,
            )
        )
        events.append(
            DocumentProgressed(
                **envelope(d, second + 0.1),
                stage=Stage.EXTRACTING,
                done=min(pages, (b + 1) * pages // batches),
                total=pages,
            )
        )
        events.append(
            DocumentProgressed(
                **envelope(d, second + 0.5),
                stage=Stage.EMBEDDING,
                done=(b + 1) * per_batch,
                total=total if last else None,
            )
        )
        second += 1
    events.append(
        DocumentIndexed(
            **envelope(d, second), chunks_total=total, collection="c", embedding_model="m"
        )
    )
    return events


def failed_while_extracting(document_id: UUID | None = None) -> list[Event]:
    d = document_id or uuid4()
    return [
        successful(d)[0],
        DocumentFailed(
            **envelope(d, 1),
            error=ErrorInfo(
                code=ErrorCode.ENCRYPTED,
                message="needs a password",
                stage=Stage.EXTRACTING,
                retryable=False,
            ),
        ),
    ]
