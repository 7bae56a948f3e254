"""The event contract: every message docflow puts on Kafka.

Each model names its topic in ``TOPIC``. Bodies are JSON; the envelope fields
(``event_id`` … ``correlation_id``) are on every event
(docs/architecture.md, "Event contract"). Evolving an event means adding
*optional* fields only; consumers ignore fields they do not know
(``extra="ignore"``), so an old consumer keeps working. A breaking change is
a new model on a ``.v2`` topic.

Files never travel in events: ``DocumentUploaded`` carries a blob key and the
sha256 of the stored bytes (claim check), and chunk batches are kept far
below Kafka's 1 MiB message limit by the extractor.

Where each model is defined:

``envelope.py``
    ``Envelope`` and ``Event`` (the fields on every event), ``Stage``,
    ``Status``, ``ErrorCode``, ``ContentType``;
``documents.py``
    the document events (``DocumentUploaded`` … ``DocumentStatusChanged``),
    ``AnyEvent``, ``EVENT_TYPES``, ``parse_event``;
``metadata.py``
    ``Metadata`` (a document's client-given metadata), its checks and filter terms;
``reindex.py``
    the re-embedding operation events (``ReindexRequested`` …),
    ``EmbeddingSpec``, ``parse_reindex_event``.

Import them from here: ``from docflow_shared.events import TextExtracted``.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from docflow_shared.events.documents import (
    EVENT_TYPES,
    AnyEvent,
    Chunk,
    DocumentCancelled,
    DocumentDeleted,
    DocumentFacts,
    DocumentFailed,
    DocumentIndexed,
    DocumentProgressed,
    DocumentRetrying,
    DocumentRetryRequested,
    DocumentStalled,
    DocumentStatusChanged,
    DocumentUploaded,
    ErrorInfo,
    OcrPage,
    OcrRangeRead,
    OcrRangeRequested,
    TextExtracted,
    parse_event,
)
from docflow_shared.events.envelope import (
    ContentType,
    Envelope,
    ErrorCode,
    Event,
    Stage,
    Status,
)
from docflow_shared.events.reindex import (
    AnyReindexEvent,
    EmbeddingSpec,
    ReindexAdvanced,
    ReindexCompleted,
    ReindexEvent,
    ReindexFailed,
    ReindexRequested,
    parse_reindex_event,
)

_any_envelope: TypeAdapter[AnyEvent | AnyReindexEvent] = TypeAdapter(AnyEvent | AnyReindexEvent)


def parse_any(data: bytes | str) -> Event | ReindexEvent:
    """Decode a document event or an operation event from its JSON body."""
    event: Event | ReindexEvent = _any_envelope.validate_json(data)
    return event


__all__ = [
    "EVENT_TYPES",
    "AnyEvent",
    "AnyReindexEvent",
    "Chunk",
    "ContentType",
    "DocumentCancelled",
    "DocumentDeleted",
    "DocumentFacts",
    "DocumentFailed",
    "DocumentIndexed",
    "DocumentProgressed",
    "DocumentRetryRequested",
    "DocumentRetrying",
    "DocumentStalled",
    "DocumentStatusChanged",
    "DocumentUploaded",
    "EmbeddingSpec",
    "Envelope",
    "ErrorCode",
    "ErrorInfo",
    "Event",
    "OcrPage",
    "OcrRangeRead",
    "OcrRangeRequested",
    "ReindexAdvanced",
    "ReindexCompleted",
    "ReindexEvent",
    "ReindexFailed",
    "ReindexRequested",
    "Stage",
    "Status",
    "TextExtracted",
    "parse_any",
    "parse_event",
    "parse_reindex_event",
]
