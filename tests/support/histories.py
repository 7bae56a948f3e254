"""A realistic event history of one document, as the services produce it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from hypothesis import strategies as st

from docflow_shared.events import (
    Chunk,
    DocumentCancelled,
    DocumentDeleted,
    DocumentFailed,
    DocumentIndexed,
    DocumentProgressed,
    DocumentRetryRequested,
    DocumentStalled,
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


Step = tuple[type[Event], dict[str, Any]]


def batch_steps(b: int, *, batches: int, per_batch: int, pages: int, embedded: bool) -> list[Step]:
    """What batch ``b`` of a document causes, as the services report it: the chunk
    batch, the extractor's page progress and, if ``embedded``, the embedder's."""
    last = b == batches - 1
    total = per_batch * batches
    steps: list[Step] = [
        (
            TextExtracted,
            {
                "batch": b,
                "chunks": chunks(b * per_batch, per_batch),
                "last": last,
                "chunks_total": total if last else None,
                "pages": pages if last else None,
            },
        ),
        (
            DocumentProgressed,
            {
                "stage": Stage.EXTRACTING,
                "done": min(pages, (b + 1) * pages // batches),
                "total": pages,
            },
        ),
    ]
    if embedded:
        steps.append(
            (
                DocumentProgressed,
                {
                    "stage": Stage.EMBEDDING,
                    "done": (b + 1) * per_batch,
                    "total": total if last else None,
                },
            )
        )
    return steps


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
        steps = batch_steps(b, batches=batches, per_batch=per_batch, pages=pages, embedded=True)
        # The batch, then the extractor's progress 0.1 s later, the embedder's 0.5 s later.
        for offset, (kind, fields) in zip((0.0, 0.1, 0.5), steps, strict=True):
            events.append(kind(**envelope(d, second + offset), **fields))
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


def retry_of(document_id: UUID, second: float, attempt: int = 2) -> DocumentRetryRequested:
    """The gateway's retry of a document's extraction, starting ``attempt``."""
    return DocumentRetryRequested(
        **envelope(document_id, second),
        attempt=attempt,
        from_stage=Stage.EXTRACTING,
        filename="report.pdf",
        content_type="application/pdf",
        blob_key=f"t1/{document_id}/original",
    )


# -- random histories (hypothesis) -------------------------------------------

OUTCOMES = ("completed", "failed_extracting", "failed_embedding", "cancelled")


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """One document's events in the order the services produce them.

    One to three attempts (each after the first started by a retry); each
    attempt extracts some pages in batches while the embedder follows batch
    by batch, and ends completed, failed while extracting or embedding, or
    cancelled with work still in flight. Sometimes the document is deleted
    at the end. Times only grow, so this order is also the order in time.
    """
    d = draw(st.uuids(version=4))
    clock = iter(range(1, 10_000))

    def at() -> dict:
        return envelope(d, next(clock))

    events: list[Event] = [
        DocumentUploaded(
            **envelope(d, 0),
            filename="report.pdf",
            content_type="application/pdf",
            size_bytes=1000,
            sha256="0" * 64,
            blob_key=f"t1/{d}/original",
        )
    ]
    # The file is the same in every attempt, and so are its pages and chunks.
    pages = draw(st.integers(1, 12))
    batches = draw(st.integers(1, 4))
    per_batch = draw(st.integers(0, 5))
    total = batches * per_batch
    attempts = draw(st.integers(1, 3))
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            events.append(
                DocumentRetryRequested(
                    **at(),
                    attempt=attempt,
                    from_stage=Stage.EXTRACTING,
                    filename="report.pdf",
                    content_type="application/pdf",
                    blob_key=f"t1/{d}/original",
                )
            )
        last_attempt = attempt == attempts
        outcome = draw(st.sampled_from(OUTCOMES if last_attempt else OUTCOMES[1:]))
        # How many batches the extractor sends, and the embedder embeds, before the end.
        sent = (
            batches
            if outcome in ("completed", "failed_embedding")
            else draw(st.integers(0, batches - 1))
        )
        embedded = sent if outcome == "completed" else draw(st.integers(0, sent))

        def attempt_event(kind: type[Event], attempt: int = attempt, **fields: object) -> Event:
            return kind(**at(), attempt=attempt, **fields)

        work: list[Event] = [
            attempt_event(DocumentProgressed, stage=Stage.EXTRACTING, done=0, total=pages)
        ]
        for b in range(sent):
            work += [
                attempt_event(kind, **fields)
                for kind, fields in batch_steps(
                    b, batches=batches, per_batch=per_batch, pages=pages, embedded=b < embedded
                )
            ]
        if outcome == "completed":
            work.append(
                attempt_event(
                    DocumentIndexed, chunks_total=total, collection="c", embedding_model="m"
                )
            )
        elif outcome == "cancelled":
            # Work in flight when the cancel arrived still reports after it.
            in_flight = draw(st.integers(0, min(2, len(work))))
            work.insert(len(work) - in_flight, attempt_event(DocumentCancelled))
        else:
            stage = Stage.EXTRACTING if outcome == "failed_extracting" else Stage.EMBEDDING
            error = ErrorInfo(
                code=ErrorCode.CORRUPT, message="damaged", stage=stage, retryable=False
            )
            work.append(attempt_event(DocumentFailed, error=error))
        # The watchdog may find the attempt stalled anywhere along the way
        # (``since`` is set below, once times are known).
        for _ in range(draw(st.integers(0, 2))):
            position = draw(st.integers(0, len(work)))
            work.insert(position, attempt_event(DocumentStalled, since=T0, stage=Stage.EXTRACTING))
        events += work
    if draw(st.booleans()):
        events.append(DocumentDeleted(**at()))
    # Times in the order of the list, whatever was inserted where; a stall
    # is seen after the event before it, with nothing since.
    return [
        e.model_copy(
            update={"occurred_at": T0 + timedelta(seconds=n)}
            | ({"since": T0 + timedelta(seconds=n - 1)} if isinstance(e, DocumentStalled) else {})
        )
        for n, e in enumerate(events)
    ]


@st.composite
def deliveries(draw: st.DrawFn, events: list[Event]) -> list[Event]:
    """``events`` as the status service may receive them from Kafka.

    Each topic keeps its own order (one document's events share a
    partition), topics interleave at random, and some events come again
    (redelivered after a consumer restart), later than the first time.
    """
    queues: dict[str, list[Event]] = {}
    for event in events:
        queues.setdefault(event.TOPIC, []).append(event)
    delivered: list[Event] = []
    while any(queues.values()):
        topic = draw(st.sampled_from(sorted(t for t, q in queues.items() if q)))
        delivered.append(queues[topic].pop(0))
    for _ in range(draw(st.integers(0, 6))):
        original = draw(st.integers(0, len(delivered) - 1))
        again = draw(st.integers(original + 1, len(delivered)))
        delivered.insert(again, delivered[original])
    return delivered
