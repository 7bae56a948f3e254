"""The event contract: every message docflow puts on Kafka.

Each model names its topic in ``TOPIC``. Bodies are JSON; the envelope fields
(``event_id`` … ``correlation_id``) are on every event (DESIGN.md, "Event
contract"). Evolving an event means adding *optional* fields only; consumers
ignore fields they do not know (``extra="ignore"``), so an old consumer keeps
working. A breaking change is a new model on a ``.v2`` topic.

Files never travel in events: ``DocumentUploaded`` carries a blob key and the
sha256 of the stored bytes (claim check), and chunk batches are kept far
below Kafka's 1 MiB message limit by the extractor.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from docflow_shared import topics


class Stage(StrEnum):
    """Where a document is in the pipeline, in the order it gets there."""

    UPLOADED = "uploaded"
    EXTRACTING = "extracting"
    EMBEDDING = "embedding"
    INDEXED = "indexed"


class Status(StrEnum):
    """What became of a document (DESIGN.md, status contract)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ErrorCode(StrEnum):
    """Stable failure codes clients can branch on (DESIGN.md, status contract)."""

    ENCRYPTED = "encrypted"
    CORRUPT = "corrupt"
    UNSUPPORTED = "unsupported"
    LIMIT_EXCEEDED = "limit_exceeded"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


ContentType = Literal["application/pdf", "text/markdown", "text/plain"]


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Fields shared by every event: document events and operation events alike."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TOPIC: ClassVar[str]

    event_type: str
    # The only version these models read: an event of another version is
    # unreadable here (dead-lettered), and a breaking change is a new topic.
    schema_version: Literal[1] = 1
    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: AwareDatetime = Field(default_factory=_now)
    tenant_id: str
    # Ties together everything one request caused, across services and logs.
    correlation_id: str

    @property
    @abstractmethod
    def subject(self) -> UUID:
        """What the event is about: its Kafka key, so events about one thing stay in order."""


class Event(Envelope):
    """A document event: the envelope plus the document and its attempt."""

    document_id: UUID
    # Which processing attempt of the document this event belongs to: 1 for the
    # upload, one more for each retry. Optional (added in schema 1): absent
    # means 1.
    attempt: int = Field(default=1, ge=1)

    @property
    def subject(self) -> UUID:
        return self.document_id

    @classmethod
    def caused_by(cls, cause: Event, **fields: Any) -> Self:
        """A new event about the same document, in the same correlation and attempt."""
        return cls(
            **{
                "document_id": cause.document_id,
                "tenant_id": cause.tenant_id,
                "correlation_id": cause.correlation_id,
                "attempt": cause.attempt,
                **fields,
            }
        )


class DocumentUploaded(Event):
    """The gateway stored a file and accepted it for processing."""

    TOPIC: ClassVar[str] = topics.UPLOADED
    event_type: Literal["docflow.document.uploaded"] = "docflow.document.uploaded"

    filename: str
    content_type: ContentType
    size_bytes: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # Claim check: where the bytes are in the blob store.
    blob_key: str
    # How Markdown and text are encoded, as the gateway found it (Python codec
    # name); None for PDFs. Added in schema 1 as optional: older events mean UTF-8.
    charset: str | None = None


class DocumentProgressed(Event):
    """Work on a document advanced: pages extracted or chunks embedded so far.

    ``done`` never decreases within one attempt; ``total`` is ``None`` while it
    is not yet known (the embedder learns the chunk total only with the last
    batch).
    """

    TOPIC: ClassVar[str] = topics.PROGRESSED
    event_type: Literal["docflow.document.progressed"] = "docflow.document.progressed"

    stage: Literal[Stage.EXTRACTING, Stage.EMBEDDING]
    done: int = Field(ge=0)
    total: int | None = Field(default=None, ge=0)


class Chunk(BaseModel):
    """A piece of a document's text, the unit that is embedded."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    index: int = Field(ge=0)
    text: str
    # 1-based number of the page the chunk starts on (PDF); None for unpaginated text.
    page: int | None = Field(default=None, ge=1)
    # The page it ends on: the same page, or a later one when it runs across a
    # page break. Absent in events written before chunks could span pages.
    page_end: int | None = Field(default=None, ge=1)
    # Where the chunk starts in the text of ``page`` and ends in the text of
    # ``page_end`` (for unpaginated text, in the document's text).
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)


class TextExtracted(Event):
    """A batch of chunks extracted from a document, in order.

    Batches of one document are numbered from 0 and published in order on one
    partition. The batch with ``last=True`` carries ``chunks_total``; a
    document without extractable text is a single last batch with no chunks.
    """

    TOPIC: ClassVar[str] = topics.EXTRACTED
    event_type: Literal["docflow.document.extracted"] = "docflow.document.extracted"

    batch: int = Field(ge=0)
    chunks: list[Chunk]
    last: bool
    chunks_total: int | None = Field(default=None, ge=0)
    pages: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _last_batch_has_total(self) -> Self:
        # The embedder declares a document indexed from this number.
        if self.last and self.chunks_total is None:
            raise ValueError("the last batch must carry chunks_total")
        return self


class DocumentIndexed(Event):
    """Every chunk of a document is embedded and stored in the vector store."""

    TOPIC: ClassVar[str] = topics.INDEXED
    event_type: Literal["docflow.document.indexed"] = "docflow.document.indexed"

    chunks_total: int = Field(ge=0)
    collection: str
    embedding_model: str


class ErrorInfo(BaseModel):
    """Why a document failed, in words a person can act on."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: ErrorCode
    message: str
    stage: Stage
    retryable: bool


class DocumentFailed(Event):
    """A document cannot be processed further."""

    TOPIC: ClassVar[str] = topics.FAILED
    event_type: Literal["docflow.document.failed"] = "docflow.document.failed"

    error: ErrorInfo


class DocumentRetryRequested(Event):
    """Start a new attempt for a failed or cancelled document (``attempt`` is its number).

    Carries what the extractor needs to start again (the claim check), and
    the stage to resume at: from ``embedding`` the stored chunks are sent
    again without reading the file; otherwise the file is extracted anew.
    """

    TOPIC: ClassVar[str] = topics.RETRIED
    event_type: Literal["docflow.document.retried"] = "docflow.document.retried"

    from_stage: Literal[Stage.EXTRACTING, Stage.EMBEDDING]
    filename: str
    content_type: ContentType
    charset: str | None = None
    blob_key: str


class DocumentCancelled(Event):
    """Stop working on the document's current ``attempt``; stages stop at their next batch."""

    TOPIC: ClassVar[str] = topics.CANCELLED
    event_type: Literal["docflow.document.cancelled"] = "docflow.document.cancelled"


class DocumentDeleted(Event):
    """The document is gone: its blobs, vectors and status are removed."""

    TOPIC: ClassVar[str] = topics.DELETED
    event_type: Literal["docflow.document.deleted"] = "docflow.document.deleted"


class DocumentStalled(Event):
    """The status service saw no progress on the document's ``attempt`` since ``since``.

    Published by the status service's watchdog and folded like any other
    event, so a replay shows the same stall. The document is stalled until an
    event of the attempt that happened after ``since`` arrives.
    """

    TOPIC: ClassVar[str] = topics.STALLED
    event_type: Literal["docflow.document.stalled"] = "docflow.document.stalled"

    # When the attempt last made progress (the document's ``updated_at`` then).
    since: AwareDatetime
    # The stage it has been in since then.
    stage: Stage


class DocumentRetrying(Event):
    """A stage met a transient error on the document and tries again at ``at``.

    The message that failed waits on a retry topic, so the stage goes on with
    other documents meanwhile. After the last retry the document fails.
    """

    TOPIC: ClassVar[str] = topics.RETRYING
    event_type: Literal["docflow.document.retrying"] = "docflow.document.retrying"

    stage: Stage
    retry: int = Field(ge=1)  # which retry this is
    retries: int = Field(ge=1)  # how many there will be at most
    at: AwareDatetime
    reason: str


class DocumentStatusChanged(Event):
    """The latest status of a document, on the compacted status topic.

    Keyed by document id; compaction keeps the newest per document.
    ``version`` grows by one for each event the status service applied to the
    document: keep the highest one seen (a snapshot may be published again
    after a crash, with the same ``event_id`` and ``version``). The fields are
    those of ``GET /v1/documents/{id}``; a deleted document's last snapshot
    has ``deleted: true``.
    """

    TOPIC: ClassVar[str] = topics.STATUS
    event_type: Literal["docflow.document.status"] = "docflow.document.status"

    version: int = Field(ge=1)
    filename: str | None
    content_type: ContentType | None
    status: Status
    stage: Stage
    progress: int = Field(ge=0, le=100)
    message: str
    pages: int | None
    chunks_total: int | None
    chunks_embedded: int
    error: ErrorInfo | None
    stalled: bool
    deleted: bool
    # Retries of the attempt after transient errors (added in schema 1, optional).
    retries: int = 0
    created_at: AwareDatetime | None
    started_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    updated_at: AwareDatetime | None


class EmbeddingSpec(BaseModel):
    """Which model embeds: the backend, the model's name and, where the model
    allows shorter vectors, their length."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    backend: Literal["local", "openai"]
    model: str = Field(min_length=1, max_length=200)
    dimensions: int | None = Field(default=None, ge=1, le=8192)


class ReindexEvent(Envelope):
    """An event of one re-embedding operation, keyed by its ``reindex_id``.

    ``tenant_id`` is the tenant that asked for it; the operation covers every
    tenant's chunks (or the chosen documents).
    """

    reindex_id: UUID

    @property
    def subject(self) -> UUID:
        return self.reindex_id

    @classmethod
    def caused_by(cls, cause: ReindexEvent, **fields: Any) -> Self:
        """A new event of the same operation, in the same correlation."""
        return cls(
            **{
                "reindex_id": cause.reindex_id,
                "tenant_id": cause.tenant_id,
                "correlation_id": cause.correlation_id,
                **fields,
            }
        )


class ReindexRequested(ReindexEvent):
    """Re-embed the stored chunks with ``embedding`` into that model's collection,
    then make it the one searches and new documents use."""

    TOPIC: ClassVar[str] = topics.REINDEX_REQUESTED
    event_type: Literal["docflow.reindex.requested"] = "docflow.reindex.requested"

    embedding: EmbeddingSpec
    # None: every document; else only these (the switch waits until the new
    # collection holds every chunk of the current one).
    document_ids: list[UUID] | None = None


class ReindexAdvanced(ReindexEvent):
    """The embedder re-embedded the current collection's chunks up to ``cursor``.

    Both a progress report (for the status service) and the embedder's
    bookmark: the embedder continues from ``cursor`` when it reads it, so a
    reindex survives restarts and never holds a consumer for long.
    """

    TOPIC: ClassVar[str] = topics.REINDEX_ADVANCED
    event_type: Literal["docflow.reindex.advanced"] = "docflow.reindex.advanced"

    embedding: EmbeddingSpec
    document_ids: list[UUID] | None = None
    source: str  # the collection read (the current one when the reindex began)
    target: str  # the collection written
    # 1: copy every chunk; 2: a last pass for chunks written during pass 1.
    sweep: int = Field(ge=1, le=2)
    # Whether the pass goes on, and from which point of ``source`` (None: its start).
    more: bool
    cursor: str | None
    done: int = Field(ge=0)  # chunks of ``source`` read so far in this pass
    embedded: int = Field(ge=0)  # chunks embedded into ``target`` so far
    total: int = Field(ge=0)  # chunks in ``source`` when the pass began


class ReindexCompleted(ReindexEvent):
    """The re-embedding is over; if ``switched``, searches and new documents now
    use ``target``. The old collection is kept (delete it when no longer wanted)."""

    TOPIC: ClassVar[str] = topics.REINDEX_COMPLETED
    event_type: Literal["docflow.reindex.completed"] = "docflow.reindex.completed"

    embedding: EmbeddingSpec
    source: str
    target: str
    embedded: int = Field(ge=0)
    switched: bool
    message: str


class ReindexFailed(ReindexEvent):
    """The re-embedding stopped; searches still use the collection they used."""

    TOPIC: ClassVar[str] = topics.REINDEX_FAILED
    event_type: Literal["docflow.reindex.failed"] = "docflow.reindex.failed"

    reason: str


AnyReindexEvent = Annotated[
    ReindexRequested | ReindexAdvanced | ReindexCompleted | ReindexFailed,
    Field(discriminator="event_type"),
]

_any_reindex_event: TypeAdapter[AnyReindexEvent] = TypeAdapter(AnyReindexEvent)


def parse_reindex_event(data: bytes | str) -> ReindexEvent:
    """Decode any event of a re-embedding operation from its JSON body."""
    event: ReindexEvent = _any_reindex_event.validate_json(data)
    return event


AnyEvent = Annotated[
    DocumentUploaded
    | DocumentProgressed
    | TextExtracted
    | DocumentIndexed
    | DocumentFailed
    | DocumentRetryRequested
    | DocumentCancelled
    | DocumentDeleted
    | DocumentStalled
    | DocumentRetrying,
    Field(discriminator="event_type"),
]
"""Any document event (the topics in ``topics.ALL``), told apart by ``event_type``."""

EVENT_TYPES: tuple[type[Event], ...] = (
    DocumentUploaded,
    DocumentProgressed,
    TextExtracted,
    DocumentIndexed,
    DocumentFailed,
    DocumentRetryRequested,
    DocumentCancelled,
    DocumentDeleted,
    DocumentStalled,
    DocumentRetrying,
)

_any_event: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(data: bytes | str) -> Event:
    """Decode any docflow event from its JSON body."""
    event: Event = _any_event.validate_json(data)
    return event


_any_envelope: TypeAdapter[AnyEvent | AnyReindexEvent] = TypeAdapter(AnyEvent | AnyReindexEvent)


def parse_any(data: bytes | str) -> Event | ReindexEvent:
    """Decode a document event or an operation event from its JSON body."""
    event: Event | ReindexEvent = _any_envelope.validate_json(data)
    return event
