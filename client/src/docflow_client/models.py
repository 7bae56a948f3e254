"""The answers of docflow's HTTP APIs as typed models, one per schema of
docs/openapi/gateway.json and docs/openapi/status.json.

Fields the services add later are kept (``extra="allow"``), so an older
client still reads a newer service.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """No more changes come unless someone retries the document."""
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


class Stage(StrEnum):
    UPLOADED = "uploaded"
    EXTRACTING = "extracting"
    EMBEDDING = "embedding"
    INDEXED = "indexed"


class QueueStage(StrEnum):
    """A stage a document waits for (``waiting_for``, ``queue_stage``)."""

    EXTRACTING = "extracting"
    OCR = "ocr"
    EMBEDDING = "embedding"


# --- gateway ---------------------------------------------------------------


class AcceptedDocument(Model):
    """One uploaded file: its document id and where its status is."""

    id: UUID
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    status: str = Field(description="pending, or duplicate (the tenant has this file already)")
    status_url: str


class UploadAccepted(Model):
    documents: list[AcceptedDocument]


class SearchResult(Model):
    document_id: UUID
    filename: str
    chunk_index: int
    page: int | None
    page_end: int | None
    score: float
    text: str


# hybrid: by meaning and by words, fused by rank; dense: by meaning; keyword: by words.
SearchMode = Literal["hybrid", "dense", "keyword"]


class DocumentResult(Model):
    """One document of a search grouped by document, with its best chunks."""

    document_id: UUID
    filename: str
    score: float
    chunks: list[SearchResult]


class SearchResults(Model):
    query: str
    model: str
    # How the results were found, and why not as asked (a collection made before
    # keyword search answers hybrid by meaning only until it is re-embedded).
    mode: str = "hybrid"
    note: str | None = None
    # Whether a reranker ordered them (its scores then).
    reranked: bool = False
    results: list[SearchResult]
    # With group="document": each document once, best first.
    documents: list[DocumentResult] | None = None


class Chunk(Model):
    index: int
    text: str
    page: int | None
    page_end: int | None


class ChunkPage(Model):
    id: UUID
    extracted: bool
    chunks: list[Chunk]
    next_cursor: str | None


class OperationAccepted(Model):
    """A retry, cancel or delete was accepted; the status follows at ``status_url``."""

    id: UUID
    operation: str
    attempt: int | None
    status_url: str


class EmbeddingSpec(Model):
    backend: str
    model: str
    dimensions: int | None = None


class ReindexAccepted(Model):
    reindex_id: UUID
    status_url: str


class DeadLetter(Model):
    document_id: str
    topic: str
    service: str
    stage: str
    error: str
    retries: int
    dead_lettered_at: datetime
    partition: int
    offset: int


class DeadLetterList(Model):
    dead_letters: list[DeadLetter]
    next_cursor: str | None


class Redriven(Model):
    id: UUID
    attempt: int | None
    status_url: str


class Skipped(Model):
    id: UUID
    reason: str


class RedriveResult(Model):
    dead_letters: int
    retried: list[Redriven]
    skipped: list[Skipped]


class Webhook(Model):
    """A registered webhook endpoint (its secret is shown only when it is made)."""

    id: UUID
    url: str
    events: list[str]
    description: str | None
    created_at: datetime


class WebhookCreated(Webhook):
    """The endpoint just registered, with its ``whsec_`` secret, shown this once:
    verify deliveries with it (``verify_webhook``)."""

    secret: str


class WebhookSecretRotated(Model):
    """An endpoint's new ``whsec_`` secret, shown this once; deliveries are signed
    with the previous one too until ``previous_secret_expires_at``."""

    id: UUID
    secret: str
    previous_secret_expires_at: datetime


class WebhookList(Model):
    webhooks: list[Webhook]


class WebhookDelivery(Model):
    """One event sent (or being sent) to an endpoint, and how it went."""

    id: UUID
    webhook_id: str
    document_id: UUID
    event: str
    state: str
    attempts: int
    response_status: int | None
    response_excerpt: str | None
    occurred_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None


class WebhookDeliveryList(Model):
    """A page of an endpoint's deliveries, newest first."""

    deliveries: list[WebhookDelivery]
    # Pass as ``cursor`` for the next page; None on the last (or an older gateway).
    next_cursor: str | None = None


# --- status service --------------------------------------------------------


class ErrorInfo(Model):
    code: str
    message: str
    stage: Stage
    retryable: bool


class DocumentStatus(Model):
    """A document's processing status (docs/architecture.md, "Status contract")."""

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
    attempt: int
    stalled: bool
    retries: int = 0
    # While it waits or works: the stage it waits for, its place in the queue of
    # the stage it is at, and when it should be done (null when not known).
    waiting_for: QueueStage | None = None
    queue_stage: QueueStage | None = None
    queue_position: int | None = None
    estimated_completion_at: datetime | None = None
    metadata: dict[str, Any] | None = None


class DocumentList(Model):
    documents: list[DocumentStatus]
    next_cursor: str | None


class DocumentCounts(Model):
    pending: int
    processing: int
    completed: int
    failed: int
    cancelled: int
    total: int


class StageSpan(Model):
    stage: Stage
    attempt: int
    started_at: datetime
    ended_at: datetime
    duration_s: float
    outcome: str
    error: ErrorInfo | None


class TimelineEvent(Model):
    event_type: str
    attempt: int
    occurred_at: datetime
    stage: Stage | None
    error: ErrorInfo | None


class Timeline(Model):
    id: UUID
    stages: list[StageSpan]
    events: list[TimelineEvent]


class ReindexStatus(Model):
    id: UUID
    status: str
    backend: str
    model: str
    dimensions: int | None
    documents: int | None
    source: str | None
    target: str | None
    sweep: int
    done: int
    total: int | None
    embedded: int
    progress: int
    switched: bool
    message: str
    error: str | None
    created_at: datetime
    updated_at: datetime


class StatusChange(Model):
    """One event of a status stream: a document's new status, or its deletion.

    ``event_id`` resumes the stream after it (``Last-Event-ID``)."""

    kind: Literal["status", "deleted"]
    id: UUID
    document: DocumentStatus | None = None
    version: int | None = Field(default=None, description="The tenant stream's: keep the highest")
    event_id: str | None = None

    @classmethod
    def of(cls, event: str, data: dict[str, Any], event_id: str | None) -> StatusChange:
        if event == "deleted":
            return cls(kind="deleted", id=data["id"], event_id=event_id)
        document = DocumentStatus.model_validate(data)
        version = data.get("version")
        return cls(
            kind="status",
            id=document.id,
            document=document,
            version=version if isinstance(version, int) else None,
            event_id=event_id,
        )
