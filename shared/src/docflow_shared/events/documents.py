"""Document events: one document's way through the pipeline, from its upload to
its status snapshot, each on its own ``docflow.document.*`` topic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from docflow_shared import topics
from docflow_shared.events.envelope import (
    MAX_INT32,
    ContentType,
    Count,
    ErrorCode,
    Event,
    Stage,
    Status,
    Text,
    Timestamp,
)
from docflow_shared.events.metadata import Metadata

# The status read model's filename column (the gateway keeps at most this many).
MAX_FILENAME_CHARS = 255
# Blob keys are made by the gateway (<tenant>/<document>/original).
MAX_KEY_CHARS = 1024


class DocumentUploaded(Event):
    """The gateway stored a file and accepted it for processing."""

    TOPIC: ClassVar[str] = topics.UPLOADED
    event_type: Literal["docflow.document.uploaded"] = "docflow.document.uploaded"

    filename: str = Field(max_length=MAX_FILENAME_CHARS)
    content_type: ContentType
    size_bytes: int = Field(ge=1, le=MAX_INT32)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # Claim check: where the bytes are in the blob store.
    blob_key: str = Field(max_length=MAX_KEY_CHARS)
    # Markdown's and text's encoding (Python codec name); None for PDFs. Schema 1: UTF-8.
    charset: str | None = Field(default=None, max_length=64)
    # The client's metadata (events/metadata.py); optional in schema 1: older have none.
    metadata: Metadata | None = None

    @property
    def facts(self) -> DocumentFacts:
        """What the chunks carry of the upload (filename, time, metadata)."""
        return DocumentFacts(
            filename=self.filename, uploaded_at=self.occurred_at, metadata=self.metadata or {}
        )


class DocumentFacts(BaseModel):
    """What is known of a document at its upload, carried with its chunks so that
    searches can filter by it (the vector store's payload)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    filename: str = Field(max_length=MAX_FILENAME_CHARS)
    uploaded_at: AwareDatetime
    metadata: Metadata = Field(default_factory=dict)


class DocumentProgressed(Event):
    """Work on a document advanced: pages extracted or chunks embedded so far.

    ``done`` never decreases within one attempt; ``total`` is ``None`` while it
    is not yet known (the embedder learns the chunk total only with the last
    batch).
    """

    TOPIC: ClassVar[str] = topics.PROGRESSED
    event_type: Literal["docflow.document.progressed"] = "docflow.document.progressed"

    stage: Literal[Stage.EXTRACTING, Stage.EMBEDDING]
    done: Count
    total: Count | None = None
    # Extracting: the page now read by OCR (1-based), which takes seconds a page.
    ocr_page: int | None = Field(default=None, ge=1, le=MAX_INT32)
    # Extracting: pages ``ocr_from``..``total`` were asked of the OCR stage (waiting).
    ocr_from: int | None = Field(default=None, ge=1, le=MAX_INT32)


# What a chunk carries besides its text (``Chunk.title``, ``Chunk.headings``).
MAX_TITLE_CHARS = 255
MAX_HEADING_CHARS = 200
MAX_HEADING_DEPTH = 6
# Between the document's title and the headings in the text that is embedded.
HEADING_SEPARATOR = " › "


def embedded_text(text: str, title: str | None = None, headings: Sequence[str] = ()) -> str:
    """What is embedded for a chunk: ``title › heading › heading`` then a blank line
    and the chunk's own text, so every chunk says which document and section it
    comes from. A chunk without a title or headings (as written before they
    existed) is embedded as its text alone, as it always was. A heading equal to
    the one before it (a title that is also the first heading) is said once; the
    title is left out of a chunk whose text itself starts with it."""
    names: list[str] = []
    for name in (title, *headings):
        if name and (not names or names[-1] != name):
            names.append(name)
    if title and names and names[0] == title and text.lstrip("# ").startswith(title):
        names.pop(0)
    return f"{HEADING_SEPARATOR.join(names)}\n\n{text}" if names else text


class Chunk(BaseModel):
    """A piece of a document's text, the unit that is embedded (``embedded``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    index: Count
    text: str
    # 1-based number of the page the chunk starts on (PDF); None for unpaginated text.
    page: int | None = Field(default=None, ge=1, le=MAX_INT32)
    # The page it ends on: the same page, or a later one when it runs across a
    # page break. Absent in events written before chunks could span pages.
    page_end: int | None = Field(default=None, ge=1, le=MAX_INT32)
    # Where the chunk starts in the text of ``page`` and ends in the text of
    # ``page_end`` (for unpaginated text, in the document's text).
    char_start: Count
    char_end: Count
    # The document's title (its first line when that is a level-1 heading, else
    # its file name without extension), and for Markdown and the formats
    # converted to it, the headings the chunk sits under, outermost first. Both
    # optional: chunks written before they existed have neither.
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    headings: tuple[Annotated[str, Field(max_length=MAX_HEADING_CHARS)], ...] = Field(
        default=(), max_length=MAX_HEADING_DEPTH
    )

    @property
    def embedded(self) -> str:
        """The text that is embedded: title and headings, then the chunk's text."""
        return embedded_text(self.text, self.title, self.headings)


class TextExtracted(Event):
    """A batch of chunks extracted from a document, in order.

    Batches of one document are numbered from 0 and published in order on one
    partition. The batch with ``last=True`` carries ``chunks_total``; a
    document without extractable text is a single last batch with no chunks.
    """

    TOPIC: ClassVar[str] = topics.EXTRACTED
    event_type: Literal["docflow.document.extracted"] = "docflow.document.extracted"

    batch: Count
    chunks: list[Chunk]
    last: bool
    chunks_total: Count | None = None
    pages: Count | None = None
    # The document's upload facts (added in schema 1 as optional; None in older
    # events and in chunks of a retry from a gateway that did not record them).
    document: DocumentFacts | None = None

    @model_validator(mode="after")
    def _last_batch_has_total(self) -> Self:
        # The embedder declares a document indexed from this number.
        if self.last and self.chunks_total is None:
            raise ValueError("the last batch must carry chunks_total")
        return self


# OCR ranges (docs/events.md, "OCR"): a scan's pages are read by OCR in
# ranges, each by whichever replica of the OCR consumer takes it.
MAX_OCR_RANGES = 10_000
# The text of one range's pages, at most: well below a Kafka record's 1 MiB.
MAX_OCR_RANGE_TEXT_CHARS = 256 * 1024


class OcrRangeRequested(Event):
    """The extractor asks for pages ``first``..``last`` of a PDF to be read by OCR.

    Pages in the range that have a text layer are skipped by the OCR consumer.
    Keyed by document id and range; written round robin over the partitions.
    """

    TOPIC: ClassVar[str] = topics.OCR_REQUESTED
    event_type: Literal["docflow.ocr.requested"] = "docflow.ocr.requested"

    content_type: ContentType
    blob_key: str = Field(max_length=MAX_KEY_CHARS)
    first: int = Field(ge=1, le=MAX_INT32)
    last: int = Field(ge=1, le=MAX_INT32)
    page_count: Count
    range_index: int = Field(ge=0, lt=MAX_OCR_RANGES)
    range_count: int = Field(ge=1, le=MAX_OCR_RANGES)
    # Passed on to the answer and so to the chunks (optional, as in TextExtracted).
    document: DocumentFacts | None = None

    @model_validator(mode="after")
    def _range_in_order(self) -> Self:
        if not self.first <= self.last <= self.page_count or self.range_index >= self.range_count:
            raise ValueError("the range must lie within the document and its range count")
        return self

    @property
    def kafka_key(self) -> bytes:
        return f"{self.document_id}:{self.range_index}".encode()

    def kafka_partition(self, partitions: int) -> int | None:
        return topics.round_robin(self.document_id, self.range_index, partitions)


class OcrPage(BaseModel):
    """One page's text as OCR read it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    number: int = Field(ge=1, le=MAX_INT32)
    text: str = Field(max_length=MAX_OCR_RANGE_TEXT_CHARS)


class OcrRangeRead(Event):
    """A range of pages was read by OCR: the text of each page that had no text layer.

    ``failed``: the range will give no text (it failed the document, or was skipped
    because another range had), so the attempt is never put together; ``pages`` is
    then empty. Keyed by document id (one partition, so one assembler sees a
    document's ranges in turn).
    """

    TOPIC: ClassVar[str] = topics.OCR_DONE
    event_type: Literal["docflow.ocr.read"] = "docflow.ocr.read"

    range_index: int = Field(ge=0, lt=MAX_OCR_RANGES)
    range_count: int = Field(ge=1, le=MAX_OCR_RANGES)
    pages: list[OcrPage] = Field(max_length=MAX_OCR_RANGES)
    failed: bool = False
    # The request's, passed on to the chunks (optional, as in TextExtracted).
    document: DocumentFacts | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.range_index >= self.range_count:
            raise ValueError("range_index must be below range_count")
        if self.failed and self.pages:
            raise ValueError("a failed range has no pages")
        if sum(len(page.text) for page in self.pages) > MAX_OCR_RANGE_TEXT_CHARS:
            raise ValueError(f"more than {MAX_OCR_RANGE_TEXT_CHARS} characters of text")
        return self


class DocumentIndexed(Event):
    """Every chunk of a document is embedded and stored in the vector store."""

    TOPIC: ClassVar[str] = topics.INDEXED
    event_type: Literal["docflow.document.indexed"] = "docflow.document.indexed"

    chunks_total: Count
    collection: str = Field(max_length=255)
    embedding_model: str = Field(max_length=200)


class ErrorInfo(BaseModel):
    """Why a document failed, in words a person can act on."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: ErrorCode
    message: Text
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
    filename: str = Field(max_length=MAX_FILENAME_CHARS)
    content_type: ContentType
    charset: str | None = Field(default=None, max_length=64)
    blob_key: str = Field(max_length=MAX_KEY_CHARS)
    # The upload's metadata and time, from the gateway's record (added in schema 1
    # as optional: retries from before carry neither).
    metadata: Metadata | None = None
    uploaded_at: AwareDatetime | None = None

    @property
    def facts(self) -> DocumentFacts | None:
        """The upload's facts, when the gateway's record had its time."""
        if self.uploaded_at is None:
            return None
        return DocumentFacts(
            filename=self.filename, uploaded_at=self.uploaded_at, metadata=self.metadata or {}
        )


def tenant_document_key(tenant_id: str, document_id: UUID) -> bytes:
    """``<tenant>/<document>``: the key of the compacted command topics (the document id
    is the fixed-length end, so the split is never ambiguous)."""
    return f"{tenant_id}/{document_id}".encode()


class DocumentCancelled(Event):
    """Stop working on the document's current ``attempt``; stages stop at their next batch."""

    TOPIC: ClassVar[str] = topics.CANCELLED
    event_type: Literal["docflow.document.cancelled"] = "docflow.document.cancelled"

    # Keyed by tenant *and* document: the topic is compacted (``topics.STOPS_CONFIG``),
    # so a document's latest cancellation supersedes its earlier ones, and a record
    # under another tenant's key can never supersede this tenant's.
    @property
    def kafka_key(self) -> bytes:
        return tenant_document_key(self.tenant_id, self.document_id)


class DocumentDeleted(Event):
    """The document is gone: its blobs, vectors and status are removed."""

    TOPIC: ClassVar[str] = topics.DELETED
    event_type: Literal["docflow.document.deleted"] = "docflow.document.deleted"

    # Keyed by tenant and document, on a compacted topic, as ``DocumentCancelled``.
    @property
    def kafka_key(self) -> bytes:
        return tenant_document_key(self.tenant_id, self.document_id)


class DocumentStalled(Event):
    """The status service saw no progress on the document's ``attempt`` since ``since``.

    Published by the status service's watchdog and folded like any other
    event, so a replay shows the same stall. The document is stalled until an
    event of the attempt that happened after ``since`` arrives.
    """

    TOPIC: ClassVar[str] = topics.STALLED
    event_type: Literal["docflow.document.stalled"] = "docflow.document.stalled"

    # When the attempt last made progress (the document's ``updated_at`` then).
    since: Timestamp
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
    retry: int = Field(ge=1, le=MAX_INT32)  # which retry this is
    retries: int = Field(ge=1, le=MAX_INT32)  # how many there will be at most
    at: Timestamp
    reason: Text


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
    # The upload's metadata (added in schema 1, optional).
    metadata: Metadata | None = None
    created_at: AwareDatetime | None
    started_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    updated_at: AwareDatetime | None


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
